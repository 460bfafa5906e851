import * as assert from 'node:assert/strict';
import { type TestDaemon } from '../fixtures/daemon';
import { startObservedDaemon, type ObservedDaemon } from '../fixtures/observed-daemon';
import { settledStatus } from '../fixtures/status';
import { startWorker } from '../fixtures/worker';
import type { TrellisClient } from '../../src/index';

/** A client process (fixtures/children/index-client.ts); `run` throws on an error answer. */
const startClient = (socket: string) => startWorker(socket, { script: 'index-client.ts', answerTimeoutMs: 60_000 });

interface GotTensor {
  length: number;
  shared: boolean;
  indexed: boolean;
}

/** 1 MiB of float64s (a blob of its own), and a small one (its bytes put with its metadata). */
const LARGE = 131_072;
const SMALL = 16;

describe("a Tensor's get from the read index (its record in the arena, its data pinned)", function () {
  this.timeout(60_000);
  let daemon: TestDaemon;
  let observer: TrellisClient;
  let requestsDuring: ObservedDaemon['requestsDuring'];

  const withTensors = async () => {
    ({ daemon, observer, requestsDuring } = await startObservedDaemon(['--size', '64MiB']));
    const empty = await observer.status();
    const writer = await startClient(daemon.socket);
    const large = await writer.run<string>('putTensor', { length: LARGE, seed: 1 });
    const small = await writer.run<string>('putTensor', { length: SMALL, seed: 2 });
    // A request after the puts: any the put ring took are registered (and indexed) by its answer.
    await writer.run('stats', {});
    await observer.exists(small);
    return { writer, large, small, empty };
  };

  it('a fresh reader gets them with no request: equal, over shared memory; held until released', async () => {
    const { writer, large, small, empty } = await withTensors();
    const reader = await startClient(daemon.socket);
    let got: GotTensor[] = [];
    const requests = await requestsDuring(async () => {
      got = [
        await reader.run<GotTensor>('getTensor', { id: large, length: LARGE, seed: 1 }),
        await reader.run<GotTensor>('getTensor', { id: small, length: SMALL, seed: 2 }),
      ];
    });
    assert.equal(requests, 0);
    assert.deepEqual(got, [
      { length: LARGE, shared: true, indexed: true },
      { length: SMALL, shared: true, indexed: true },
    ]);
    // Deleted by the writer: the reader's views keep the data until it releases the tensors.
    await writer.run('delete', { ids: [large, small] });
    assert.ok((await observer.status()).deferredFrees > 0);
    assert.equal((await reader.call('getTensor', { id: large, length: LARGE, seed: 1 })).code, 'ObjectNotFound');
    await reader.run('release', { ids: [large, small] });
    const freed = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.ok(freed.memoryUsage <= empty.memoryUsage, `memory ${freed.memoryUsage} back to ${empty.memoryUsage}`);
  });

  it("a reader's delete frees at once; a reader's death frees what it held", async () => {
    const { writer, large, empty } = await withTensors();
    const first = await startClient(daemon.socket);
    assert.equal((await first.run<GotTensor>('getTensor', { id: large, length: LARGE, seed: 1 })).indexed, true);
    await first.run('delete', { ids: [large] });
    const base = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.ok(base.memoryUsage < empty.memoryUsage + LARGE * 8, `memory ${base.memoryUsage} freed`);

    const again = await writer.run<string>('putTensor', { length: LARGE, seed: 3 });
    const second = await startClient(daemon.socket);
    assert.equal((await second.run<GotTensor>('getTensor', { id: again, length: LARGE, seed: 3 })).indexed, true);
    await writer.run('delete', { ids: [again] });
    assert.ok((await observer.status()).deferredFrees > 0);
    second.child.kill('SIGKILL');
    await second.child.exited;
    const after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.ok(after.memoryUsage <= base.memoryUsage, `memory ${after.memoryUsage} back to ${base.memoryUsage}`);
  });

  it("a user's resolver for Tensors still gets the object from the daemon", async () => {
    const { large } = await withTensors();
    const reader = await startClient(daemon.socket);
    await reader.run('resolveTensorsMyself', {});
    let got: unknown;
    assert.equal(await requestsDuring(async () => (got = await reader.run('getPlain', { id: large }))), 1);
    assert.deepEqual(got, { mine: large, dtype: 'float64' });
  });
});

interface GotList {
  length: number;
  shared: boolean;
  indexed: boolean;
}

describe("a frozen ShareableList's get from the read index (a pinned view of its blob)", function () {
  this.timeout(60_000);
  let daemon: TestDaemon;
  let observer: TrellisClient;
  let requestsDuring: ObservedDaemon['requestsDuring'];

  const withList = async () => {
    ({ daemon, observer, requestsDuring } = await startObservedDaemon(['--size', '64MiB']));
    const empty = await observer.status();
    const writer = await startClient(daemon.socket);
    const list = await writer.run<string>('putList', { seed: 1 });
    return { writer, list, empty };
  };
  const fromIndex: GotList = { length: 7, shared: true, indexed: true };

  it('a fresh reader gets it, or opens it, with no request: equal, over shared memory; held until released', async () => {
    const { writer, list, empty } = await withList();
    const reader = await startClient(daemon.socket);
    let got: GotList | undefined;
    assert.equal(await requestsDuring(async () => (got = await reader.run('getList', { id: list, seed: 1 }))), 0);
    assert.deepEqual(got, fromIndex);
    const opener = await startClient(daemon.socket);
    const open = { id: list, seed: 1, open: true };
    assert.equal(await requestsDuring(async () => (got = await opener.run('getList', open))), 0);
    assert.deepEqual(got, fromIndex);
    // Deleted by the writer: the readers' views keep its memory until both let go.
    await writer.run('delete', { ids: [list] });
    assert.ok((await observer.status()).deferredFrees > 0);
    assert.equal((await reader.call('getList', { id: list, seed: 1 })).code, 'ObjectNotFound');
    await reader.run('release', { ids: [list] });
    assert.ok((await observer.status()).deferredFrees > 0, 'the opener still holds it');
    opener.child.kill('SIGKILL');
    await opener.child.exited;
    const freed = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.ok(freed.memoryUsage <= empty.memoryUsage, `memory ${freed.memoryUsage} back to ${empty.memoryUsage}`);
  });

  it('a delete by the reader frees at once', async () => {
    const { list, empty } = await withList();
    const reader = await startClient(daemon.socket);
    assert.deepEqual(await reader.run('getList', { id: list, seed: 1 }), fromIndex);
    await reader.run('delete', { ids: [list] });
    const after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.ok(after.memoryUsage <= empty.memoryUsage, `memory ${after.memoryUsage} freed`);
  });

  it("a user's resolver for ShareableLists still gets the object from the daemon", async () => {
    const { list } = await withList();
    const reader = await startClient(daemon.socket);
    await reader.run('resolveListsMyself', {});
    let got: { mine: string; nbytes: number } | undefined;
    assert.equal(await requestsDuring(async () => (got = await reader.run('getPlain', { id: list }))), 1);
    assert.equal(got?.mine, list);
  });
});
