import * as assert from 'node:assert/strict';
import { connect, MAX_INLINE_BLOB_BYTES, type TrellisClient } from '../../src/index';
import type { Channel } from '../../src/client/channel';
import { type TestDaemon } from '../fixtures/daemon';
import { startObservedDaemon, type ObservedDaemon } from '../fixtures/observed-daemon';
import { onCleanup } from '../fixtures/setup';
import { startWorker } from '../fixtures/worker';

interface Outcome {
  ok: boolean;
  result?: unknown;
  code?: string;
  message?: string;
}

const bytesOf = (size: number, seed: number) =>
  Buffer.from(Array.from({ length: size }, (_, i) => (i * 7 + seed) & 0xff));
const described = (bytes: Buffer) => ({ kind: 'Buffer', hex: bytes.toString('hex') });

/** The raw channel (past the coalescing), to send what the public client would not. */
const channelOf = (client: TrellisClient) => (client as unknown as { channel: { inner: Channel } }).channel.inner;

describe('gets and puts in flight travel as one request, and each keeps its own outcome', function () {
  let daemon: TestDaemon;
  let requestsDuring: ObservedDaemon['requestsDuring'];

  beforeEach(async () => {
    ({ daemon, requestsDuring } = await startObservedDaemon());
  });

  it('100 puts in flight in one process are one request; 100 gets of them in another are one request of views', async () => {
    // Without the read index, which would answer these gets with no request at all (first-blob.test.ts).
    ({ daemon, requestsDuring } = await startObservedDaemon(['--size', '64MiB', '--read-index-slots', '0']));
    const [writer, reader] = await Promise.all(
      [0, 1].map(() => startWorker(daemon.socket, { script: 'small-values.ts' })),
    );
    const values = Array.from({ length: 100 }, (_, i) => bytesOf(i % 2 === 0 ? 100 : 1 + i * 37, i));
    let puts: Outcome[] = [];
    const putRequests = await requestsDuring(
      async () => (puts = await writer.run<Outcome[]>('putInFlight', { values: values.map(described) })),
    );
    assert.equal(putRequests, 1);
    assert.ok(puts.every((put) => put.ok));
    const ids = puts.map((put) => put.result as string);
    assert.equal(new Set(ids).size, 100, 'each put is an object of its own');
    let gets: Outcome[] = [];
    assert.equal(await requestsDuring(async () => (gets = await reader.run<Outcome[]>('getInFlight', { ids }))), 1);
    gets.forEach((get, i) => assert.deepEqual(get, { ok: true, result: { ...described(values[i]), shared: true } }));
  });

  it('a missing id among gets in flight rejects only its own get; a name among them resolves', async () => {
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    const ids = await client.putMany([bytesOf(10, 1), bytesOf(20, 2)]);
    await client.putName(ids[1], 'coalesced/name');
    const missing = 'o00000000deadbeef';
    const settled = await Promise.allSettled([
      client.get(ids[0]),
      client.get(missing),
      client.get('coalesced/name'),
      client.get('coalesced/absent'),
    ]);
    assert.deepEqual(settled[0], { status: 'fulfilled', value: bytesOf(10, 1) });
    assert.equal(settled[1].status, 'rejected');
    assert.equal((settled[1] as PromiseRejectedResult).reason.code, 'ObjectNotFound');
    assert.match((settled[1] as PromiseRejectedResult).reason.message, new RegExp(missing));
    assert.deepEqual(settled[2], { status: 'fulfilled', value: bytesOf(20, 2) });
    assert.equal((settled[3] as PromiseRejectedResult).reason.code, 'NameNotFound');
  });

  it('a get then a delete of the same id, in one tick, reach the daemon in that order', async () => {
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    const [id] = await client.putMany([bytesOf(16, 3)]);
    const got = client.get(id);
    const deleted = client.delete(id);
    assert.deepEqual(await got, bytesOf(16, 3));
    await deleted;
    assert.equal(await client.exists(id), false);
  });

  it('in a full store, the puts in flight that fit are stored and only the others reject with OutOfMemory', async () => {
    const { observer: client } = await startObservedDaemon(['--size', '1MiB']);
    // 24 x 64 KiB is more than 1 MiB: the batch cannot be stored whole.
    const values = Array.from({ length: 24 }, (_, i) => bytesOf(MAX_INLINE_BLOB_BYTES, i));
    const settled = await Promise.allSettled(values.map((value) => client.put(value)));
    const stored = settled.flatMap((s, i) => (s.status === 'fulfilled' ? [{ id: s.value, i }] : []));
    const refused = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    assert.ok(stored.length > 0 && refused.length > 0, `stored ${stored.length}, refused ${refused.length}`);
    for (const failure of refused) assert.equal(failure.reason.code, 'OutOfMemory');
    for (const { id, i } of stored) assert.deepEqual(await client.get(id), values[i]);
    // Nothing of the refused ones is left behind: deleting what was stored frees everything.
    await client.delete(stored.map(({ id }) => id));
    const status = await client.status();
    assert.equal(status.objects, 0);
    assert.equal(status.memoryUsage, 0);
  });
});

describe('compact batch formats: putBlobs sizes + data, getObjects columns and each', function () {
  let client: TrellisClient;
  let channel: Channel;

  beforeEach(async () => {
    ({ observer: client } = await startObservedDaemon());
    channel = channelOf(client);
  });

  it('1 item, an empty one, the max inline size and mixed sizes store exactly their bytes', async () => {
    const sizes = [1, 0, MAX_INLINE_BLOB_BYTES, 100, 3, 4096];
    const values = sizes.map((size, i) => bytesOf(size, i));
    const { ids } = await channel.request('putBlobs', { sizes, data: Buffer.concat(values) });
    assert.equal(ids.length, sizes.length);
    assert.deepEqual(await client.getMany(ids), values);
    const [one] = (await channel.request('putBlobs', { sizes: [5], data: bytesOf(5, 9) })).ids;
    assert.deepEqual(await client.get(one), bytesOf(5, 9));
  });

  it('getObjects with columns answers plain blobs in columns and other objects whole, in order', async () => {
    const [plain] = await client.putMany([bytesOf(8, 1)]);
    const labelled = await client.put(bytesOf(8, 2), { labels: { a: 'b' } });
    const value = await client.put({ some: 'value' });
    const reply = await channel.request('getObjects', { refs: [labelled, plain, value, plain], columns: true });
    assert.deepEqual(reply.plain?.at, [1, 3]);
    assert.deepEqual(
      reply.objects.map((object) => object.meta.id),
      [labelled, value],
    );
    assert.deepEqual(await client.getMany([labelled, plain, value, plain]), [
      bytesOf(8, 2),
      bytesOf(8, 1),
      { some: 'value' },
      bytesOf(8, 1),
    ]);
  });

  it('getMany stays all or none: one missing id fails the batch, naming it', async () => {
    const ids = await client.putMany([bytesOf(8, 1), bytesOf(8, 2)]);
    await assert.rejects(client.getMany([ids[0], 'o00000000deadbeef', ids[1]]), {
      code: 'ObjectNotFound',
      message: /1 of 3 objects not found: o00000000deadbeef/,
    });
  });

  it('bad compact batches are InvalidArgument naming what is wrong, store nothing, and the daemon keeps serving', async () => {
    const before = await client.status();
    const refused: Array<[Record<string, unknown>, RegExp]> = [
      [{ sizes: [], data: Buffer.alloc(0) }, /putBlobs: sizes must be a list of 1 to 100000, got a list of 0/],
      [{ sizes: [4, 4], data: Buffer.alloc(9) }, /sizes add up to 8 bytes but data holds 9/],
      [{ sizes: [4, 8], data: Buffer.alloc(4) }, /sizes add up to 12 bytes but data holds 4/],
      [
        { sizes: [MAX_INLINE_BLOB_BYTES + 1], data: Buffer.alloc(MAX_INLINE_BLOB_BYTES + 1) },
        new RegExp(`sizes\\[0\\] must be a byte count of 0 to ${MAX_INLINE_BLOB_BYTES}`),
      ],
      [{ sizes: [1, -1], data: Buffer.alloc(0) }, /sizes\[1\] must be a byte count/],
      [{ sizes: [1.5], data: Buffer.alloc(1) }, /sizes\[0\] must be a byte count/],
      [{ sizes: ['1'], data: Buffer.alloc(1) }, /sizes\[0\] must be a byte count of .* got "1"/],
      [{ sizes: [1], data: 'x' }, /putBlobs: data must be bytes, got "x"/],
      [{ sizes: [1] }, /putBlobs: data must be bytes/],
      [{ sizes: [1], data: Buffer.alloc(1), blobs: [] }, /give either blobs or sizes and data, not both/],
      [{ sizes: [1], data: Buffer.alloc(1), each: 'yes' }, /each must be a boolean/],
      // Over the count limit: a list of 100,001 sizes.
      [{ sizes: new Array(100_001).fill(0), data: Buffer.alloc(0) }, /sizes must be a list of 1 to 100000/],
    ];
    for (const [body, message] of refused) {
      await assert.rejects(channel.request('putBlobs', body as never), { code: 'InvalidArgument', message });
    }
    await assert.rejects(channel.request('getObjects', { refs: ['x'], each: 1 as never }), {
      code: 'InvalidArgument',
      message: /getObjects: each must be a boolean/,
    });
    const after = await client.status();
    assert.equal(after.objects, before.objects);
    assert.equal(after.memoryUsage, before.memoryUsage);
    // Still serving, on the same connection.
    assert.deepEqual(await client.get(await client.put(bytesOf(3, 3))), bytesOf(3, 3));
  });

  it('getObjects with each answers every ref on its own: 0 refs, bad ones in errors, good ones in columns', async () => {
    assert.deepEqual(await channel.request('getObjects', { refs: [], each: true }), { objects: [] });
    const [id] = await client.putMany([bytesOf(8, 1)]);
    const reply = await channel.request('getObjects', {
      refs: ['o00000000deadbeef', id, 'no/such/name'],
      each: true,
    });
    assert.deepEqual(reply.errors?.at, [0, 2]);
    assert.deepEqual(
      reply.errors?.errors.map((error) => error.code),
      ['ObjectNotFound', 'NameNotFound'],
    );
    assert.deepEqual(reply.plain?.at, [1]);
    assert.deepEqual(reply.plain?.ids, [id]);
    await channel.request('release', { ids: [id] });
  });
});
