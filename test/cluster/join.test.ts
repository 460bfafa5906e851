/**
 * Joining: a daemon with --etcd takes its instance id from etcd before it says it is ready, and
 * refuses to start, with a clear message, when the settings are wrong or etcd cannot be
 * reached. Without --etcd it is a cluster of one: clusterInfo lists it alone, and persist only
 * applies a ttl.
 */
import * as assert from 'node:assert/strict';
import { connect } from '../../src/index';
import { freePort } from '../fixtures/processes';
import { startTestDaemon } from '../fixtures/daemon';
import { settledStatus } from '../fixtures/status';

const START_FAILS = /trellisd exited \(1\) before it was ready:\ntrellisd: cannot start \[(\w+)\]: (.*)\n/;

async function startFailure(args: string[]): Promise<{ code: string; message: string; ms: number }> {
  const started = Date.now();
  const error = await startTestDaemon(args).then(
    () => assert.fail('the daemon started'),
    (e: Error) => e,
  );
  const match = START_FAILS.exec(error.message);
  assert.ok(match, error.message);
  return { code: match[1], message: match[2], ms: Date.now() - started };
}

describe('joining a cluster', function () {
  this.timeout(30_000);

  it('refuses bad settings and an unreachable etcd, saying why', async () => {
    const port = await freePort();
    const unreachable = await startFailure(['--etcd', `http://127.0.0.1:${port}`, '--etcd-prefix', 'nobody-home']);
    assert.equal(unreachable.code, 'Unavailable');
    assert.match(unreachable.message, new RegExp(`^could not grant a lease: etcd at http://127.0.0.1:${port} `));
    assert.ok(unreachable.ms < 10_000, `gave up after ${unreachable.ms} ms`);

    const notUrl = await startFailure(['--etcd', '127.0.0.1:2379']);
    assert.deepEqual(
      [notUrl.code, notUrl.message],
      ['InvalidArgument', 'etcd endpoint "127.0.0.1:2379" is not a URL such as http://127.0.0.1:2379'],
    );
    const shortLease = await startFailure(['--etcd', `http://127.0.0.1:${port}`, '--lease-ttl', '1']);
    assert.deepEqual(
      [shortLease.code, shortLease.message],
      ['InvalidArgument', 'lease TTL must be a whole number of seconds, at least 2 (etcd ignores shorter ones), got 1'],
    );
  });

  it('alone, clusterInfo lists just this daemon and persist applies only its ttl', async () => {
    const daemon = await startTestDaemon(['--size', '32MiB']);
    const client = await connect(daemon.socket);
    try {
      const info = await client.clusterInfo();
      assert.deepEqual(info, {
        instanceId: 0,
        clustered: false,
        registered: false,
        instances: [
          {
            instanceId: 0,
            hostname: info.instances[0].hostname,
            socket: daemon.socket,
            rpcEndpoint: null,
            alive: true,
          },
        ],
      });
      const before = await client.status();
      const kept = await client.put({ kept: true }, { persist: true });
      const brief = await client.put(Buffer.alloc(10_000, 3), { name: 'alone/brief' });
      await client.persist(brief, { ttl: 0.5 });
      assert.equal(await client.exists(brief), true);
      const after = await settledStatus(client, (s) => s.objects === before.objects + 1, 3_000);
      assert.equal(after.objects, before.objects + 1, 'the object with a ttl expired, the other stayed');
      assert.equal(await client.exists(brief), false);
      assert.equal(await client.exists(kept), true);
      await assert.rejects(client.getName('alone/brief'), { code: 'NameNotFound' });
      await assert.rejects(client.persist('o0000ffffffffffff'), {
        code: 'ObjectNotFound',
        message: 'object o0000ffffffffffff does not exist',
      });
      await assert.rejects(client.persist(kept, { ttl: 0 }), {
        code: 'InvalidArgument',
        message: /ttl must be a positive number of seconds, got 0/,
      });
    } finally {
      await client.close();
      await daemon.stop();
    }
  });
});
