import * as assert from 'node:assert/strict';
import * as os from 'node:os';
import WebSocket from 'ws';
import { connect, connectRpc, type ObjectMeta, type TrellisClient } from '../../src/index';
import type { Channel } from '../../src/client/channel';
import { sequenceOf } from '../../src/protocol/ids';
import { type TestDaemon } from '../fixtures/daemon';
import { startObservedDaemon } from '../fixtures/observed-daemon';
import { pause } from '../fixtures/pause';
import { onCleanup, tempPath } from '../fixtures/setup';
import { requestsAnsweredDuring, settledStatus } from '../fixtures/status';
import { ringTensor, TENSOR_CLASSES } from '../fixtures/ring-tensors';
import { startWorker, type Worker } from '../fixtures/worker';

/** A client process (fixtures/children/ring-client.ts). */
const startClient = (socket: string) => startWorker(socket, { script: 'ring-client.ts', answerTimeoutMs: 60_000 });

/** 64 MiB: arenas of 256 KiB (2048 objects of 100 B) and rings of 1024 records (options.ts). */
const RING_RECORDS = 1024;

describe('put ring: small bare puts with no round trip', function () {
  let daemon: TestDaemon;
  let observer: TrellisClient;

  const start = async (args?: string[]) => {
    ({ daemon, observer } = await startObservedDaemon(args));
  };

  /** Ids put by a writer, checked byte for byte by a separate reader process. */
  const expectAll = async (reader: Worker, seed: number, ids: string[], values: boolean) =>
    assert.deepEqual(await reader.run<number[]>('check', { seed, ids, values }), [], 'every value read back');

  it('a reader process gets every value a writer process put, one at a time, in flight and in putMany', async () => {
    await start();
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    const before = (await observer.status()).requests;
    // 3000 one at a time: more than an arena's worth of ids is not needed for the first grant.
    const one = await writer.run<string[]>('put', { seed: 1, count: 3000, values: true });
    assert.equal(await writer.run<boolean>('hasRing'), true);
    // Requests: the grants of the ring's arenas, nothing per put (doorbells are not counted).
    const requests = (await observer.status()).requests - before - 1;
    assert.ok(requests >= 1 && requests <= 4, `${requests} requests for 3000 puts`);
    const inflight = await writer.run<string[]>('put', { seed: 2, count: 500, how: 'inflight' });
    const many = await writer.run<string[]>('put', { seed: 3, count: 500, values: true, how: 'many' });
    assert.equal(new Set([...one, ...inflight, ...many]).size, 4000, 'every id is new');
    await expectAll(reader, 1, one, true);
    await expectAll(reader, 2, inflight, false);
    await expectAll(reader, 3, many, true);
    // Drained, they are objects like any other: counted, listed, got as views of shared memory.
    assert.equal((await observer.status()).objects, 4000);
    const got = (await observer.get(one[0])) as Buffer;
    assert.equal(observer.isSharedMemory(got), true);
    assert.equal((await observer.getMeta(one[1])).typename, 'trellis::Value');
  });

  it('TypedArrays of every element type: no request per put, stored as the socket stores them', async () => {
    await start();
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    await writer.run('put', { seed: 80, count: 1 });
    // Each class at each length (0, 1, 100 elements, 4 KiB), one at a time, in flight and in putMany.
    const count = TENSOR_CLASSES.length * 4;
    const ids: string[] = [];
    const requests = await requestsAnsweredDuring(observer, async () => {
      for (const how of ['one', 'inflight', 'many'])
        ids.push(...(await writer.run<string[]>('putTensors', { seed: 81, count, how })));
    });
    // The grant of the next arena at most: nothing per put (doorbells are not counted).
    assert.ok(requests <= 2, `${requests} requests for ${3 * count} tensor puts`);
    assert.equal(new Set(ids).size, 3 * count, 'every id is new');
    for (let round = 0; round < 3; round++) {
      const wrong = await reader.run<number[]>('checkTensors', {
        seed: 81,
        ids: ids.slice(round * count, (round + 1) * count),
      });
      assert.deepEqual(wrong, [], 'every tensor read back equal, of its class, in shared memory');
    }
    // The same tensor put through the socket (a shape given takes the request): the same
    // object, but for its ids and times.
    const comparable = (meta: ObjectMeta): unknown => ({
      ...meta,
      id: undefined,
      createdAt: undefined,
      members: Object.fromEntries(Object.entries(meta.members).map(([key, member]) => [key, comparable(member)])),
    });
    for (let i = 0; i < count; i++) {
      const tensor = ringTensor(81, i);
      const bySocket = await observer.put(tensor, { shape: [tensor.length] });
      assert.deepEqual(comparable(await observer.getMeta(ids[i])), comparable(await observer.getMeta(bySocket)));
      assert.deepEqual(await observer.get(ids[i]), tensor);
    }
    // Two objects each (the tensor and its data blob), as through the socket.
    assert.equal((await observer.status()).objects, 1 + 2 * 4 * count);
    await observer.delete(ids);
    assert.equal((await observer.status()).objects, 1 + 2 * count, "a tensor's delete takes its blob");
  });

  it("the writer's own get or delete right after a put sees it", async () => {
    await start();
    const writer = await startClient(daemon.socket);
    for (let seed = 0; seed < 20; seed++) {
      assert.equal((await writer.run<{ same: boolean }>('putThen', { seed, then: 'get' })).same, true);
      const { id, exists } = await writer.run<{ id: string; exists: boolean }>('putThen', { seed, then: 'delete' });
      assert.equal(exists, false);
      assert.equal(await observer.exists(id), false);
    }
  });

  it('a writer killed with SIGKILL right after its puts resolved: every object is stored, its arena freed', async () => {
    await start();
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    await writer.run('put', { seed: 9, count: 1 });
    // The daemon is stopped while the writer puts: nothing of these can have been drained before the kill.
    const resume = pause(daemon.process);
    let ids: string[];
    try {
      ids = await writer.run<string[]>('put', { seed: 10, count: 300 });
      writer.child.kill('SIGKILL');
      await writer.child.exited;
    } finally {
      resume();
    }
    const status = await settledStatus(observer, (s) => s.clients === 2);
    assert.equal(status.clients, 2, 'the writer is gone');
    await expectAll(reader, 10, ids, false);
    // The writer's first object, and 300 of 100 B (128 B blocks each); its ring and the rest of its arena are free.
    assert.equal(status.objects, 301);
    assert.equal(status.memoryUsage, 301 * 128);
    // The reader's gets hold references: once it is gone too, deletes free at once.
    reader.child.kill('SIGKILL');
    await settledStatus(observer, (s) => s.clients === 1);
    await observer.delete(ids);
    assert.equal((await observer.status()).memoryUsage, 128, "each object's block was freed on its own");
  });

  it('a small createBlob and seal take no request; abort, sealBlob with labels and a kill still work', async () => {
    await start();
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    await writer.run('createSeal', { seed: 40, count: 1 });
    const before = (await observer.status()).requests;
    const ids = await writer.run<string[]>('createSeal', { seed: 41, count: 200 });
    assert.equal((await observer.status()).requests - before - 1, 0, 'no request for 200 createBlob + seal');
    await expectAll(reader, 41, ids, false);
    // In this process: abort, and a seal with labels (a request, after the daemon drained the ring).
    const local = await connect(daemon.socket);
    onCleanup(() => local.close());
    const aborted = await local.createBlob(10);
    await aborted.abort();
    assert.equal(await observer.exists(aborted.id), false);
    const labelled = await local.createBlob(10);
    labelled.buffer.fill(3);
    const id = await local.sealBlob(labelled, { labels: { stage: 'raw' } });
    assert.deepEqual((await observer.getMeta(id)).labels, { stage: 'raw' });
    // Killed with a blob created and not sealed: it is reclaimed, the sealed ones stay.
    const usage = (await observer.status()).memoryUsage;
    await writer.run('createSeal', { seed: 42, count: 0, unsealed: true });
    writer.child.kill('SIGKILL');
    await writer.child.exited;
    const after = await settledStatus(observer, (s) => s.clients === 3);
    // The unsealed blob is freed; the ring and its arena's rest were never in memoryUsage.
    assert.equal(after.memoryUsage, usage);
    assert.equal(await observer.exists(ids[0]), true);
    await expectAll(reader, 41, ids, false);
  });

  it('a seal() of a writer that sealBlob is sealing fails with AlreadySealed; the client stays connected', async () => {
    await start();
    const writer = await startClient(daemon.socket);
    const { codes, alive, id } = await writer.run<{ codes: string[]; alive: boolean; id: string }>('sealTwice');
    assert.equal(alive, true, 'the connection still answers');
    assert.deepEqual(codes, ['ok', 'AlreadySealed']);
    assert.deepEqual(await observer.get(id), Buffer.alloc(100, 7));
  });

  it('a put past a full ring waits for the daemon, and is never dropped', async () => {
    await start();
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    await writer.run('put', { seed: 20, count: 1 });
    const resume = pause(daemon.process);
    let answered = false;
    const putting = writer.run<string[]>('put', { seed: 21, count: RING_RECORDS + 200 }).then((ids) => {
      answered = true;
      return ids;
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(answered, false, 'the puts past the ring wait while the daemon is stopped');
    } finally {
      resume();
    }
    const ids = await putting;
    assert.equal(ids.length, RING_RECORDS + 200);
    await expectAll(reader, 21, ids, false);
  });

  it('a full store: the grant answers OutOfMemory, puts fall back to the socket, no resolved put is lost', async () => {
    await start(['--size', '8MiB', '--put-ring-bytes', '1MiB']);
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    const ids: string[] = [];
    let failure: { code?: string; message?: string } | undefined;
    // 4000 B each: about 2000 fit. Puts of 50 at a time until one fails.
    for (let seed = 100; seed < 200 && !failure; seed++) {
      const answer = await writer.call<string[]>('put', { seed, count: 50, size: 4000 });
      if (answer.ok) ids.push(...answer.result);
      else failure = answer;
    }
    assert.equal(failure?.code, 'OutOfMemory', failure?.message);
    assert.ok(ids.length > 1500, `${ids.length} puts of 4000 B fit in 8 MiB`);
    for (let at = 0; at < ids.length; at += 50) {
      assert.deepEqual(
        await reader.run<number[]>('check', { seed: 100 + at / 50, ids: ids.slice(at, at + 50), size: 4000 }),
        [],
      );
    }
    const status = await observer.status();
    assert.ok(status.memoryUsage <= status.memoryLimit);
    assert.ok(status.objects >= ids.length);
  });

  /** What the daemon logs for each bad field. */
  const problems: Record<string, RegExp> = {
    size: /size 1048576 is outside/,
    offset: /is not where any of its arenas goes on/,
    id: /is not the next of its block/,
    dtype: /tensor dtype code 10 is outside 0\.\.9/,
    width: /a float64 tensor of 12 bytes, not whole elements/,
    tensorIds: /or 2 ids run past it/,
  };
  for (const field of Object.keys(problems)) {
    it(`a record with a bad ${field}, written by hand: that client is disconnected, everyone else served`, async () => {
      await start();
      const [hostile, writer, reader] = await Promise.all([
        startClient(daemon.socket),
        startClient(daemon.socket),
        startClient(daemon.socket),
      ]);
      const [before] = await hostile.run<string[]>('put', { seed: 30, count: 1 });
      assert.equal(await hostile.run<string>('corrupt', { field }), 'ProtocolError');
      assert.match(daemon.output(), /put ring of client \d+ .*disconnecting it/);
      assert.match(daemon.output(), problems[field]);
      // What it put before the bad record stays; the others go on.
      await expectAll(reader, 30, [before], false);
      const ids = await writer.run<string[]>('put', { seed: 31, count: 200, values: true });
      await expectAll(reader, 31, ids, true);
      assert.equal((await settledStatus(observer, (s) => s.clients === 3)).clients, 3);
    });
  }

  it('a client the daemon disconnected, still running, cannot write into memory given to others', async () => {
    await start();
    const [hostile, writer, reader] = await Promise.all([
      startClient(daemon.socket),
      startClient(daemon.socket),
      startClient(daemon.socket),
    ]);
    await hostile.run('put', { seed: 40, count: 1 });
    assert.equal(await hostile.run<string>('corrupt', { field: 'size' }), 'ProtocolError');
    await settledStatus(observer, (s) => s.clients === 3);
    // Its ring and arena stay out of use while it runs: 1 MiB of 8 KiB puts (through the socket)
    // goes elsewhere, and what it writes over them afterwards reaches no one else's bytes.
    const ids = await writer.run<string[]>('put', { seed: 41, count: 128, size: 8192 });
    assert.ok((await hostile.run<number>('scribbleRing')) > 0);
    assert.deepEqual(await reader.run<number[]>('check', { seed: 41, ids, size: 8192 }), [], 'every value read back');
    // Once its process is gone, they go back to the pool.
    const held = (await observer.status()).memoryUsage;
    hostile.child.kill('SIGKILL');
    await hostile.child.exited;
    const freed = await settledStatus(observer, (s) => s.memoryUsage < held, 10_000);
    assert.ok(freed.memoryUsage < held, `${freed.memoryUsage} bytes used, as many as with the client running`);
  });

  it('grants asked for at once while a spill makes room: the client still holds at most 3 arenas', async () => {
    await start(['--size', '64MiB', '--spill-dir', tempPath('ring-spill')]);
    // A full store of blobs no one holds: each arena (256 KiB) waits for a spill to make room.
    for (let i = 0; i < 64; i++) await observer.put(Buffer.alloc(1024 * 1024, i));
    const hostile = await connect(daemon.socket);
    onCleanup(() => hostile.close());
    const channel = (hostile as unknown as { channel: { inner: Channel } }).channel.inner;
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => channel.request('grantPutArena', {})));
    const granted = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    assert.equal(granted.length, 3, 'the first grant (with the ring) and two more');
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') continue;
      assert.equal((outcome.reason as { code?: string }).code, 'InvalidArgument');
      assert.match((outcome.reason as Error).message, /holds 3 arenas already, the most allowed/);
    }
    assert.ok((await observer.status()).spilled.objects > 0, 'the grants waited for spills');
  });

  it('an arena past 2 GiB into a large segment: its records are taken (offsets are unsigned words)', async function () {
    this.timeout(60_000);
    // 2.3 GiB of shared memory, held for a few seconds: only where the machine has it to spare.
    if (os.freemem() < 6 * 1024 ** 3) this.skip();
    await start(['--size', '2400MiB']);
    // The standard segment (256 MiB) full, and a segment just over 2 GiB that holds a 2 GiB blob:
    // the only room left for an arena is at an offset past 2^31.
    const filler = await observer.createBlob(256 * 1024 * 1024);
    const large = await observer.createBlob(2 ** 31 + 1);
    assert.equal((await observer.status()).segments, 2, 'the filler took the standard segment whole');
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    const offset = await writer.run<number>('arenaOffset');
    assert.ok(offset >= 2 ** 31, `the arena is at offset ${offset}`);
    const ids = await writer.run<string[]>('put', { seed: 50, count: 20 });
    await expectAll(reader, 50, ids, false);
    assert.equal((await settledStatus(observer, (s) => s.clients === 3)).clients, 3, 'the writer stays connected');
    await Promise.all([filler.abort(), large.abort()]);
  });

  it('ids stay near the clock under many 4 KiB puts, so a restarted daemon does not hand them out again', async () => {
    await start();
    const writer = await startClient(daemon.socket);
    // 4 KiB puts use one id in 64 of an arena's block: unused ids must not run the counter ahead.
    let last = '';
    for (let seed = 60; seed < 100; seed++) {
      const ids = await writer.run<string[]>('put', { seed, count: 1000, size: 4000, how: 'many' });
      last = ids[ids.length - 1];
      await observer.delete(ids);
    }
    const clock = Math.floor(performance.timeOrigin * 1000 + performance.now() * 1000) % 2 ** 48;
    const aheadMs = (sequenceOf(last) - clock) / 1000;
    assert.ok(aheadMs < 200, `the last id is ${aheadMs} ms ahead of the clock`);
  });

  it('a /metrics scrape counts every put resolved before it, as /api/status does', async () => {
    await start(['--size', '64MiB', '--http-port', '0']);
    const writer = await startClient(daemon.socket);
    await writer.run('put', { seed: 70, count: 1 });
    const objects = async (path: string) => {
      const text = await (await fetch(`http://${daemon.httpEndpoint}${path}`)).text();
      return Number(/^trellis_objects (\d+)$/m.exec(text)?.[1] ?? JSON.parse(text).objects);
    };
    // Idle, the daemon arms the ring and stops polling it. Then a record no doorbell announces:
    // only a drain finds it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await writer.run('silentPut', { size: 100 });
    assert.equal(await objects('/metrics'), 2);
    assert.equal(await objects('/api/status'), 2);
  });

  it('a /live snapshot lists every put resolved before the page asked', async () => {
    await start(['--size', '64MiB', '--http-port', '0']);
    const writer = await startClient(daemon.socket);
    const [first] = await writer.run<string[]>('put', { seed: 71, count: 1 });
    // As above: an armed ring, and a record only a drain finds.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const silent = await writer.run<string>('silentPut', { size: 100 });
    const ws = new WebSocket(`ws://${daemon.httpEndpoint}/live`);
    onCleanup(() => ws.terminate());
    type Snapshot = { type: string; status: { objects: number }; objects: { objects: Array<{ id: string }> } };
    const snapshot = await new Promise<Snapshot>((resolve, reject) => {
      ws.on('error', reject);
      ws.on('message', (data) => {
        const message = JSON.parse(data.toString()) as Snapshot;
        if (message.type === 'snapshot') resolve(message);
      });
    });
    assert.equal(snapshot.status.objects, 2);
    assert.deepEqual(snapshot.objects.objects.map((row) => row.id).sort(), [first, silent].sort());
  });

  it('RPC clients and daemons with rings off put through the socket as before', async () => {
    await start(['--size', '64MiB', '--put-ring-bytes', '0', '--rpc-port', '0']);
    const local = await connect(daemon.socket);
    onCleanup(() => local.close());
    const before = (await observer.status()).requests;
    const id = await local.put(Buffer.from('over the socket'));
    assert.equal((await observer.status()).requests - before - 1, 2, 'a grant that gave nothing, and the put');
    const again = await local.put(Buffer.from('and again'));
    assert.equal((await observer.status()).requests - before - 2, 3, 'no grant asked again');
    assert.deepEqual(await observer.get(id), Buffer.from('over the socket'));
    assert.deepEqual(await observer.get(again), Buffer.from('and again'));
    const remote = await connectRpc(daemon.rpcEndpoint!);
    onCleanup(() => remote.close());
    const viaRpc = await remote.put({ over: 'rpc' });
    assert.deepEqual(await observer.get(viaRpc), { over: 'rpc' });
  });
});
