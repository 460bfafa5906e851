import * as assert from 'node:assert/strict';
import { connect, type TrellisClient } from '../../src/index';
import { taggedBytes } from '../fixtures/children/index-client';
import { type TestDaemon } from '../fixtures/daemon';
import { startObservedDaemon, type ObservedDaemon } from '../fixtures/observed-daemon';
import { onCleanup, tempPath } from '../fixtures/setup';
import { settledStatus } from '../fixtures/status';
import { startWorker } from '../fixtures/worker';

/** A client process (fixtures/children/index-client.ts); `run` throws on an error answer. */
const startClient = (socket: string) => startWorker(socket, { script: 'index-client.ts', answerTimeoutMs: 60_000 });

interface Got {
  hex?: string;
  value?: unknown;
  shared?: boolean;
  indexed: boolean;
}

describe('read index: small sealed objects got with no round trip', function () {
  let daemon: TestDaemon;
  let observer: TrellisClient;
  let requestsDuring: ObservedDaemon['requestsDuring'];

  const start = async (args: string[] = []) => {
    ({ daemon, observer, requestsDuring } = await startObservedDaemon(['--size', '64MiB', ...args]));
  };

  it('a reader process gets what a writer process put, from the index, with no request', async () => {
    await start();
    const writer = await startClient(daemon.socket);
    const [blob] = await writer.run<string[]>('putTagged', { tags: [7] });
    const value = await writer.run<string>('put', { value: { a: 'small', n: [1, 2, 3] } });

    // The reader connects once the blob's segment exists: it is sent with the index, so even the
    // first get of the blob is answered in the reader (first-blob.test.ts: segments made later).
    const reader = await startClient(daemon.socket);
    let first: Got | undefined;
    assert.equal(await requestsDuring(async () => (first = await reader.run<Got>('get', { copy: true, id: blob }))), 0);
    assert.deepEqual(first, { hex: taggedBytes(7).toString('hex'), shared: false, indexed: true });
    let second: Got | undefined;
    assert.equal(
      await requestsDuring(async () => (second = await reader.run<Got>('get', { copy: true, id: blob }))),
      0,
    );
    assert.deepEqual(second, { hex: taggedBytes(7).toString('hex'), shared: false, indexed: true });

    // A small Value's bytes live in the index itself: the first get is already local.
    let got: Got | undefined;
    assert.equal(await requestsDuring(async () => (got = await reader.run<Got>('get', { copy: true, id: value }))), 0);
    assert.deepEqual(got, { value: { a: 'small', n: [1, 2, 3] }, indexed: true });

    // Without copy, a blob is a view of shared memory, pinned from the index (index-views.test.ts).
    let view: Got | undefined;
    assert.equal(await requestsDuring(async () => (view = await reader.run<Got>('get', { id: blob }))), 0);
    assert.deepEqual(view, { hex: taggedBytes(7).toString('hex'), shared: true, indexed: true });

    // getMany too, when every id is there; one that is not there sends the whole batch to the daemon.
    const other = await writer.run<string>('put', { value: 'another' });
    let many: { values: unknown[]; indexed: number } | undefined;
    assert.equal(await requestsDuring(async () => (many = await reader.run('getMany', { ids: [other, value] }))), 0);
    assert.deepEqual(many, { values: ['another', { a: 'small', n: [1, 2, 3] }], indexed: 2 });
    assert.equal(await requestsDuring(async () => (many = await reader.run('getMany', { ids: [blob, value] }))), 0);
    assert.deepEqual(many, { values: [taggedBytes(7).toString('hex'), { a: 'small', n: [1, 2, 3] }], indexed: 2 });
    const missing = 'o' + 'f'.repeat(16);
    const answer = await reader.call('getMany', { ids: [blob, missing] });
    assert.equal(answer.code, 'ObjectNotFound');
    assert.match(answer.message!, new RegExp(`1 of 2 objects not found: ${missing}`));
  });

  it('a deleted or force-deleted object leaves the index; copies already got keep their bytes', async () => {
    await start();
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    // A get from the daemon takes a reference (and maps the segment): taken of another blob, so
    // that these two are only ever got from the index.
    const [warm, ...ids] = await writer.run<string[]>('putTagged', { tags: [0, 1, 2] });
    await reader.run<Got>('get', { copy: true, id: warm });
    for (const id of ids) assert.equal((await reader.run<Got>('get', { copy: true, id })).indexed, true);
    const baseline = (await observer.status()).memoryUsage;

    await writer.run('delete', { ids: [ids[0]] });
    await writer.run('delete', { ids: [ids[1]], force: true });
    // The memory is free at once: the reader holds copies, not references.
    const freed = await settledStatus(observer, (s) => s.memoryUsage < baseline && s.deferredFrees === 0);
    assert.equal(freed.deferredFrees, 0);
    assert.ok(freed.memoryUsage < baseline, `memory ${freed.memoryUsage} went below ${baseline}`);
    // New puts take the freed bytes over; what the reader got stays as it was.
    await writer.run<string[]>('putTagged', { tags: [3, 4, 5, 6] });
    for (const [i, id] of ids.entries()) {
      assert.equal(await reader.run<string>('heldHex', { id }), taggedBytes(i + 1).toString('hex'));
      const answer = await reader.call('get', { copy: true, id });
      assert.equal(answer.code, 'ObjectNotFound');
    }
  });

  it('never hands out bytes of another object while objects are deleted and their memory reused', async function () {
    this.timeout(60_000);
    await start();
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    const [warm] = await writer.run<string[]>('putTagged', { tags: [0] });
    await reader.run<Got>('get', { copy: true, id: warm });
    const total = { right: 0, wrong: 0, missing: 0, hits: 0, raced: 0 };
    let tags = Array.from({ length: 16 }, (_, i) => i + 1);
    let ids = await writer.run<string[]>('putTagged', { tags });
    // Each round: the reader gets the 16 ids over and over while the writer, a few ms in,
    // deletes them one by one, a put after each taking over the memory just freed.
    for (let round = 0; round < 20; round++) {
      const nextTags = tags.map((tag) => tag + 16);
      const [hammered, fresh] = await Promise.all([
        reader.run<typeof total>('hammer', { ids, tags, ms: 40 }),
        writer.run<string[]>('churn', { ids, firstTag: nextTags[0], delayMs: round % 10 }),
      ]);
      for (const key of Object.keys(total) as Array<keyof typeof total>) total[key] += hammered[key];
      ids = fresh;
      tags = nextTags;
    }
    assert.equal(total.wrong, 0, JSON.stringify(total));
    assert.ok(total.hits > 0, `the index answered some gets: ${JSON.stringify(total)}`);
    assert.ok(total.missing > 0, `the churn deleted what the reader asked for: ${JSON.stringify(total)}`);
  });

  it('a spilled object leaves the index; its next get loads it back through the daemon', async function () {
    this.timeout(60_000);
    await start(['--spill-dir', tempPath('spill')]);
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    const [warm, ...ids] = await writer.run<string[]>('putTagged', { tags: [0, 1, 2, 3, 4] });
    await reader.run<Got>('get', { copy: true, id: warm });
    for (const id of ids) assert.equal((await reader.run<Got>('get', { copy: true, id })).indexed, true);
    // Memory pressure: large blobs, each released, push the least recently used out to disk.
    // The copies count as use (a second chance), so enough for the spill to come round to them
    // again after the large blobs put before it.
    const MiB = 1024 * 1024;
    for (let i = 0; i < 12; i++) {
      const blob = await observer.createBlob(16 * MiB);
      await observer.release(await blob.seal());
    }
    const spilled = [];
    for (const id of ids) if ((await observer.getMeta(id)).resident === false) spilled.push(id);
    assert.ok(spilled.length > 0, 'some small objects were spilled');
    for (const id of spilled) {
      const got = await reader.run<Got>('get', { copy: true, id });
      assert.equal(got.indexed, false);
      assert.equal(got.hex, taggedBytes(ids.indexOf(id) + 1).toString('hex'));
    }
  });

  it('a killed reader leaves nothing behind', async () => {
    await start();
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    const [warm, ...ids] = await writer.run<string[]>('putTagged', { tags: [0, 1, 2, 3] });
    await reader.run<Got>('get', { copy: true, id: warm });
    for (const id of ids) assert.equal((await reader.run<Got>('get', { copy: true, id })).indexed, true);
    const clients = (await observer.status()).clients;
    reader.child.kill('SIGKILL');
    await reader.child.exited;
    await writer.run('delete', { ids: [warm, ...ids], force: true });
    const after = await settledStatus(observer, (s) => s.clients === clients - 1 && s.deferredFrees === 0);
    assert.equal(after.clients, clients - 1);
    assert.equal(after.deferredFrees, 0);
    assert.equal(after.objects, 0);
  });

  it('a full index refuses entries and those objects are got from the daemon', async () => {
    await start(['--read-index-slots', '64']);
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    const tags = Array.from({ length: 200 }, (_, i) => i + 1);
    const ids = await writer.run<string[]>('putTagged', { tags });
    await reader.run<Got>('get', { copy: true, id: ids[0] });
    let indexed = 0;
    for (const [i, id] of ids.entries()) {
      const got = await reader.run<Got>('get', { copy: true, id });
      assert.equal(got.hex, taggedBytes(tags[i]).toString('hex'));
      if (got.indexed) indexed++;
    }
    // 64 slots filled to three quarters: about 48 entries, the rest asked the daemon.
    assert.ok(indexed > 0 && indexed <= 48, `${indexed} of 200 came from the index`);
    // Deleting makes room: new objects are indexed again (removed slots are reused).
    await writer.run('delete', { ids, force: true });
    const fresh = await writer.run<string[]>('putTagged', { tags: [500, 501] });
    // Put through the writer's put ring: in the index once the daemon drained it (any request does).
    await observer.status();
    for (const id of fresh) assert.equal((await reader.run<Got>('get', { copy: true, id })).indexed, true);
  });

  it('blobs over 4 KiB are in the index too; Values over it are got from the daemon', async () => {
    await start();
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    const [large] = await writer.run<string[]>('putTagged', { tags: [9], size: 8192 });
    await reader.run<Got>('get', { copy: true, id: large });
    const got = await reader.run<Got>('get', { copy: true, id: large });
    assert.deepEqual(got, { hex: taggedBytes(9, 8192).toString('hex'), shared: false, indexed: true });
    const text = 'x'.repeat(8192);
    const value = await writer.run<string>('put', { value: text });
    assert.deepEqual(await reader.run<Got>('get', { id: value }), { value: text, indexed: false });
  });

  it('a closed client does not answer from the index any more', async () => {
    await start();
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    const value = await client.put({ small: true });
    // Put through the put ring: in the index once the daemon drained it (any request does).
    await client.status();
    assert.deepEqual(await client.get(value), { small: true });
    assert.equal(client.readIndexStats!.hits, 1);
    client.close();
    await assert.rejects(client.get(value), { code: 'ConnectionClosed' });
  });

  it('--read-index-slots 0 keeps no index: every get asks the daemon', async () => {
    await start(['--read-index-slots', '0']);
    const [writer, reader] = await Promise.all([startClient(daemon.socket), startClient(daemon.socket)]);
    const [id] = await writer.run<string[]>('putTagged', { tags: [3] });
    await reader.run<Got>('get', { copy: true, id });
    assert.equal(await reader.run('stats'), null);
    assert.equal(await requestsDuring(() => reader.run<Got>('get', { copy: true, id })), 1);
  });
});
