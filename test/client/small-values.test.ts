import * as assert from 'node:assert/strict';
import { connect, MAX_INLINE_BLOB_BYTES, type TrellisClient } from '../../src/index';
import type { Channel } from '../../src/client/channel';
import { type TestDaemon } from '../fixtures/daemon';
import { startObservedDaemon, type ObservedDaemon } from '../fixtures/observed-daemon';
import { onCleanup } from '../fixtures/setup';
import { startWorker } from '../fixtures/worker';

/** A client process (fixtures/children/small-values.ts); `run` throws on an error answer. */
const startClient = (socket: string) => startWorker(socket, { script: 'small-values.ts' });

type Description = {
  kind: string;
  hex?: string;
  items?: string[];
  shared?: boolean;
  value?: unknown;
  of?: Description[];
};

const hex = (bytes: number, seed: number) =>
  Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 31 + seed) & 0xff)).toString('hex');

/** The raw channel, to send what the public client would refuse before sending. */
const channelOf = (client: TrellisClient) => (client as unknown as { channel: Channel }).channel;

describe('small Buffers: inline put, getMany, putMany of bytes and typed arrays', function () {
  let daemon: TestDaemon;
  let observer: TrellisClient;
  let requestsDuring: ObservedDaemon['requestsDuring'];

  beforeEach(async () => {
    ({ daemon, observer, requestsDuring } = await startObservedDaemon());
  });

  it('a 100 B Buffer put in one process is one request, and its get in another is one request and a view of shared memory', async () => {
    // Without the read index, which would answer the get with no request at all (first-blob.test.ts).
    ({ daemon, observer, requestsDuring } = await startObservedDaemon(['--size', '64MiB', '--read-index-slots', '0']));
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    const bytes = hex(100, 1);
    let id = '';
    assert.equal(
      await requestsDuring(
        async () => (id = await writer.run<string>('put', { value: { kind: 'Buffer', hex: bytes } })),
      ),
      1,
    );
    let got: Description | undefined;
    assert.equal(await requestsDuring(async () => (got = await reader.run<Description>('get', { id }))), 1);
    assert.deepEqual(got, { kind: 'Buffer', hex: bytes, shared: true });
    const meta = await observer.getMeta(id);
    assert.equal(meta.typename, 'trellis::Blob');
    assert.equal(meta.nbytes, 100);
  });

  it('a named, labelled small Buffer put applies its options in that one request; an empty Buffer works too', async () => {
    const writer = await startClient(daemon.socket);
    const options = { name: 'small/one', labels: { stage: 'raw' } };
    let id = '';
    const requests = await requestsDuring(
      async () => (id = await writer.run<string>('put', { value: { kind: 'Buffer', hex: hex(64, 2) }, options })),
    );
    assert.equal(requests, 1);
    assert.equal(await observer.getName('small/one'), id);
    assert.deepEqual((await observer.getMeta(id)).labels, { stage: 'raw' });
    const empty = await writer.run<string>('put', { value: { kind: 'Buffer', hex: '' } });
    assert.equal(((await observer.get(empty)) as Buffer).length, 0);
  });

  /** putMany of every small kind, then getMany of them all in a fresh process: the requests that getMany made. */
  async function putManyThenGetMany(): Promise<number> {
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    const big = MAX_INLINE_BLOB_BYTES + 1;
    const values: Description[] = [
      { kind: 'Buffer', hex: hex(100, 3) },
      { kind: 'Float64Array', items: ['1.5', '-2', '3.25'] },
      { kind: 'value', value: { a: 1, b: 'two' } },
      { kind: 'Uint8Array', hex: hex(7, 4) },
      { kind: 'BigInt64Array', items: ['-9007199254740993', '5'] },
      { kind: 'ArrayBuffer', hex: hex(33, 5) },
      { kind: 'Buffer', hex: hex(MAX_INLINE_BLOB_BYTES, 6) },
      { kind: 'Buffer', hex: hex(big, 7) },
    ];
    let ids: string[] = [];
    const putRequests = await requestsDuring(async () => (ids = await writer.run<string[]>('putMany', { values })));
    // The small Buffers, typed arrays and the plain value go through the put ring
    // (docs/put-ring.md) with no request; its grant (this writer's first small put) is one; then
    // one putBlobs for the Buffer over the ring's 4 KiB, and two (createBlobs + seal) for the largest.
    assert.equal(putRequests, 4);
    assert.equal(ids.length, values.length);
    let got: Description[] = [];
    const getRequests = await requestsDuring(async () => (got = await reader.run<Description[]>('getMany', { ids })));
    assert.deepEqual(got[0], { kind: 'Buffer', hex: values[0].hex, shared: true });
    assert.deepEqual(got[1], { kind: 'Float64Array', items: ['1.5', '-2', '3.25'], shared: true });
    assert.deepEqual(got[2], {
      kind: 'Object',
      entries: [
        ['a', { kind: 'number', value: '1' }],
        ['b', { kind: 'string', value: 'two' }],
      ],
    });
    assert.deepEqual(got[3], { kind: 'Buffer', hex: values[3].hex, shared: true });
    assert.deepEqual(got[4], { kind: 'BigInt64Array', items: ['-9007199254740993', '5'], shared: true });
    assert.deepEqual(got[5], { kind: 'Buffer', hex: values[5].hex, shared: true });
    assert.equal(got[6].hex, values[6].hex);
    assert.equal(got[7].hex, values[7].hex);
    assert.ok(
      got.every((d) => d.kind === 'Object' || d.shared === true),
      'every byte result is a view of shared memory',
    );
    const tensor = await observer.getMeta(ids[1]);
    assert.equal(tensor.typename, 'trellis::Tensor<float64>');
    assert.deepEqual(tensor.fields.shape, [3]);
    return getRequests;
  }

  it('putMany sends small bytes in one request and small typed arrays with plain values in another; getMany reads all in one', async () => {
    // Without the read index, which answers every one of them with no request (the next case).
    ({ daemon, observer, requestsDuring } = await startObservedDaemon(['--read-index-slots', '0']));
    assert.equal(await putManyThenGetMany(), 1);
  });

  it('getMany of those Buffers, typed arrays, Value and large blobs in a fresh process is answered by the read index', async () => {
    assert.equal(await putManyThenGetMany(), 0);
  });

  it('put rejects what it refuses (never throws), and a plain Value over the ring limit is one request', async () => {
    const refused = observer.put(() => 1);
    await assert.rejects(refused, { code: 'TypeMismatch' });
    await assert.rejects(observer.put(Buffer.alloc(1), { labels: 'not a map' as never }), { code: 'InvalidArgument' });
    // The first bare put opens this client's ring; after it, a small Value is no request.
    await observer.put({ n: 1 });
    const big = { text: 'x'.repeat(6000), n: 2 };
    let id = '';
    assert.equal(await requestsDuring(async () => (id = await observer.put(big))), 1);
    assert.deepEqual(await observer.get(id), big);
    const labelled = await observer.put(big, { labels: { kind: 'big' }, ttl: 60 });
    assert.deepEqual(await observer.get(labelled), big);
    assert.deepEqual((await observer.getMeta(labelled)).labels, { kind: 'big' });
    // putMany: the big Value goes in its one request as encoded for the ring, the small one in the ring.
    const [bigId, smallId] = await observer.putMany([big, { n: 3 }]);
    assert.deepEqual(await observer.getMany([bigId, smallId]), [big, { n: 3 }]);
  });

  it('a list with an item that cannot be encoded or built rejects once, leaving no rejection unheard', async () => {
    const writer = await startClient(daemon.socket);
    // 2^100 does not fit msgpack's 64-bit integers: encoding it fails as the item is put.
    const huge: Description = { kind: 'bigint', value: String(2n ** 100n) };
    const noBuilder: Description = { kind: 'function' };
    for (const [bad, error] of [
      [huge, /too large/],
      [noBuilder, /no builder|TypeMismatch|cannot put/i],
    ] as const) {
      // Not plain (a Buffer in it): a list of items, the inner list failing before the outer's last item.
      const inner: Description = { kind: 'Array', of: [{ kind: 'Buffer', hex: hex(3, 8) }, bad] };
      const settled = await writer.run<{ ok: boolean; code?: string; message?: string }>('putSettled', {
        value: { kind: 'Array', of: [inner, bad] },
      });
      assert.equal(settled.ok, false);
      assert.equal(settled.code, 'TypeMismatch', settled.message);
      assert.match(settled.message!, error);
      // An unhandled rejection would have ended the child.
      assert.equal(typeof (await writer.run<{ objects: number }>('status')).objects, 'number');
    }
  });

  it('getMany of unknown ids is ObjectNotFound naming each one missing', async () => {
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    const known = await writer.run<string>('put', { value: { kind: 'Buffer', hex: hex(10, 8) } });
    const missing = ['o00000000deadbeef', 'o00000000cafef00d'];
    const answer = await reader.call('getMany', { ids: [known, missing[0], missing[1]] });
    assert.equal(answer.ok, false);
    assert.equal(answer.code, 'ObjectNotFound');
    assert.match(answer.message!, /2 of 3 objects not found: o00000000deadbeef, o00000000cafef00d/);
    assert.doesNotMatch(answer.message!, new RegExp(known));
    const named = await reader.call('getMany', { ids: [known, 'no/such/name'] });
    assert.equal(named.code, 'NameNotFound');
    assert.match(named.message!, /no\/such\/name/);
    assert.deepEqual(await reader.run('getMany', { ids: [] }), []);
  });

  it('bad input: not a list, wrong types, oversize inline bytes; a refused batch stores nothing', async () => {
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    await assert.rejects(client.getMany('o0000000000000001' as never), {
      code: 'InvalidArgument',
      message: /getMany\(ids\): ids must be a list of object ids or names, got string/,
    });
    await assert.rejects(client.getMany([5 as never]), { code: 'InvalidArgument', message: /got 5/ });
    await assert.rejects(client.putMany('x' as never), { code: 'InvalidArgument', message: /must be arrays/ });
    const before = await observer.status();
    const oversize = new Uint8Array(MAX_INLINE_BLOB_BYTES + 1);
    await assert.rejects(client.putBlobs([{ data: oversize }]), {
      code: 'InvalidArgument',
      message: new RegExp(`${MAX_INLINE_BLOB_BYTES + 1} bytes is over the ${MAX_INLINE_BLOB_BYTES}-byte limit`),
    });
    // What a client that skips its own checks sends: the daemon refuses it the same way.
    const channel = channelOf(client);
    await assert.rejects(channel.request('putBlobs', { blobs: [{ data: new Uint8Array(8) }, { data: oversize }] }), {
      code: 'InvalidArgument',
      message: new RegExp(`putBlobs: blobs\\[1\\]\\.data is ${MAX_INLINE_BLOB_BYTES + 1} bytes, over the`),
    });
    await assert.rejects(channel.request('putBlobs', { blobs: [{ data: 'text' as never }] }), {
      code: 'InvalidArgument',
      message: /putBlobs: blobs\[0\]\.data must be bytes, got "text"/,
    });
    await assert.rejects(channel.request('putBlobs', { blobs: [] }), {
      code: 'InvalidArgument',
      message: /putBlobs: blobs must be a list of 1 to/,
    });
    await assert.rejects(
      channel.request('createMetadata', {
        typename: 'trellis::Tensor<uint8clamped>',
        fields: {},
        inlineMembers: { data: oversize },
      }),
      { code: 'InvalidArgument', message: /inline member "data" is 65537 bytes, over the 65536-byte limit/ },
    );
    await assert.rejects(channel.request('getObjects', { refs: 'x' as never }), {
      code: 'InvalidArgument',
      message: /getObjects: refs must be a list/,
    });
    // A named batch whose second name is taken: the first blob is not left behind either.
    await client.put(Buffer.from('taken'), { name: 'taken' });
    const afterTaken = await observer.status();
    await assert.rejects(
      client.putBlobs([
        { data: Buffer.from('a'), name: 'free' },
        { data: Buffer.from('b'), name: 'taken' },
      ]),
      { code: 'NameExists' },
    );
    const after = await observer.status();
    assert.equal(afterTaken.objects, before.objects + 1);
    assert.equal(after.objects, afterTaken.objects, 'nothing stored by the refused requests');
    assert.equal(after.memoryUsage, afterTaken.memoryUsage);
    await assert.rejects(observer.getName('free'), { code: 'NameNotFound' });
  });

  it('a putBlobs batch is stored sealed at once: bytes, labels, parents and an empty blob, visible to another client', async () => {
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    const [parent] = await client.putBlobs([{ data: Buffer.from('parent') }]);
    const ids = await client.putBlobs([
      { data: Buffer.from(hex(100, 7), 'hex'), labels: { stage: 'raw' }, parents: [parent] },
      { data: new Uint8Array(0) },
      { data: Buffer.from(hex(300, 8), 'hex'), labels: { stage: 'raw', n: '2' } },
    ]);
    assert.equal(ids.length, 3);
    // Copies: a view would keep the blobs' memory after the delete below.
    assert.deepEqual(await observer.get(ids[0], { copy: true }), Buffer.from(hex(100, 7), 'hex'));
    assert.equal(((await observer.get(ids[1], { copy: true })) as Uint8Array).byteLength, 0);
    assert.deepEqual(await observer.get(ids[2], { copy: true }), Buffer.from(hex(300, 8), 'hex'));
    const metas = await Promise.all(ids.map((id) => observer.getMeta(id)));
    assert.deepEqual(
      metas.map((meta) => meta.labels),
      [{ stage: 'raw' }, {}, { stage: 'raw', n: '2' }],
    );
    assert.deepEqual(
      metas.map((meta) => (meta.parents ?? []).map((ref) => ref.id)),
      [[parent], [], []],
    );
    // Sealed and in the store, nothing left unsealed: a delete frees every byte of a batch (one not
    // read here: a reader's view keeps a deleted blob's memory until it is let go).
    const unread = await observer.status();
    const again = await client.putBlobs([
      { data: new Uint8Array(100), labels: { a: 'b' } },
      { data: new Uint8Array(0) },
    ]);
    assert.ok((await observer.status()).memoryUsage > unread.memoryUsage);
    await client.delete(again);
    const after = await observer.status();
    assert.equal(after.objects, unread.objects);
    assert.equal(after.memoryUsage, unread.memoryUsage);
  });

  it('an inline member that fails the metadata check is taken back', async () => {
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    const before = await observer.status();
    await assert.rejects(
      channelOf(client).request('createMetadata', {
        typename: 'trellis::Tensor<float64>',
        fields: {},
        members: { other: 'o00000000deadbeef' },
        inlineMembers: { data: new Uint8Array(16) },
      }),
      { code: 'ObjectNotFound' },
    );
    const after = await observer.status();
    assert.equal(after.objects, before.objects);
    assert.equal(after.memoryUsage, before.memoryUsage);
  });
});
