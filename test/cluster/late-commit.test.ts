/**
 * A publish whose etcd transaction timed out may still have committed: etcd got it, and only its
 * answer was lost. The daemon answers Unavailable and deletes the objects it made, so whatever
 * that transaction wrote (names, records) must not stay behind, pointing at nothing.
 */
import * as assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { connectEtcd, waitFor } from '../fixtures/cluster';
import { startClusterDaemons, startProxiedDaemon } from '../fixtures/cluster-daemons';
import { startEtcd } from '../fixtures/etcd';

/** Long enough that the lease outlives the lost answers: the keys cannot go with it. */
const TTL_SECONDS = 10;
/** The etcd call deadline (2 s), plus slack. */
const FAIL_FAST_MS = 2_500;

describe('a publish whose etcd answer was lost', function () {
  this.timeout(40_000);

  it('a putMany of named values that answered Unavailable leaves no names behind once etcd answers again', async () => {
    const etcd = await startEtcd();
    const [observer] = await startClusterDaemons(etcd.endpoint, 1, 'late-commit', TTL_SECONDS);
    // The writer's daemon reaches etcd through a proxy: its requests get there, the answers do not.
    const { proxy, client: writer } = await startProxiedDaemon(etcd.endpoint, observer, TTL_SECONDS);
    await writer.put({ warm: true }, { name: 'late/warm' });
    await waitFor(
      'the observer to see the first name',
      async () => (await observer.client.listNames()).length === 1,
      3_000,
    );

    proxy.pause('fromTarget');
    const started = Date.now();
    await assert.rejects(
      writer.putMany([{ n: 1 }, { n: 2 }], [{ name: 'late/one' }, { name: 'late/two' }]),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'Unavailable', error.message);
        return true;
      },
    );
    // Within the etcd call deadline (docs/cluster.md): the undo does not wait for etcd again.
    assert.ok(Date.now() - started < FAIL_FAST_MS, `the putMany answered after ${Date.now() - started} ms`);
    proxy.resume('fromTarget');

    // Whatever got into etcd goes again; the observer must not be left with names of nothing.
    await waitFor(
      'the failed putMany to leave no names',
      async () => (await observer.client.listNames({ pattern: 'late/*' })).join() === 'late/warm',
      8_000,
    );
    assert.deepEqual(await writer.get('late/warm'), { warm: true });
  });

  it('a putName that answered Unavailable: once etcd answers, deleting the object takes the name with it', async () => {
    const etcd = await startEtcd();
    const [observer] = await startClusterDaemons(etcd.endpoint, 1, 'late-name', TTL_SECONDS);
    const { proxy, client: writer } = await startProxiedDaemon(etcd.endpoint, observer, TTL_SECONDS);
    const id = await writer.put({ named: 'late' });

    proxy.pause('fromTarget');
    await assert.rejects(writer.putName(id, 'late/name'), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'Unavailable', error.message);
      return true;
    });
    proxy.resume('fromTarget');
    // Whether the name took effect is not known to the writer; either way, nothing is left behind
    // once the object goes.
    await waitFor('the writer to hear from etcd again', async () => (await writer.clusterInfo()).registered, 8_000);
    await writer.delete(id, { force: true });
    await waitFor(
      'the name to go with its object',
      async () => (await observer.client.listNames({ pattern: 'late/*' })).length === 0,
      8_000,
    );
  });

  it('a persist that answered Unavailable: once etcd answers, a delete takes its record with it', async () => {
    const etcd = await startEtcd();
    const [observer] = await startClusterDaemons(etcd.endpoint, 1, 'late-persist', TTL_SECONDS);
    const { proxy, client: writer } = await startProxiedDaemon(etcd.endpoint, observer, TTL_SECONDS);
    const id = await writer.put({ persisted: 'late' });

    proxy.pause('fromTarget');
    await assert.rejects(writer.persist(id), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'Unavailable', error.message);
      return true;
    });
    proxy.resume('fromTarget');
    await waitFor('the writer to hear from etcd again', async () => (await writer.clusterInfo()).registered, 8_000);
    // The record reached etcd: the other daemon lists the object.
    await waitFor(
      'the observer to list the object',
      async () => (await observer.client.listObjects()).some((o) => o.id === id),
      8_000,
    );
    await writer.delete(id, { force: true });
    await waitFor(
      'the record to go with its object',
      async () => !(await observer.client.listObjects()).some((o) => o.id === id),
      8_000,
    );
  });

  it("an undo that would put a name back on another daemon's lease, revoked meanwhile, reads again and finishes", async () => {
    const etcd = await startEtcd();
    const [other] = await startClusterDaemons(etcd.endpoint, 1, 'late-lease', TTL_SECONDS);
    const { proxy, daemon, client: writer } = await startProxiedDaemon(etcd.endpoint, other, TTL_SECONDS);
    // The other daemon's object is the name's latest, so the name's key is on its lease.
    const theirs = await other.client.put({ v: 'theirs' }, { name: 'late/lease' });
    // The writer holds the name, and the record of the other daemon's object with its lease.
    assert.deepEqual(await writer.get('late/lease'), { v: 'theirs' });

    // A put naming a new version reaches etcd, its answer does not: the writer deletes its object
    // and undoes, in the background, what may have committed. The undo's first swap reaches etcd
    // too and fails (the name changed under it); its answer waits here.
    proxy.pause('fromTarget');
    await assert.rejects(writer.put({ v: 'mine' }, { name: 'late/lease', override: true }), { code: 'Unavailable' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Meanwhile the other daemon's lease ends (its record goes with it; it registers again).
    const admin = connectEtcd(etcd.endpoint, other.prefix);
    const key = await admin.run('read the name', (kv) => kv.get('names/late/lease').exec());
    const theirLease = (await admin.run('read the record', (kv) => kv.get(`objects/${theirs}`).exec())).kvs[0].lease;
    assert.notEqual(key.kvs[0].lease, theirLease, "the name is on the writer's lease now");
    await admin.run('revoke the lease', (kv) => kv.leaseClient.leaseRevoke({ ID: theirLease }));
    proxy.resume('fromTarget');

    // The undo's swap reads the name again and puts the version before back, on the lease it
    // read before: gone. Read again, it finishes: the name is the other daemon's object again.
    await waitFor(
      "the name to point at the other daemon's object again",
      async () => {
        const versions = await other.client.versions('late/lease').catch(() => []);
        return versions.length === 1 && versions[0].id === theirs;
      },
      10_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; the writer's daemon said:\n${daemon.output()}`);
    });
    assert.doesNotMatch(daemon.output(), /gave up trying to take back/);
  });

  it('a read-back that etcd refuses (not a silence) is given up at once, logged, not retried', async () => {
    const etcd = await startEtcd();
    const [observer] = await startClusterDaemons(etcd.endpoint, 1, 'late-refused', TTL_SECONDS);
    const { proxy, daemon, client: writer } = await startProxiedDaemon(etcd.endpoint, observer, TTL_SECONDS);
    const id = await writer.put({ named: 'refused' });

    // Held both ways: the putName, and the read-back that follows its Unavailable, reach etcd
    // only once it refuses every request that names no user, an answer that will not change.
    proxy.pause('both');
    await assert.rejects(writer.putName(id, 'late/refused'), { code: 'Unavailable' });
    const admin = new Etcd3({ hosts: etcd.endpoint });
    try {
      await admin.role('root').create();
      await admin.user('root').create('secret');
      await admin.user('root').addRole('root');
      await admin.auth.authEnable({});
    } finally {
      admin.close();
    }
    proxy.resume('both');
    await waitFor(
      'the writer to give up the read-back',
      () =>
        /gave up trying to read back 1 records of an unanswered publish: .*user name is empty/.test(daemon.output()),
      8_000,
    );
  });
});
