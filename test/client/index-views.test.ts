import * as assert from 'node:assert/strict';
import { connect, type TrellisClient } from '../../src/index';
import { taggedBytes } from '../fixtures/children/index-client';
import { startChild } from '../fixtures/child';
import { type TestDaemon } from '../fixtures/daemon';
import { startObservedDaemon, type ObservedDaemon } from '../fixtures/observed-daemon';
import { onCleanup, tempPath } from '../fixtures/setup';
import { settledStatus } from '../fixtures/status';
import { startWorker, type Worker } from '../fixtures/worker';

/** A client process (fixtures/children/index-client.ts); `run` throws on an error answer. */
const startClient = (socket: string) => startWorker(socket, { script: 'index-client.ts', answerTimeoutMs: 60_000 });

interface Got {
  hex?: string;
  shared?: boolean;
  indexed: boolean;
}

interface Hammered {
  right: number;
  wrong: number;
  missing: number;
  shared: number;
  hits: number;
  raced: number;
}

const MiB = 1024 * 1024;

describe('read index: pinned views of small blobs (hold counters), between processes', function () {
  this.timeout(60_000);
  let daemon: TestDaemon;
  let observer: TrellisClient;
  let requestsDuring: ObservedDaemon['requestsDuring'];

  const start = async (args: string[] = []) => {
    ({ daemon, observer, requestsDuring } = await startObservedDaemon(['--size', '64MiB', ...args]));
  };

  /**
   * A writer and a reader; the reader has the writer's segment mapped: sent at its connect, or
   * else with a get through the daemon (which one depends on whether the pool had made the
   * segment when the reader connected).
   */
  const writerAndReader = async () => {
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    const [warm] = await writer.run<string[]>('putTagged', { tags: [0] });
    assert.equal((await reader.run<Got>('get', { id: warm })).hex, taggedBytes(0).toString('hex'));
    return { writer, reader };
  };

  it('a view held across a delete and the reuse of its memory keeps its bytes until released', async () => {
    await start();
    const { writer, reader } = await writerAndReader();
    const [id] = await writer.run<string[]>('putTagged', { tags: [7] });
    let got: Got | undefined;
    assert.equal(await requestsDuring(async () => (got = await reader.run<Got>('get', { id }))), 0);
    assert.deepEqual(got, { hex: taggedBytes(7).toString('hex'), shared: true, indexed: true });
    // A second get of the same object takes no second hold: one release lets go.
    assert.equal((await reader.run<Got>('get', { id })).indexed, true);

    await writer.run('delete', { ids: [id], force: true });
    const held = await observer.status();
    assert.equal(held.deferredFrees, 1);
    // Deleted is deleted: the index no longer answers it, and neither does the daemon.
    assert.equal((await reader.call('get', { id })).code, 'ObjectNotFound');
    assert.equal((await observer.getMeta(id).catch((error) => error)).code, 'ObjectNotFound');
    // Many puts of the same size: none takes the held bytes.
    await writer.run('putTagged', { tags: Array.from({ length: 300 }, (_, i) => 1000 + i) });
    assert.deepEqual(await reader.run('heldIntact', { tags: { [id]: 7 } }), []);

    const before = await observer.status();
    await reader.run('release', { ids: [id] });
    const freed = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.equal(freed.deferredFrees, 0);
    assert.ok(freed.memoryUsage < before.memoryUsage, `memory ${freed.memoryUsage} below ${before.memoryUsage}`);
  });

  it('a hold from the index and a reference from the daemon on one object: one release drops both', async () => {
    await start();
    const { writer, reader } = await writerAndReader();
    const [id] = await writer.run<string[]>('putTagged', { tags: [6] });
    assert.equal((await reader.run<Got>('get', { id })).indexed, true);
    assert.equal(await reader.run<string>('getObjectBytes', { id }), taggedBytes(6).toString('hex'));
    await writer.run('delete', { ids: [id], force: true });
    assert.equal((await observer.status()).deferredFrees, 1);
    await reader.run('release', { ids: [id] });
    const after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.equal(after.deferredFrees, 0);
  });

  it('a killed reader lets go of its views: the frees waiting on them are done', async () => {
    await start();
    const { writer, reader } = await writerAndReader();
    const ids = await writer.run<string[]>('putTagged', { tags: [1, 2, 3] });
    for (const id of ids) assert.equal((await reader.run<Got>('get', { id })).indexed, true);
    await writer.run('delete', { ids, force: true });
    assert.equal((await observer.status()).deferredFrees, 3);
    reader.child.kill('SIGKILL');
    await reader.child.exited;
    const after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.equal(after.deferredFrees, 0);
  });

  it('a reader killed after it dropped a hold, before it told the daemon, leaves no free waiting', async () => {
    await start();
    const { writer, reader } = await writerAndReader();
    const [id] = await writer.run<string[]>('putTagged', { tags: [2] });
    assert.equal((await reader.run<Got>('get', { id })).indexed, true);
    await writer.run('delete', { ids: [id], force: true });
    assert.equal((await observer.status()).deferredFrees, 1);
    // What a release does before its message goes out: the counter is back at 0, and then the kill.
    await reader.run('zeroHolds', {});
    reader.child.kill('SIGKILL');
    await reader.child.exited;
    const after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.equal(after.deferredFrees, 0);
  });

  it('a getMany that falls back to the daemon and fails keeps no hold on what it got from the index', async () => {
    await start();
    const { writer, reader } = await writerAndReader();
    const [id, gone] = await writer.run<string[]>('putTagged', { tags: [3, 4] });
    await writer.run('delete', { ids: [gone], force: true });
    // The first id is a view from the index, the second is not there: the batch asks the daemon.
    assert.equal((await reader.call('getMany', { ids: [id, gone] })).code, 'ObjectNotFound');
    // The reader got nothing, so nothing of it waits: a delete frees at once.
    await writer.run('delete', { ids: [id], force: true });
    const after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.equal(after.deferredFrees, 0);
  });

  it('a delete by the holder itself frees at once', async () => {
    await start();
    const { writer, reader } = await writerAndReader();
    const [id] = await writer.run<string[]>('putTagged', { tags: [5] });
    assert.equal((await reader.run<Got>('get', { id })).indexed, true);
    await reader.run('delete', { ids: [id], force: true });
    const after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.equal(after.deferredFrees, 0);
  });

  it('holds dropped without a word are found by the sweep before OutOfMemory', async () => {
    await start();
    const { writer, reader } = await writerAndReader();
    const [id] = await writer.run<string[]>('putTagged', { tags: [4] });
    assert.equal((await reader.run<Got>('get', { id })).indexed, true);
    await writer.run('delete', { ids: [id], force: true });
    await reader.run('zeroHolds', {});
    assert.equal((await observer.status()).deferredFrees, 1);
    // Fill the store, each blob held: the first allocation that does not fit sweeps first.
    const blobs = [];
    for (;;) {
      const made = await observer.createBlob(8 * MiB).catch((error) => error);
      if (!(made instanceof Error)) {
        blobs.push(made);
        continue;
      }
      assert.equal((made as { code?: string }).code, 'OutOfMemory');
      break;
    }
    assert.equal((await observer.status()).deferredFrees, 0);
    for (const blob of blobs) await blob.abort();
  });

  it('a reader that gets the views it holds again and again does not fill the index with tombstones', async () => {
    // 64 slots: a rebuild (removed slots dropped) every few dozen puts and deletes.
    await start(['--read-index-slots', '64']);
    const { writer, reader } = await writerAndReader();
    const tags = Array.from({ length: 8 }, (_, i) => i + 1);
    const kept = await writer.run<string[]>('putTagged', { tags });
    for (let round = 0; round < 8; round++) {
      for (const id of kept) assert.equal((await reader.run<Got>('get', { id })).hex !== undefined, true);
      const churn = await writer.run<string[]>('putTagged', { tags: Array.from({ length: 40 }, (_, i) => 100 + i) });
      await writer.run('delete', { ids: churn, force: true });
    }
    // Held objects moved by rebuilds wait in no more than one slot each: new objects still get in.
    const [fresh] = await writer.run<string[]>('putTagged', { tags: [999] });
    assert.equal((await reader.run<Got>('get', { id: fresh })).indexed, true);
    const intact = Object.fromEntries(kept.map((id, i) => [id, tags[i]]));
    assert.deepEqual(await reader.run('heldIntact', { tags: intact }), []);
    await writer.run('delete', { ids: kept, force: true });
    await reader.run('release', { ids: kept });
    const after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.equal(after.deferredFrees, 0);
  });

  it('spill passes held views by: their objects stay in memory while others go to disk', async () => {
    await start(['--spill-dir', tempPath('spill')]);
    const { writer, reader } = await writerAndReader();
    const ids = await writer.run<string[]>('putTagged', { tags: [1, 2, 3, 4, 5, 6] });
    const viewed = ids.slice(0, 3);
    for (const id of viewed) assert.equal((await reader.run<Got>('get', { id })).indexed, true);
    // Memory pressure: large blobs, each released, push the least recently used out to disk.
    for (let i = 0; i < 6; i++) {
      const blob = await observer.createBlob(16 * MiB);
      await observer.release(await blob.seal());
    }
    const resident = async (id: string) => (await observer.getMeta(id)).resident !== false;
    for (const id of viewed) assert.equal(await resident(id), true, `${id} is held and stays`);
    const others = await Promise.all(ids.slice(3).map(resident));
    assert.ok(others.includes(false), 'objects nobody holds were spilled');
    const tags = Object.fromEntries(viewed.map((id, i) => [id, i + 1]));
    assert.deepEqual(await reader.run('heldIntact', { tags }), []);
    // Released: they may go as well, and their gets go through the daemon again.
    await reader.run('release', { ids: viewed });
    for (let i = 0; i < 6; i++) {
      const blob = await observer.createBlob(16 * MiB);
      await observer.release(await blob.seal());
    }
    const after = await Promise.all(viewed.map(resident));
    assert.ok(after.includes(false), 'released objects were spilled');
  });

  /**
   * Four blobs of 2 MiB, put in order: `hot` is the least recently put, so the first to go under
   * pressure unless `use` (a use of `hot` from the index, no request) counts in the spill order.
   * Memory pressure, 2 MiB at a time, with a use before each: only the others go to disk. A use
   * that misses the index (`hot` went to disk, and the get loaded it back) fails its round.
   */
  const hotStaysUnderPressure = async (
    use: (reader: Worker, hot: string, round: number, writer: Worker) => Promise<void>,
    args: string[] = [],
  ) => {
    await start(['--spill-dir', tempPath('spill'), ...args]);
    const { writer, reader } = await writerAndReader();
    const [hot, ...cold] = await writer.run<string[]>('putTagged', { tags: [1, 2, 3, 4], size: 2 * MiB });
    const resident = async (id: string) => (await observer.getMeta(id)).resident !== false;
    for (let i = 0; i < 40; i++) {
      await use(reader, hot, i, writer);
      const blob = await observer.createBlob(2 * MiB);
      await observer.release(await blob.seal());
    }
    const spilled = (await Promise.all(cold.map(resident))).filter((r) => !r).length;
    assert.equal(spilled, cold.length, 'the blobs nobody got were spilled');
    assert.equal(await resident(hot), true, 'the blob got through the index stays in memory');
  };

  it('a blob got and released again and again through the index is used: it is not the one spilled', async () => {
    // Released each time: nobody holds it when a spill looks for room.
    await hotStaysUnderPressure(async (reader, hot, round) =>
      assert.equal(await reader.run<number>('getAndRelease', { id: hot, times: 3 }), 3, `round ${round}: index hits`),
    );
  });

  it('a blob got as a copy again and again through the index is used: it is not the one spilled', async () => {
    // A copy takes no hold, so there is no release to count it at.
    await hotStaysUnderPressure(async (reader, hot, round) =>
      assert.equal(await reader.run<number>('getCopies', { id: hot, times: 3 }), 3, `round ${round}: index hits`),
    );
  });

  it('a blob each client keeps until it disconnects is used: it is not the one spilled', async () => {
    // Never released: each connection's hold goes only with the connection.
    await hotStaysUnderPressure(async (reader, hot, round) =>
      assert.equal(await reader.run<boolean>('getKeptUntilClose', { id: hot }), true, `round ${round}: a view`),
    );
  });

  it('a blob held while a rebuild moves it, then released, is used: it is not the one spilled', async () => {
    // 64 slots: the writer's churn fills the index with removed slots, so its next put, made
    // while the reader holds the blob, rebuilds the index: the held slot is left a tombstone of
    // the blob, which is put back elsewhere, and the release counts at the tombstone.
    await hotStaysUnderPressure(
      async (reader, hot, round, writer) => {
        const churn = await writer.run<string[]>('putTagged', { tags: Array.from({ length: 48 }, (_, i) => 100 + i) });
        await writer.run('delete', { ids: churn, force: true });
        assert.equal((await reader.run<Got>('get', { id: hot })).indexed, true, `round ${round}: a view`);
        const rebuilt = await writer.run<string[]>('putTagged', { tags: [200] });
        await writer.run('delete', { ids: rebuilt, force: true });
        await reader.run('release', { ids: [hot] });
      },
      ['--read-index-slots', '64'],
    );
  });

  it('never hands out or changes bytes of a held view while objects are deleted and their memory reused', async () => {
    await start();
    const { writer, reader } = await writerAndReader();
    const total = { right: 0, wrong: 0, missing: 0, shared: 0, hits: 0, raced: 0 };
    let tags = Array.from({ length: 16 }, (_, i) => i + 1);
    let ids = await writer.run<string[]>('putTagged', { tags });
    for (let round = 0; round < 20; round++) {
      const nextTags = tags.map((tag) => tag + 16);
      const [hammered, fresh] = await Promise.all([
        reader.run<Hammered>('hammer', { ids, tags, ms: 40, views: true }),
        writer.run<string[]>('churn', { ids, firstTag: nextTags[0], delayMs: round % 10 }),
      ]);
      for (const key of Object.keys(total) as Array<keyof typeof total>) total[key] += hammered[key];
      ids = fresh;
      tags = nextTags;
    }
    assert.equal(total.wrong, 0, JSON.stringify(total));
    assert.equal(total.shared, total.right, `every Buffer got is shared memory: ${JSON.stringify(total)}`);
    assert.ok(total.hits > 0, `the index answered some gets: ${JSON.stringify(total)}`);
    assert.ok(total.missing > 0, `the churn deleted what the reader asked for: ${JSON.stringify(total)}`);
    // Every view was released: nothing waits.
    const after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.equal(after.deferredFrees, 0);
  });

  it('a stream chunk held through the index is never recycled into the writer', async () => {
    // 4 KiB chunks (indexed) and a buffer of 16 of them, so the writer is given chunks back.
    await start(['--stream-buffer', '64KiB']);
    const spy = await connect(daemon.socket);
    onCleanup(() => spy.close());
    const stream = await observer.createStream('trellis::ByteStream');
    const writer = startChild('stream-writer.ts', [daemon.socket, stream.id, '400', 'finish', 'uniform']);
    await writer.next();
    const reader = await observer.openReader(stream.id);
    /** Chunks the spy got (views), with a copy of their bytes when got. */
    const held = new Map<string, [Buffer, Buffer]>();
    let count = 0;
    for await (const chunk of reader) {
      assert.equal((chunk as Buffer).length, 4096);
      if (++count % 8 !== 0) continue;
      for (const { id } of await spy.listObjects({ pattern: 'trellis::Blob' })) {
        if (held.has(id)) continue;
        const view = await spy.get(id).catch(() => undefined);
        if (Buffer.isBuffer(view)) held.set(id, [view, Buffer.from(view)]);
      }
    }
    assert.equal(count, 400);
    assert.deepEqual(await writer.next(), { written: 400 });
    assert.ok(spy.readIndexStats!.views > 0, JSON.stringify(spy.readIndexStats));
    for (const [id, [view, bytes]] of held) assert.ok(view.equals(bytes), `held chunk ${id} kept its bytes`);
    await spy.close();
    const after = await settledStatus(observer, (s) => s.deferredFrees === 0 && s.streams === 0);
    assert.equal(after.deferredFrees, 0);
  });

  it("junk in a client's hold counters keeps memory until it disconnects, frees nothing others hold", async () => {
    await start();
    const { writer, reader } = await writerAndReader();
    const junk = await startClient(daemon.socket);
    await junk.run('put', { value: 'connects and maps the index' });
    const [id, other] = await writer.run<string[]>('putTagged', { tags: [8, 9] });
    assert.equal((await reader.run<Got>('get', { id })).indexed, true);
    const answers = await junk.run<string[]>('junkHolds', { seed: 12345 });
    // Slots out of range are ignored; what is not a list of slot numbers is refused.
    assert.deepEqual(answers, ['ok', 'ok', 'InvalidArgument', 'InvalidArgument', 'InvalidArgument', 'ok']);
    await writer.run('delete', { ids: [id, other], force: true });
    await writer.run('putTagged', { tags: Array.from({ length: 100 }, (_, i) => 2000 + i) });
    assert.deepEqual(await reader.run('heldIntact', { tags: { [id]: 8 } }), []);
    const status = await observer.status();
    assert.ok(status.deferredFrees >= 1, `the held object waits: ${status.deferredFrees}`);
    await reader.run('release', { ids: [id] });
    // The junk client's counters may still hold both slots: its disconnect lets go of them.
    junk.child.kill('SIGKILL');
    await junk.child.exited;
    const after = await settledStatus(observer, (s) => s.deferredFrees === 0);
    assert.equal(after.deferredFrees, 0);
    assert.equal(
      (await writer.run<Got>('get', { id: (await writer.run<string[]>('putTagged', { tags: [3] }))[0] })).hex,
      taggedBytes(3).toString('hex'),
    );
  });
});
