/**
 * Other instances' object records are read when asked, not mirrored: a daemon holds the records
 * it was asked about (a bounded cache), never drops a delete, a new ttl or new labels, and joins
 * a cluster of any size (its first read is in pages).
 */
import * as assert from 'node:assert/strict';
import { commitInBatches, type TransactionOperation } from '../../src/daemon/metadata/batched-transaction';
import { encodeRecord, encodeRewrites, objectKey, rewriteKey } from '../../src/daemon/cluster/records';
import { RemoteRecords } from '../../src/daemon/cluster/remote-records';
import { connectEtcd, uniquePrefix, waitFor } from '../fixtures/cluster';
import { startClusterDaemons, type ClusterDaemon } from '../fixtures/cluster-daemons';
import { startTestDaemon } from '../fixtures/daemon';
import { startEtcd, type TestEtcd } from '../fixtures/etcd';
import { connect } from '../../src/index';
import { onCleanup } from '../fixtures/setup';

/** How long a change made through one daemon may take to show on another (a watch event). */
const PROPAGATION_MS = 3_000;
/** An instance id no daemon in these tests gets. */
const WRITER = 0x0ff0;

const idOf = (instanceId: number, n: number): string =>
  'o' + instanceId.toString(16).padStart(4, '0') + n.toString(16).padStart(12, '0');

function recordPut(id: string, labels: Record<string, string> = {}, members: Record<string, string> = {}) {
  const value = encodeRecord({
    typename: 'trellis::Value',
    nbytes: 0,
    createdAt: Date.now(),
    labels,
    fields: { value: id },
    members,
    blob: false,
  });
  return { kind: 'put', key: objectKey(id), value } as const;
}

describe('remote object records', function () {
  this.timeout(60_000);
  let etcd: TestEtcd;
  before(async function () {
    this.timeout(30_000);
    etcd = await startEtcd();
  });
  after(() => etcd.dispose());

  describe('the cache (in this process)', () => {
    it('reads a tree when asked, keeps at most its capacity, and drops deleted and rewritten records', async () => {
      const connection = connectEtcd(etcd.endpoint, uniquePrefix('cache'));
      const records = new RemoteRecords(connection, 3);
      onCleanup(() => records.stop());
      await records.start();
      const [a, b, c, d, e] = [1, 2, 3, 4, 5].map((n) => idOf(WRITER, n));
      await commitInBatches(connection, [
        recordPut(a),
        recordPut(b),
        recordPut(c, {}, { x: a, y: b }),
        recordPut(d),
        recordPut(e),
      ]);
      assert.equal(records.size, 0, 'nothing is read before it is asked for');

      const found = await records.load([c]);
      assert.deepEqual([...found.keys()].sort(), [a, b, c].sort(), 'the tree under it, members too');
      assert.equal(records.size, 3);
      await records.load([d, e, idOf(WRITER, 99)]);
      assert.equal(records.size, 3, 'bounded: the least recently used go');
      assert.equal((await records.load([idOf(WRITER, 99)])).get(idOf(WRITER, 99)), null, 'absent: null');
      assert.ok(records.cached(e) && records.cached(d));

      // A delete anyone makes reaches the cache through the watch.
      await connection.run('delete', (kv) => kv.delete().key(objectKey(e)).exec());
      await waitFor('the deleted record to leave the cache', () => records.cached(e) === undefined, PROPAGATION_MS);
      // A record written again is announced under rewrites/ in the same transaction.
      const rewrite: TransactionOperation[] = [
        recordPut(d, { stage: 'cooked' }),
        { kind: 'put', key: rewriteKey(WRITER), value: encodeRewrites([d]) },
      ];
      await commitInBatches(connection, rewrite);
      await waitFor('the rewritten record to leave the cache', () => records.cached(d) === undefined, PROPAGATION_MS);
      assert.deepEqual((await records.load([d])).get(d)?.labels, { stage: 'cooked' });
    });

    it("a cached record's field bytes are its own, not views of etcd's response", async () => {
      const connection = connectEtcd(etcd.endpoint, uniquePrefix('own'));
      const records = new RemoteRecords(connection);
      onCleanup(() => records.stop());
      await records.start();
      const ids = [1, 2, 3].map((n) => idOf(WRITER, n));
      const data = (n: number) => Buffer.alloc(100, n);
      await commitInBatches(
        connection,
        ids.map((id, n) => ({
          kind: 'put',
          key: objectKey(id),
          value: encodeRecord({
            typename: 'trellis::Value',
            nbytes: 0,
            createdAt: Date.now(),
            labels: {},
            fields: { data: data(n) },
            members: {},
            blob: false,
          }),
        })),
      );
      await records.load(ids);
      ids.forEach((id, n) => {
        const bytes = records.cached(id)?.fields.data as Uint8Array;
        assert.deepEqual(Buffer.from(bytes), data(n));
        assert.equal(bytes.buffer.byteLength, bytes.byteLength, `${id}: a view of a larger buffer`);
      });
    });
  });

  describe('through daemons', () => {
    let d1: ClusterDaemon, d2: ClusterDaemon;
    before(async function () {
      this.timeout(40_000);
      [d1, d2] = await startClusterDaemons(etcd.endpoint, 2, 'remote');
    });

    it('a daemon that never saw an object reads its metadata tree when asked, and holds only that', async () => {
      const treeId = await d1.client.put([Buffer.from('a'), { inline: true }], { persist: true, labels: { k: 'v' } });
      const valueId = await d1.client.put({ city: 'Lyon' }, { name: 'remote/value' });
      // A daemon that joins afterwards, and one that was there all along: neither holds a record yet.
      const d3 = await startTestDaemon(['--size', '64MiB', '--etcd', etcd.endpoint, '--etcd-prefix', d1.prefix]);
      const c3 = await connect(d3.socket);
      onCleanup(() => c3.close());
      for (const client of [d2.client, c3]) {
        assert.equal((await client.status()).remoteRecords, 0, 'nothing held before it is asked');
        const tree = await client.getMeta(treeId);
        assert.equal(tree.instanceId, d1.instanceId);
        assert.deepEqual(tree.labels, { k: 'v' });
        assert.equal(Object.keys(tree.members).length, 2, 'members read with it');
        assert.equal(await client.exists(treeId), true);
        assert.deepEqual(await client.get('remote/value'), { city: 'Lyon' });
        const held = (await client.status()).remoteRecords;
        assert.ok(held >= 4 && held <= 5, `holds the records it was asked about: ${held}`);
      }
      await d1.client.delete([treeId, valueId], { force: true });
    });

    it("getMany of another daemon's objects, and an inline put with one as parent, load their records first", async () => {
      const first = await d1.client.put({ n: 1 }, { persist: true });
      const second = await d1.client.put({ n: 2 }, { name: 'remote/many' });
      assert.deepEqual(await d2.client.getMany([first, 'remote/many']), [{ n: 1 }, { n: 2 }]);
      // A small Buffer put inline (putBlobs) whose parent is another daemon's, not read here before.
      const parent = await d1.client.put({ n: 3 }, { persist: true });
      const child = await d2.client.put(Buffer.from('derived'), { parents: [parent] });
      assert.deepEqual(
        (await d2.client.lineage(child)).map((entry) => entry.id),
        [child, parent],
      );
      await d2.client.delete([child]);
      await d1.client.delete([first, second, parent], { force: true });
    });

    it('after its owner deletes it, relabels it or gives it a ttl, no daemon serves the cached record', async () => {
      const deleted = await d1.client.put({ doomed: true }, { persist: true });
      const relabeled = await d1.client.put({ stage: 1 }, { persist: true, labels: { stage: 'raw' } });
      const expiring = await d1.client.put({ short: true }, { persist: true });
      for (const id of [deleted, relabeled, expiring]) assert.equal((await d2.client.getMeta(id)).id, id);

      await d1.client.delete(deleted);
      await waitFor(
        'daemon 2 to drop the deleted object',
        async () => !(await d2.client.exists(deleted)),
        PROPAGATION_MS,
      );
      await assert.rejects(d2.client.getMeta(deleted), { code: 'ObjectNotFound' });

      await d1.client.label(relabeled, { stage: 'cooked' });
      await waitFor(
        'daemon 2 to show the new labels',
        async () => (await d2.client.getMeta(relabeled)).labels.stage === 'cooked',
        PROPAGATION_MS,
      );

      await d1.client.persist(expiring, { ttl: 1 });
      const started = Date.now();
      await waitFor(
        'daemon 2 to let it expire',
        async () => !(await d2.client.exists(expiring)),
        1_000 + PROPAGATION_MS,
      );
      assert.ok(Date.now() - started >= 500, 'not long before its time');
      await assert.rejects(d2.client.getMeta(expiring), { code: 'ObjectNotFound' });
      await d1.client.delete(relabeled);
    });

    it("a label another daemon writes reaches the owner's table and every daemon's cache", async () => {
      const id = await d1.client.put({ stage: 1 }, { persist: true, labels: { stage: 'raw' } });
      const d3 = await startTestDaemon(['--size', '64MiB', '--etcd', etcd.endpoint, '--etcd-prefix', d1.prefix]);
      const c3 = await connect(d3.socket);
      onCleanup(() => c3.close());
      // Daemon 3 caches the record; daemon 2, neither owner nor holder of a cached copy, labels it.
      assert.deepEqual((await c3.getMeta(id)).labels, { stage: 'raw' });
      assert.deepEqual(await d2.client.label(id, { stage: 'cooked', by: 'd2' }), { stage: 'cooked', by: 'd2' });
      assert.equal((await d2.client.getMeta(id)).labels.stage, 'cooked', 'the labelling daemon reads it back');
      await waitFor(
        'the owner and daemon 3 to show the new labels',
        async () => (await d1.client.getMeta(id)).labels.by === 'd2' && (await c3.getMeta(id)).labels.by === 'd2',
        PROPAGATION_MS,
      );
      // The owner labels on top of them: its compare-and-swap starts from the record as written.
      assert.deepEqual(await d1.client.label(id, { by: null }), { stage: 'cooked' });
      await waitFor(
        'daemon 3 to drop the label the owner took out',
        async () => (await c3.getMeta(id)).labels.by === undefined,
        PROPAGATION_MS,
      );
      await d1.client.delete(id);
    });

    it("an idle daemon holds none of another daemon's persisted objects, and still lists them (in pages)", async () => {
      const before = (await d2.client.status()).remoteRecords;
      const values = Array.from({ length: 2_000 }, (_, n) => ({ n }));
      const ids = await d1.client.putMany(
        values,
        values.map(() => ({ persist: true, labels: { batch: 'idle' } })),
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal((await d2.client.status()).remoteRecords, before, 'nothing arrives unasked');
      const listed = await d2.client.listObjects({ labels: { batch: 'idle' }, limit: 5_000 });
      assert.equal(listed.length, ids.length, 'every remote persisted object, read in pages');
      assert.equal((await d2.client.status()).remoteRecords, before, 'a listing caches nothing');
      await d1.client.delete(ids);
    });
  });

  it('a daemon joins a cluster holding 22,000 persisted objects (more than one etcd reply holds)', async function () {
    this.timeout(120_000);
    const prefix = uniquePrefix('join');
    const connection = connectEtcd(etcd.endpoint, prefix, 5_000);
    const count = 22_000;
    const operations = Array.from({ length: count }, (_, n) => recordPut(idOf(WRITER, n + 1), { join: 'yes' }));
    // Written straight to etcd, as a daemon persisting them would, in parallel transactions.
    const slices = Array.from({ length: 8 }, (_, i) => operations.filter((_, n) => n % 8 === i));
    await Promise.all(slices.map((slice) => commitInBatches(connection, slice)));

    const daemon = await startTestDaemon(
      ['--size', '64MiB', '--etcd', etcd.endpoint, '--etcd-prefix', prefix, '--lease-ttl', '2'],
      60_000,
    );
    const client = await connect(daemon.socket);
    onCleanup(() => client.close());
    assert.equal((await client.status()).remoteRecords, 0, 'joined without reading them');
    const newest = await client.listObjects({ labels: { join: 'yes' }, limit: 3 });
    assert.equal(newest.length, 3);
    assert.equal((await client.getMeta(idOf(WRITER, 12_345))).fields.value, idOf(WRITER, 12_345));
    assert.equal((await client.status()).remoteRecords, 1);
  });
});
