import * as assert from 'node:assert/strict';
import { type TestDaemon } from '../fixtures/daemon';
import { startObservedDaemon, type ObservedDaemon } from '../fixtures/observed-daemon';
import { settledStatus } from '../fixtures/status';
import { startWorker } from '../fixtures/worker';
import type { TrellisClient } from '../../src/index';

/** A client process (fixtures/children/index-client.ts); `run` throws on an error answer. */
const startClient = (socket: string) => startWorker(socket, { script: 'index-client.ts', answerTimeoutMs: 60_000 });

interface GotFrame {
  numRows: number;
  shared: boolean;
  indexed: boolean;
}

const ROWS = 20_000;
const fromIndex: GotFrame = { numRows: ROWS, shared: true, indexed: true };

describe("a DataFrame's get from the read index (its record in the arena, its members pinned)", function () {
  this.timeout(60_000);
  let daemon: TestDaemon;
  let observer: TrellisClient;
  let requestsDuring: ObservedDaemon['requestsDuring'];

  /** A daemon, its memory use before any frame, and a writer process that put one (seed 1). */
  const withFrame = async () => {
    ({ daemon, observer, requestsDuring } = await startObservedDaemon(['--size', '64MiB']));
    const empty = await observer.status();
    const writer = await startClient(daemon.socket);
    const frame = await writer.run<string>('putFrame', { rows: ROWS, seed: 1 });
    const stored = await observer.status();
    assert.ok(stored.memoryUsage > empty.memoryUsage, `memory ${stored.memoryUsage} used by the frame`);
    return { writer, frame, empty, stored };
  };

  it('a fresh reader gets it with no request: the same Table, over shared memory; release frees it', async () => {
    const { writer, frame, empty, stored } = await withFrame();
    const reader = await startClient(daemon.socket);
    let got: GotFrame | undefined;
    assert.equal(
      await requestsDuring(async () => (got = await reader.run('getFrame', { id: frame, rows: ROWS, seed: 1 }))),
      0,
    );
    assert.deepEqual(got, fromIndex);
    // Got again while held: no request, no second hold.
    assert.equal(await requestsDuring(() => reader.run('getFrame', { id: frame, rows: ROWS, seed: 1 })), 0);

    // Deleted by the writer: the reader's views keep the members' memory until it releases the frame.
    await writer.run('delete', { ids: [frame] });
    const held = await observer.status();
    assert.ok(held.deferredFrees > 0, `deferred frees ${held.deferredFrees}`);
    assert.ok(held.memoryUsage >= stored.memoryUsage, `memory ${held.memoryUsage} kept`);
    assert.equal((await reader.call('getFrame', { id: frame, rows: ROWS, seed: 1 })).code, 'ObjectNotFound');
    await reader.run('release', { ids: [frame] });
    const freed = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.ok(freed.memoryUsage <= empty.memoryUsage, `memory ${freed.memoryUsage} back to ${empty.memoryUsage}`);
  });

  it("a delete by the reader frees at once; a reader's death frees what it held", async () => {
    const { writer, frame, empty } = await withFrame();
    const first = await startClient(daemon.socket);
    assert.deepEqual(await first.run('getFrame', { id: frame, rows: ROWS, seed: 1 }), fromIndex);
    await first.run('delete', { ids: [frame] });
    let after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.ok(after.memoryUsage <= empty.memoryUsage, `memory ${after.memoryUsage} freed`);

    const again = await writer.run<string>('putFrame', { rows: ROWS, seed: 1 });
    const second = await startClient(daemon.socket);
    assert.deepEqual(await second.run('getFrame', { id: again, rows: ROWS, seed: 1 }), fromIndex);
    await writer.run('delete', { ids: [again] });
    assert.ok((await observer.status()).deferredFrees > 0);
    second.child.kill('SIGKILL');
    await second.child.exited;
    after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.ok(after.memoryUsage <= empty.memoryUsage, `memory ${after.memoryUsage} freed`);
  });

  it('getMany of two frames is answered from the index, and released with them', async () => {
    const { writer, frame, empty } = await withFrame();
    const other = await writer.run<string>('putFrame', { rows: 100, seed: 2 });
    const reader = await startClient(daemon.socket);
    let got: { rows: number[]; indexed: number } | undefined;
    assert.equal(await requestsDuring(async () => (got = await reader.run('getManyRows', { ids: [frame, other] }))), 0);
    assert.deepEqual(got?.rows, [ROWS, 100]);
    await writer.run('delete', { ids: [frame, other] });
    assert.ok((await observer.status()).deferredFrees > 0);
    await reader.run('release', { ids: [frame, other] });
    const freed = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.ok(freed.memoryUsage <= empty.memoryUsage, `memory ${freed.memoryUsage} back to ${empty.memoryUsage}`);
  });

  it('a getMany with a frame from the index that falls back to the daemon and fails leaves no frame to release', async () => {
    const { writer, frame } = await withFrame();
    const member = Object.values((await observer.getMeta(frame)).members)[0].id;
    const gone = await writer.run<string>('putFrame', { rows: 10, seed: 3 });
    await writer.run('delete', { ids: [gone] });
    const reader = await startClient(daemon.socket);
    // The reader holds one member of the frame as a blob of its own.
    assert.equal((await reader.run<{ indexed: boolean }>('getBlob', { id: member, digest: true })).indexed, true);
    // The frame is a hit, `gone` is not there: the batch asks the daemon, which answers ObjectNotFound.
    assert.equal((await reader.call('getManyRows', { ids: [frame, gone] })).code, 'ObjectNotFound');
    // The frame was never got, so releasing it lets go of nothing: the member's view stays held.
    await reader.run('release', { ids: [frame] });
    await writer.run('delete', { ids: [frame] });
    const after = await observer.status();
    assert.ok(after.deferredFrees > 0, `the member the reader holds waits (deferred frees ${after.deferredFrees})`);
    await reader.run('release', { ids: [member] });
    await settledStatus(observer, (s) => s.deferredFrees === 0);
  });

  it('a frame deleted between connect and get is ObjectNotFound', async () => {
    const { writer, frame } = await withFrame();
    const reader = await startClient(daemon.socket);
    await writer.run('delete', { ids: [frame] });
    assert.equal((await reader.call('getFrame', { id: frame, rows: ROWS, seed: 1 })).code, 'ObjectNotFound');
  });

  it('a member force-deleted makes the get ask the daemon, which answers as before', async () => {
    const { writer, frame } = await withFrame();
    const member = Object.values((await observer.getMeta(frame)).members)[0].id;
    await writer.run('delete', { ids: [member], force: true });
    const reader = await startClient(daemon.socket);
    const answer = await reader.call('getFrame', { id: frame, rows: ROWS, seed: 1 });
    assert.equal(answer.code, 'ObjectNotFound');
    assert.equal((await reader.run<{ misses: number }>('stats')).misses > 0, true);
  });

  it("a user's resolver for DataFrames still gets the object from the daemon", async () => {
    const { frame } = await withFrame();
    const reader = await startClient(daemon.socket);
    await reader.run('resolveFramesMyself', {});
    let got: unknown;
    assert.equal(await requestsDuring(async () => (got = await reader.run('getPlain', { id: frame }))), 1);
    assert.deepEqual(got, { mine: frame, fields: ['layout', 'numRows', 'numColumns'] });
  });
});
