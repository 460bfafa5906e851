/**
 * Faults (DESIGN.md invariant 6): a daemon killed with SIGKILL leaves the cluster view within
 * its lease TTL, with its objects and names; while etcd is down local work goes on and cluster
 * calls fail fast with Unavailable; when etcd comes back with its data wiped, every daemon
 * registers again and puts back what it owns, without a restart.
 */
import * as assert from 'node:assert/strict';
import { connectEtcd, waitFor } from '../fixtures/cluster';
import { connectRpc } from '../../src/index';
import { startChildClient, startClusterDaemons, startProxiedDaemon } from '../fixtures/cluster-daemons';
import { startEtcd } from '../fixtures/etcd';
import { onCleanup } from '../fixtures/setup';

const TTL_SECONDS = 2;
/** etcd checks expiry every 500 ms; the watch event and our poll add a little more. */
const EXPIRY_MARGIN_MS = 2_500;
const PROPAGATION_MS = 3_000;
/** A cluster call while etcd is down answers within the etcd call deadline (2 s), plus slack. */
const FAIL_FAST_MS = 2_500;

const alive = async (client: {
  clusterInfo(): Promise<{ instances: Array<{ instanceId: number; alive: boolean }> }>;
}) =>
  (await client.clusterInfo()).instances
    .filter((i) => i.alive)
    .map((i) => i.instanceId)
    .sort((a, b) => a - b);

describe('cluster faults', function () {
  this.timeout(40_000);

  it('a daemon killed with SIGKILL is gone from the others within its TTL, with its names; its objects give typed errors', async () => {
    const etcd = await startEtcd();
    const [d1, d2, d3] = await startClusterDaemons(etcd.endpoint, 3, 'sigkill', TTL_SECONDS);
    const writer = await startChildClient(d1.daemon.socket);
    const valueId = await writer.call<string>('put', { owner: 1 }, { name: 'dead/value' });
    const blobId = await writer.call<string>('put', { hex: 'c0ffee' }, { persist: true });
    const survivorId = await d3.client.put({ owner: 3 }, { name: 'alive/three' });
    await waitFor(
      'daemon 2 to see daemon 1 objects',
      async () => (await d2.client.exists(valueId)) && (await d2.client.exists(blobId)),
      PROPAGATION_MS,
    );
    // A name on daemon 1's object, published through daemon 2: it lives on daemon 1's lease.
    await d2.client.putName(blobId, 'dead/named-by-two');
    await waitFor('daemon 3 to see all names', async () => (await d3.client.listNames()).length === 3, PROPAGATION_MS);

    d1.daemon.process.kill('SIGKILL');
    const killedAt = Date.now();
    const limit = TTL_SECONDS * 1000 + EXPIRY_MARGIN_MS;
    for (const d of [d2, d3]) {
      await waitFor(
        `daemon ${d.instanceId} to see daemon 1 gone`,
        async () => !(await alive(d.client)).includes(d1.instanceId),
        limit,
      );
      await waitFor(
        `daemon ${d.instanceId} to lose daemon 1's names`,
        async () => (await d.client.listNames()).join() === 'alive/three',
        limit,
      );
    }
    assert.ok(Date.now() - killedAt <= limit + 500, `took ${Date.now() - killedAt} ms`);
    const info = (await d2.client.clusterInfo()).instances.find((i) => i.instanceId === d1.instanceId)!;
    assert.equal(info.alive, false, 'a dead instance is listed, as not alive');

    await assert.rejects(d2.client.getName('dead/value'), { code: 'NameNotFound' });
    for (const id of [valueId, blobId]) {
      await assert.rejects(d2.client.get(id), {
        code: 'ObjectNotFound',
        message: new RegExp(
          `^object ${id} does not exist here or in the cluster: instance ${d1.instanceId} \\(.+\\) that made it has left the cluster$`,
        ),
      });
      await assert.rejects(d3.client.getMeta(id), { code: 'ObjectNotFound' });
      assert.equal(await d3.client.exists(id), false);
    }
    assert.deepEqual(await d2.client.get('alive/three'), { owner: 3 });
    assert.equal(await d2.client.getName('alive/three'), survivorId);
  });

  it('etcd down: local work goes on, cluster calls fail fast; etcd back with its data wiped: everything comes back', async () => {
    const etcd = await startEtcd();
    const [d1, d2] = await startClusterDaemons(etcd.endpoint, 2, 'wipe', TTL_SECONDS);
    const one = await d1.client.put({ from: 1 }, { name: 'keep/one' });
    const blob = await d1.client.put(Buffer.from('persisted bytes'), { persist: true });
    const two = await d2.client.put({ from: 2 }, { name: 'keep/two' });
    await waitFor(
      'daemon 2 to see daemon 1 objects',
      async () => (await d2.client.exists(blob)) && (await d2.client.exists(one)),
      PROPAGATION_MS,
    );
    await d2.client.putName(one, 'keep/cross');
    await waitFor('daemon 1 to see every name', async () => (await d1.client.listNames()).length === 3, PROPAGATION_MS);
    const before = await d1.client.status();

    await etcd.stop();
    // Local work goes on.
    const local = await d1.client.put(Buffer.alloc(4096, 1));
    assert.equal((await d1.client.getBlob(local)).buffer[4095], 1);
    assert.deepEqual(await d1.client.get('keep/one'), { from: 1 });
    await d1.client.delete(local);
    // Cluster calls fail fast.
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['putName', () => d1.client.putName(one, 'keep/new')],
      ['put with a name', () => d1.client.put('named', { name: 'keep/new' })],
      ['persist', async () => d1.client.persist(await d1.client.put('more'))],
      ['dropName', () => d2.client.dropName('keep/two')],
      ['delete of a persisted object', () => d1.client.delete(blob)],
    ];
    for (const [what, call] of calls) {
      const started = Date.now();
      await assert.rejects(call(), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'Unavailable', `${what}: ${error.message}`);
        assert.match(error.message, /etcd/);
        return true;
      });
      assert.ok(Date.now() - started < FAIL_FAST_MS, `${what} took ${Date.now() - started} ms`);
    }
    assert.equal(
      (await d1.client.status()).objects,
      before.objects + 1,
      'a failed named put leaves nothing behind (the persist test put one object)',
    );

    // Past the TTL the leases are gone; then etcd comes back with nothing.
    await new Promise((resolve) => setTimeout(resolve, TTL_SECONDS * 1000 + 500));
    await etcd.restart({ wipe: true });
    const both = [d1.instanceId, d2.instanceId].sort((a, b) => a - b);
    for (const d of [d1, d2]) {
      await waitFor(
        `daemon ${d.instanceId} to register again`,
        async () =>
          (await d.client.clusterInfo()).registered && JSON.stringify(await alive(d.client)) === JSON.stringify(both),
        15_000,
      );
    }
    await waitFor(
      'the names to come back on both daemons',
      async () => {
        for (const d of [d1, d2])
          if ((await d.client.listNames({ pattern: 'keep/*' })).join() !== 'keep/cross,keep/one,keep/two') return false;
        return true;
      },
      10_000,
    );
    // Back in etcd itself, put there again by their owners after the wipe.
    const inspect = connectEtcd(etcd.endpoint, d1.prefix);
    const keys = await inspect.run('list keys', (kv) => kv.getAll().keys());
    for (const key of [
      `names/keep/one`,
      `names/keep/two`,
      `names/keep/cross`,
      `objects/${one}`,
      `objects/${two}`,
      `objects/${blob}`,
    ]) {
      assert.ok(keys.includes(key), `${key} in ${keys.join(', ')}`);
    }
    assert.equal(await d2.client.getName('keep/one'), one);
    assert.equal(await d2.client.getName('keep/cross'), one);
    assert.equal(await d1.client.getName('keep/two'), two);
    assert.equal((await d2.client.getMeta(blob)).nbytes, 15);
    assert.deepEqual(await d2.client.get('keep/one'), { from: 1 });
    assert.deepEqual(await d1.client.get('keep/two'), { from: 2 });

    // And cluster calls work again.
    await d1.client.putName(one, 'keep/after');
    await waitFor(
      'daemon 2 to see the new name',
      async () => (await d2.client.getName('keep/after').catch(() => undefined)) === one,
      PROPAGATION_MS,
    );
    await d2.client.delete(blob);
    await waitFor('daemon 1 to delete the blob', async () => !(await d1.client.exists(blob)), PROPAGATION_MS);
  });

  it('a daemon cut off from etcd past its lease TTL answers no name from its stale view; back, it serves the new owner', async () => {
    const etcd = await startEtcd();
    const [d2] = await startClusterDaemons(etcd.endpoint, 1, 'cut-off', TTL_SECONDS);
    // Daemon 1 reaches etcd through a proxy: a silent partition, its clients still reach it.
    const { proxy, client: c1 } = await startProxiedDaemon(etcd.endpoint, d2, TTL_SECONDS);
    const stale = await c1.put({ owner: 1 }, { name: 'cut/taken' });
    await waitFor(
      'daemon 2 to see the name',
      async () => (await d2.client.getName('cut/taken').catch(() => '')) === stale,
      PROPAGATION_MS,
    );

    proxy.pause();
    await waitFor(
      'daemon 2 to lose the name',
      async () => (await d2.client.listNames()).length === 0,
      TTL_SECONDS * 1000 + EXPIRY_MARGIN_MS,
    );
    const taken = await d2.client.put({ owner: 2 }, { name: 'cut/taken' });

    // Its lease ran out long ago: its view may be wrong, so it says so instead of answering.
    for (const read of [() => c1.getName('cut/taken'), () => c1.get('cut/taken'), () => c1.listNames()]) {
      const started = Date.now();
      await assert.rejects(read(), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'Unavailable', error.message);
        assert.match(error.message, /lease/);
        return true;
      });
      assert.ok(Date.now() - started < FAIL_FAST_MS, `took ${Date.now() - started} ms`);
    }
    assert.deepEqual(await c1.get(stale), { owner: 1 }, 'objects by id are still served');

    proxy.resume();
    await waitFor('daemon 1 to register again', async () => (await c1.clusterInfo()).registered, 10_000);
    await waitFor(
      'daemon 1 to answer the new owner',
      async () => (await c1.getName('cut/taken').catch(() => '')) === taken,
      PROPAGATION_MS,
    );
    assert.deepEqual(await c1.get('cut/taken'), { owner: 2 });
    assert.equal(await d2.client.getName('cut/taken'), taken);
  });

  it('cut off past its lease TTL, a daemon answers no name from its stale view over RPC or HTTP either', async () => {
    const etcd = await startEtcd();
    const [d2] = await startClusterDaemons(etcd.endpoint, 1, 'cut-off-rpc', TTL_SECONDS);
    const {
      proxy,
      daemon,
      client: local,
    } = await startProxiedDaemon(etcd.endpoint, d2, TTL_SECONDS, ['--rpc-port', '0', '--http-port', '0']);
    const remote = await connectRpc(daemon.rpcEndpoint!);
    onCleanup(() => remote.close());
    const stale = await local.put({ owner: 1 }, { name: 'cut/taken' });
    assert.equal(await remote.getName('cut/taken'), stale);

    proxy.pause();
    await waitFor(
      'daemon 2 to lose the name',
      async () => (await d2.client.listNames()).length === 0,
      TTL_SECONDS * 1000 + EXPIRY_MARGIN_MS,
    );
    await d2.client.put({ owner: 2 }, { name: 'cut/taken' });

    // The same rule as for its local clients: it says its view may be wrong instead of answering.
    for (const read of [() => remote.getName('cut/taken'), () => remote.get('cut/taken'), () => remote.listNames()]) {
      await assert.rejects(read(), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'Unavailable', error.message);
        assert.match(error.message, /lease/);
        return true;
      });
    }
    // /api/objects shows each object's names: the same rule as /api/names.
    for (const path of ['/api/names', '/api/objects']) {
      const response = await fetch(`http://${daemon.httpEndpoint}${path}`);
      const body = (await response.json()) as { error?: { code: string; message: string } };
      assert.equal(response.status, 503, `${path}: ${JSON.stringify(body)}`);
      assert.equal(body.error?.code, 'Unavailable');
      assert.match(body.error!.message, /lease/);
    }
    assert.deepEqual(await remote.get(stale), { owner: 1 }, 'objects by id are still served');
  });
});
