/**
 * Persisted objects across three daemons on one etcd: what one daemon persists, the others see
 * by metadata, by name and in listings (from their caches, not from etcd); bytes stay with
 * their owner (RemoteObject); a delete through any daemon removes the object everywhere, and
 * its owner frees the bytes; a ttl expires the object on every daemon.
 */
import * as assert from 'node:assert/strict';
import { waitFor } from '../fixtures/cluster';
import {
  startChildClient,
  startClusterDaemons,
  startTestCluster,
  type ClusterDaemon,
  type TestCluster,
} from '../fixtures/cluster-daemons';
import { startEtcd } from '../fixtures/etcd';
import { settledStatus } from '../fixtures/status';

/** How long a change made through one daemon may take to show on another (a watch event). */
const PROPAGATION_MS = 3_000;

describe('cluster objects', function () {
  this.timeout(30_000);
  let cluster: TestCluster | undefined;
  let d1: ClusterDaemon, d2: ClusterDaemon, d3: ClusterDaemon;
  before(async function () {
    this.timeout(40_000);
    cluster = await startTestCluster('objects', 3);
    [d1, d2, d3] = cluster.daemons;
  });
  after(() => cluster?.stop());

  it('gives each daemon its own instance id from etcd, in its object ids too, and lists all three', async () => {
    const ids = [d1, d2, d3].map((d) => d.instanceId);
    assert.equal(new Set(ids).size, 3);
    for (const d of [d1, d2, d3]) {
      assert.equal(d.client.instanceId, d.instanceId);
      const id = await d.client.put('mine');
      assert.equal(parseInt(id.slice(1, 5), 16), d.instanceId, `${id} carries instance ${d.instanceId}`);
      await d.client.delete(id);
    }
    const info = await d2.client.clusterInfo();
    assert.equal(info.clustered, true);
    assert.equal(info.registered, true);
    assert.equal(info.instanceId, d2.instanceId);
    assert.deepEqual(
      info.instances
        .filter((i) => i.alive)
        .map((i) => i.instanceId)
        .sort(),
      [...ids].sort(),
    );
    const first = info.instances.find((i) => i.instanceId === d1.instanceId)!;
    assert.equal(first.socket, d1.daemon.socket);
    assert.equal(first.rpcEndpoint, null);
    assert.equal(typeof first.hostname, 'string');
  });

  it('an object put and persisted through daemon 1 is visible by metadata and by name from daemons 2 and 3', async () => {
    const writer = await startChildClient(d1.daemon.socket);
    const valueId = await writer.call<string>(
      'put',
      { city: 'Lyon', visits: 3 },
      { name: 'objects/value', labels: { kind: 'raw' } },
    );
    const blobId = await writer.call<string>(
      'put',
      { hex: Buffer.from('bytes stay home').toString('hex') },
      { persist: true },
    );
    const listId = await d1.client.put([Buffer.from('a'), new Int32Array([1, 2, 3])]);
    await writer.call('persist', listId);

    for (const reader of [d2, d3]) {
      // An object and its name come in one transaction, and show together.
      await waitFor(
        `daemon ${reader.instanceId} to see the objects`,
        async () => (await reader.client.exists(valueId)) && (await reader.client.exists(blobId)),
        PROPAGATION_MS,
      );
      assert.equal(await reader.client.getName('objects/value'), valueId);
      // A value small enough to ride in metadata needs no bytes from its owner.
      assert.deepEqual(await reader.client.get('objects/value'), { city: 'Lyon', visits: 3 });
      const meta = await reader.client.getMeta(blobId);
      assert.equal(meta.typename, 'trellis::Blob');
      assert.equal(meta.nbytes, 15);
      assert.equal(meta.instanceId, d1.instanceId);
      assert.deepEqual((await reader.client.getMeta('objects/value')).labels, { kind: 'raw' });
      const tree = await reader.client.getMeta(listId);
      assert.equal(Object.keys(tree.members).length, 2, 'members are persisted with their parent');
      await assert.rejects(reader.client.get(blobId), {
        code: 'RemoteObject',
        message: new RegExp(
          `^object ${blobId} \\(trellis::Blob\\) has its bytes on instance ${d1.instanceId} \\(.*\\), not here: get it with \\{ fetch: true \\}, or migrate it$`,
        ),
      });
      const listed = (await reader.client.listObjects()).map((o) => o.id);
      for (const id of [valueId, blobId, listId])
        assert.ok(listed.includes(id), `${id} listed on daemon ${reader.instanceId}`);
      assert.ok((await reader.client.listNames()).includes('objects/value'));
    }
    // Not persisted: stays local.
    const privateId = await d1.client.put('only here');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(await d2.client.exists(privateId), false);
    const { hostname } = (await d2.client.clusterInfo()).instances.find((i) => i.instanceId === d1.instanceId)!;
    await assert.rejects(d2.client.getMeta(privateId), {
      code: 'ObjectNotFound',
      message: `object ${privateId} does not exist here or in the cluster: instance ${d1.instanceId} (${hostname}) that made it has not persisted it, or it was deleted`,
    });
    await d1.client.delete([valueId, blobId, listId, privateId], { force: true });
  });

  it('deleting a persisted object through daemon 2 removes it everywhere, and daemon 1 frees its bytes', async () => {
    const before = await d1.client.status();
    const treeId = await d1.client.put([Buffer.alloc(100_000, 7), Buffer.alloc(50_000, 9)], { name: 'objects/doomed' });
    assert.ok((await d1.client.status()).memoryUsage > before.memoryUsage);
    await waitFor(
      'daemon 2 to see it',
      async () => (await d2.client.listNames()).includes('objects/doomed'),
      PROPAGATION_MS,
    );

    await assert.rejects(d2.client.delete(treeId), {
      code: 'Conflict',
      message: `object ${treeId} is published as "objects/doomed": drop the name first, or delete with force`,
    });
    await d2.client.delete(treeId, { force: true });
    // The deleting daemon answers from its own view at once.
    assert.equal(await d2.client.exists(treeId), false);
    await assert.rejects(d2.client.getName('objects/doomed'), { code: 'NameNotFound' });
    await waitFor(
      'daemons 1 and 3 to lose it',
      async () => !(await d1.client.exists(treeId)) && !(await d3.client.exists(treeId)),
      PROPAGATION_MS,
    );
    assert.equal((await d1.client.listNames({ pattern: 'objects/doomed' })).length, 0);
    const after = await settledStatus(
      d1.client,
      (s) => s.memoryUsage === before.memoryUsage && s.objects === before.objects,
    );
    assert.equal(after.objects, before.objects, 'the object and its members are gone on their owner');
    assert.equal(after.memoryUsage, before.memoryUsage, 'and their bytes are freed');
  });

  it('a ttl expires the object on every daemon; persist checks its arguments', async () => {
    const id = await d1.client.put({ short: 'lived' }, { name: 'objects/ttl' });
    await d1.client.persist(id, { ttl: 1.5 });
    await waitFor('daemon 3 to see it', () => d3.client.exists(id), PROPAGATION_MS);
    const started = Date.now();
    await waitFor(
      'it to expire on daemons 1 and 3',
      async () => !(await d1.client.exists(id)) && !(await d3.client.exists(id)),
      1_500 + PROPAGATION_MS,
    );
    assert.ok(Date.now() - started >= 1_000, 'not before its time');
    await assert.rejects(d3.client.getName('objects/ttl'), { code: 'NameNotFound' });

    await assert.rejects(d1.client.persist(id), { code: 'ObjectNotFound', message: `object ${id} does not exist` });
    const other = await d1.client.put('x', { persist: true });
    await waitFor('daemon 2 to see it', () => d2.client.exists(other), PROPAGATION_MS);
    await d2.client.persist(other); // already persisted by its owner: nothing to do
    await assert.rejects(d2.client.persist(other, { ttl: 5 }), {
      code: 'RemoteObject',
      message: `object ${other} belongs to instance ${d1.instanceId}: only that instance can give it a ttl`,
    });
    await assert.rejects(d1.client.persist(other, { ttl: -1 }), {
      code: 'InvalidArgument',
      message: /ttl must be a positive number of seconds, got -1/,
    });
    await d2.client.delete(other);
  });
});

describe('cluster objects with RPC ports', function () {
  this.timeout(30_000);

  it("registers each daemon's RPC endpoint, and get({ fetch: true }) copies a remote object's bytes", async () => {
    const etcd = await startEtcd();
    const [d1, d2] = await startClusterDaemons(etcd.endpoint, 2, 'rpc', 2, ['--rpc-port', '0']);
    // A daemon registers its endpoint once its RPC port is open, before its ready line; the
    // others learn it through their watch.
    await waitFor(
      'daemon 2 to see both endpoints',
      async () => (await d2.client.clusterInfo()).instances.every((i) => i.rpcEndpoint !== null),
      PROPAGATION_MS,
    );
    const info = await d2.client.clusterInfo();
    for (const instance of info.instances)
      assert.match(instance.rpcEndpoint ?? '', /^127\.0\.0\.1:\d+$/, `instance ${instance.instanceId}`);
    const id = await d1.client.put(Buffer.from('fetched across'), { name: 'rpc/blob' });
    await waitFor(
      'daemon 2 to see it by name',
      async () => (await d2.client.getName('rpc/blob').catch(() => undefined)) === id,
      PROPAGATION_MS,
    );
    const owner = info.instances.find((i) => i.instanceId === d1.instanceId)!;
    await assert.rejects(d2.client.get('rpc/blob'), {
      code: 'RemoteObject',
      message: new RegExp(`on instance ${d1.instanceId} \\(.*, rpc ${owner.rpcEndpoint!.replace(/\./g, '\\.')}\\)`),
    });
    const copy: Buffer = await d2.client.get('rpc/blob', { fetch: true });
    assert.equal(copy.toString(), 'fetched across');
    assert.equal(d2.client.isSharedMemory(copy), true, "the copy lives in daemon 2's shared memory");

    // A clean shutdown leaves the cluster at once: no waiting for the lease to run out.
    assert.equal(await d1.daemon.stop(), 0);
    await waitFor(
      'daemon 2 to see daemon 1 and its name go',
      async () => !(await d2.client.exists(id)) && !(await d2.client.listNames()).includes('rpc/blob'),
      1_500,
    );
    assert.equal(Buffer.from(copy).toString(), 'fetched across', 'the copy stays');
  });
});
