import * as assert from 'node:assert/strict';
import { sha256, taggedBytes } from '../fixtures/children/index-client';
import { type TestDaemon } from '../fixtures/daemon';
import { startObservedDaemon, type ObservedDaemon } from '../fixtures/observed-daemon';
import { settledStatus } from '../fixtures/status';
import { startWorker } from '../fixtures/worker';
import type { TrellisClient } from '../../src/index';
import { IpcChannel } from '../../src/client/ipc';
import { onCleanup, tempPath } from '../fixtures/setup';

/** A client process (fixtures/children/index-client.ts); `run` throws on an error answer. */
const startClient = (socket: string) => startWorker(socket, { script: 'index-client.ts', answerTimeoutMs: 60_000 });

interface GotBlob {
  digest?: string;
  hex?: string;
  size: number;
  shared: boolean;
  indexed: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** What getBlob of a tagged blob of `size` bytes answers when it came from the index. */
const fromIndex = (tag: number, size: number): GotBlob => ({
  digest: sha256(taggedBytes(tag, size)),
  size,
  shared: true,
  indexed: true,
});

describe("a new process's first getBlob: segments at connect, blobs of any size in the read index", function () {
  this.timeout(60_000);
  let daemon: TestDaemon;
  let observer: TrellisClient;
  let requestsDuring: ObservedDaemon['requestsDuring'];

  const start = async (args: string[] = []) => {
    ({ daemon, observer, requestsDuring } = await startObservedDaemon(['--size', '64MiB', ...args]));
  };

  /** A writer process that puts a 1 KiB and a 6 MiB blob (tags 1 and 2). */
  const writerWithBlobs = async () => {
    const writer = await startClient(daemon.socket);
    const [small] = await writer.run<string[]>('putTagged', { tags: [1], size: KiB });
    const [large] = await writer.run<string[]>('putTagged', { tags: [2], size: 6 * MiB });
    return { writer, small, large };
  };

  it('a reader that connects after the put gets a large and a small blob with no request, as views', async () => {
    await start();
    const { writer, small, large } = await writerWithBlobs();
    const withBoth = await observer.status();
    const reader = await startClient(daemon.socket);
    let got: GotBlob[] = [];
    const requests = await requestsDuring(async () => {
      got = [
        await reader.run<GotBlob>('getBlob', { id: large, digest: true }),
        await reader.run<GotBlob>('getBlob', { id: small, digest: true }),
      ];
    });
    assert.equal(requests, 0);
    assert.deepEqual(got, [fromIndex(2, 6 * MiB), fromIndex(1, KiB)]);

    // Deleted by the writer: the reader's views keep the memory (as references would) until released.
    await writer.run('delete', { ids: [small, large] });
    const held = await observer.status();
    assert.equal(held.deferredFrees, 2);
    assert.ok(held.memoryUsage >= withBoth.memoryUsage, `memory ${held.memoryUsage} kept`);
    assert.equal(await reader.run('heldDigest', { id: large }), sha256(taggedBytes(2, 6 * MiB)));
    // Got again while held: the same view, as a blob held by a reference is (no request).
    assert.equal(await requestsDuring(() => reader.run('getBlob', { id: large, digest: true })), 0);
    await reader.run('release', { ids: [small, large] });
    assert.equal((await reader.call('getBlob', { id: large })).code, 'ObjectNotFound');
    const freed = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.ok(
      freed.memoryUsage <= withBoth.memoryUsage - 6 * MiB,
      `memory ${freed.memoryUsage} back below ${withBoth.memoryUsage - 6 * MiB}`,
    );
  });

  it("a delete by the holder frees at once; a holder's disconnect frees what it held", async () => {
    await start();
    const { writer, large } = await writerWithBlobs();
    const withBoth = await observer.status();
    const first = await startClient(daemon.socket);
    assert.deepEqual(await first.run('getBlob', { id: large, digest: true }), fromIndex(2, 6 * MiB));
    await first.run('delete', { ids: [large] });
    let after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.ok(after.memoryUsage <= withBoth.memoryUsage - 6 * MiB, `memory ${after.memoryUsage} freed`);

    const [again] = await writer.run<string[]>('putTagged', { tags: [3], size: 6 * MiB });
    const second = await startClient(daemon.socket);
    assert.deepEqual(await second.run('getBlob', { id: again, digest: true }), fromIndex(3, 6 * MiB));
    const withAgain = await observer.status();
    await writer.run('delete', { ids: [again] });
    assert.equal((await observer.status()).deferredFrees, 1);
    second.child.kill('SIGKILL');
    await second.child.exited;
    after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.ok(after.memoryUsage <= withAgain.memoryUsage - 6 * MiB, `memory ${after.memoryUsage} freed`);
  });

  it('a blob deleted between connect and get is ObjectNotFound; a Value is TypeMismatch', async () => {
    await start();
    const { writer, small, large } = await writerWithBlobs();
    const value = await writer.run<string>('put', { value: { not: 'a blob' } });
    const reader = await startClient(daemon.socket);
    await writer.run('delete', { ids: [small, large] });
    assert.equal((await reader.call('getBlob', { id: large })).code, 'ObjectNotFound');
    assert.equal((await reader.call('getBlob', { id: small })).code, 'ObjectNotFound');
    assert.equal((await reader.call('getBlob', { id: value })).code, 'TypeMismatch');
    const settled = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.equal(settled.deferredFrees, 0);
  });

  it('a segment made after connect comes with the first get that needs it; later readers have it at connect', async () => {
    await start();
    const reader = await startClient(daemon.socket);
    const writer = await startClient(daemon.socket);
    // Larger than a standard segment (64 MiB / 8): a segment of its own, made after the reader connected.
    const [large] = await writer.run<string[]>('putTagged', { tags: [4], size: 12 * MiB });
    let got: GotBlob | undefined;
    assert.equal(
      await requestsDuring(async () => (got = await reader.run<GotBlob>('getBlob', { id: large, digest: true }))),
      1,
    );
    assert.deepEqual(got, { ...fromIndex(4, 12 * MiB), indexed: false });
    assert.equal((await reader.run<{ unmapped: number }>('stats')).unmapped, 1);

    const later = await startClient(daemon.socket);
    assert.equal(
      await requestsDuring(async () => (got = await later.run<GotBlob>('getBlob', { id: large, digest: true }))),
      0,
    );
    assert.deepEqual(got, fromIndex(4, 12 * MiB));
  });

  it('openReadIndex sends the pool segments only to a client that asks (an older client is sent none)', async () => {
    await start();
    const { large } = await writerWithBlobs();
    const open = async () => {
      const channel = await IpcChannel.open(daemon.socket);
      onCleanup(() => channel.close());
      return channel;
    };
    const older = await open();
    assert.equal((await older.request('openReadIndex', { holds: true })).segments, undefined);
    const newer = await open();
    const { segments } = await newer.request('openReadIndex', { holds: true, segments: true });
    assert.ok(segments !== undefined && segments >= 1, `segments ${segments}`);
    // Where the blob is, as a get through the daemon says (that get sends the fd to `probe`).
    const probe = await open();
    const [location] = (await probe.request('getBlobs', { ids: [large] })).blobs;
    assert.equal(location.size, 6 * MiB);
    assert.equal(newer.mappings.has(location.segment), true);
    assert.equal(older.mappings.has(location.segment), false);
  });

  it('a spilled blob is loaded back through the daemon, then got from the index again', async () => {
    await start(['--spill-dir', tempPath('spill')]);
    const { large } = await writerWithBlobs();
    const resident = async () => (await observer.getMeta(large)).resident !== false;
    // Memory pressure: large blobs, each released, push the least recently used out to disk.
    for (let i = 0; i < 8 && (await resident()); i++) {
      const blob = await observer.createBlob(16 * MiB);
      await observer.release(await blob.seal());
    }
    assert.equal(await resident(), false, 'the blob nobody held was spilled');
    const first = await startClient(daemon.socket);
    const got = await first.run<GotBlob>('getBlob', { id: large, digest: true });
    assert.deepEqual(got, { ...fromIndex(2, 6 * MiB), indexed: false });
    // Loaded back and published again: a new reader gets it with no request.
    const second = await startClient(daemon.socket);
    let again: GotBlob | undefined;
    assert.equal(
      await requestsDuring(async () => (again = await second.run<GotBlob>('getBlob', { id: large, digest: true }))),
      0,
    );
    assert.deepEqual(again, fromIndex(2, 6 * MiB));
  });
});
