/**
 * Faults by SIGSTOP (issue 13): a process that stops running without dying, then runs again.
 * A stopped daemon keeps its sockets open, so nothing tells the others it is gone but its
 * lease running out; when it resumes, everything it believed may be stale.
 */
import * as assert from 'node:assert/strict';
import { waitFor } from '../fixtures/cluster';
import { startClusterDaemons, type ClusterDaemon } from '../fixtures/cluster-daemons';
import { startEtcd } from '../fixtures/etcd';
import { pause } from '../fixtures/pause';

const TTL_SECONDS = 2;
/** etcd checks expiry every 500 ms; the watch event and our poll add a little more. */
const EXPIRY_MARGIN_MS = 2_500;
const PROPAGATION_MS = 3_000;
/** A cluster call while etcd does not answer fails within the etcd call deadline (2 s), plus slack. */
const FAIL_FAST_MS = 2_500;

const alive = async (d: ClusterDaemon): Promise<number[]> =>
  (await d.client.clusterInfo()).instances
    .filter((i) => i.alive)
    .map((i) => i.instanceId)
    .sort((a, b) => a - b);

describe('cluster faults: stopped processes', function () {
  this.timeout(40_000);

  it('a daemon stopped past its lease TTL is gone for the others; resumed, it registers again and never serves a name taken meanwhile', async () => {
    const etcd = await startEtcd();
    const [d1, d2] = await startClusterDaemons(etcd.endpoint, 2, 'sigstop', TTL_SECONDS);
    const stale = await d1.client.put({ owner: 1 }, { name: 'away/taken' });
    const kept = await d1.client.put({ kept: 1 }, { name: 'away/kept' });
    const blob = await d1.client.put(Buffer.from('persisted on one'), { persist: true });
    await waitFor(
      'daemon 2 to see daemon 1 names and objects',
      async () => (await d2.client.listNames()).length === 2 && (await d2.client.exists(blob)),
      PROPAGATION_MS,
    );

    const resume = pause(d1.daemon.process);
    await waitFor(
      'daemon 2 to see daemon 1 gone',
      async () => !(await alive(d2)).includes(d1.instanceId),
      TTL_SECONDS * 1000 + EXPIRY_MARGIN_MS,
    );
    await waitFor(
      'daemon 2 to lose daemon 1 names',
      async () => (await d2.client.listNames()).length === 0,
      PROPAGATION_MS,
    );
    for (const id of [stale, kept, blob]) {
      await assert.rejects(d2.client.get(id), { code: 'ObjectNotFound' });
      assert.equal(await d2.client.exists(id), false);
    }
    // Another daemon takes one of its names while it is away.
    const taken = await d2.client.put({ owner: 2 }, { name: 'away/taken' });

    // A read already waiting in its socket when it resumes: its etcd watch has news queued too.
    const first = d1.client.getName('away/taken');
    resume();
    const answers = [await first];
    const deadline = Date.now() + 1_500;
    while (Date.now() < deadline) answers.push(await d1.client.getName('away/taken').catch((e: Error) => e.message));
    assert.deepEqual([...new Set(answers)], [taken], 'daemon 1 answered only the new owner');

    await waitFor('daemon 1 to register again', async () => (await d1.client.clusterInfo()).registered, 10_000);
    await waitFor('daemon 2 to see daemon 1 again', async () => (await alive(d2)).includes(d1.instanceId), 10_000);
    await waitFor(
      'daemon 1 names and objects to come back on daemon 2',
      async () =>
        (await d2.client.getName('away/kept').catch(() => undefined)) === kept && (await d2.client.exists(blob)),
      PROPAGATION_MS,
    );
    for (const d of [d1, d2]) {
      assert.equal(await d.client.getName('away/taken'), taken, `on daemon ${d.instanceId}`);
      assert.deepEqual(await d.client.get('away/taken'), { owner: 2 }, `on daemon ${d.instanceId}`);
      assert.deepEqual((await d.client.listNames()).sort(), ['away/kept', 'away/taken']);
    }
    assert.deepEqual(await d2.client.get('away/kept'), { kept: 1 });
    // The stale object is still there on daemon 1, under its id, without the name.
    assert.deepEqual(await d1.client.get(stale), { owner: 1 });
  });

  it('etcd stopped past the call deadline: local work goes on, cluster calls fail fast; resumed, everything comes back', async () => {
    const etcd = await startEtcd();
    const [d1, d2] = await startClusterDaemons(etcd.endpoint, 2, 'etcd-sigstop', TTL_SECONDS);
    const one = await d1.client.put({ from: 1 }, { name: 'hung/one' });
    const two = await d2.client.put({ from: 2 }, { name: 'hung/two' });
    const blob = await d1.client.put(Buffer.from('persisted bytes'), { persist: true });
    await waitFor(
      'both daemons to see both names',
      async () => {
        for (const d of [d1, d2]) if ((await d.client.listNames()).length !== 2) return false;
        return true;
      },
      PROPAGATION_MS,
    );

    etcd.pause();
    const pausedAt = Date.now();
    // Local work goes on.
    const local = await d1.client.put(Buffer.alloc(4096, 7));
    assert.equal((await d1.client.getBlob(local)).buffer[4095], 7);
    assert.deepEqual(await d1.client.get(one), { from: 1 });
    // Cluster calls fail fast, with a typed error.
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['putName', () => d1.client.putName(local, 'hung/new')],
      ['put with a name', () => d2.client.put('named', { name: 'hung/other' })],
      ['persist', () => d1.client.persist(local)],
      ['dropName', () => d2.client.dropName('hung/two')],
      ['delete of a persisted object', () => d1.client.delete(blob)],
    ];
    for (const [what, call] of calls) {
      const started = Date.now();
      await assert.rejects(call(), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'Unavailable', `${what}: ${error.message}`);
        return true;
      });
      assert.ok(Date.now() - started < FAIL_FAST_MS, `${what} took ${Date.now() - started} ms`);
    }
    // Past the call deadline and the lease TTL.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, pausedAt + 3_500 - Date.now())));
    assert.equal((await d1.client.getBlob(local)).buffer[0], 7, 'local gets still work');
    // No lease renewal for a TTL: names may have moved, so the daemons do not answer them.
    for (const d of [d1, d2]) {
      const started = Date.now();
      await assert.rejects(d.client.getName('hung/one'), { code: 'Unavailable' });
      assert.ok(Date.now() - started < FAIL_FAST_MS, `getName took ${Date.now() - started} ms`);
    }
    assert.deepEqual(await d1.client.get(one), { from: 1 }, 'objects by id are still served');

    etcd.resume();
    const both = [d1.instanceId, d2.instanceId].sort((a, b) => a - b);
    for (const d of [d1, d2]) {
      await waitFor(
        `daemon ${d.instanceId} to be registered, seeing both`,
        async () =>
          (await d.client.clusterInfo()).registered && JSON.stringify(await alive(d)) === JSON.stringify(both),
        10_000,
      );
    }
    await waitFor(
      'the names to be there on both daemons',
      async () => {
        for (const d of [d1, d2]) {
          if ((await d.client.getName('hung/one').catch(() => undefined)) !== one) return false;
          if ((await d.client.getName('hung/two').catch(() => undefined)) !== two) return false;
        }
        return true;
      },
      10_000,
    );
    assert.ok(await d2.client.exists(blob));
    // New publishes work, without restarting anything.
    await d1.client.putName(local, 'hung/new');
    await waitFor(
      'daemon 2 to see the new name',
      async () => (await d2.client.getName('hung/new').catch(() => undefined)) === local,
      PROPAGATION_MS,
    );
    assert.deepEqual(await d1.client.get('hung/two'), { from: 2 });
    await d2.client.delete(blob);
    await waitFor('daemon 1 to delete the blob', async () => !(await d1.client.exists(blob)), PROPAGATION_MS);
  });
});
