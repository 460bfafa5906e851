import * as assert from 'node:assert/strict';
import { connect, type TrellisClient } from '../../src/index';
import { uniquePrefix, waitFor } from '../fixtures/cluster';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { startEtcd, type TestEtcd } from '../fixtures/etcd';
import { tempPath } from '../fixtures/setup';

describe('a cluster daemon restarted on its data dir', function () {
  let etcd: TestEtcd;
  let other: TestDaemon;
  let otherClient: TrellisClient;
  let prefix: string;
  const daemonArgs = () => ['--size', '64MiB', '--etcd', etcd.endpoint, '--etcd-prefix', prefix, '--lease-ttl', '2'];

  before(async () => {
    etcd = await startEtcd();
    prefix = uniquePrefix('durable-restart');
    other = await startTestDaemon(daemonArgs());
    otherClient = await connect(other.socket);
  });
  after(async () => {
    await otherClient?.close();
    await other?.stop();
    await etcd?.stop();
  });

  it('takes back its instance id after a SIGKILL and publishes its objects and names again', async () => {
    const dataDir = tempPath('cluster-data');
    let daemon = await startTestDaemon([...daemonArgs(), '--data-dir', dataDir]);
    let client = await connect(daemon.socket);
    const named = await client.put({ kept: true }, { name: 'durable/value' });
    const blob = await client.put(Buffer.alloc(100_000, 7), { persist: true });
    await client.putName(blob, 'durable/blob');
    assert.equal(await otherClient.getName('durable/value'), named);
    await client.close();
    daemon.process.kill('SIGKILL');
    await daemon.stop();

    daemon = await startTestDaemon([...daemonArgs(), '--data-dir', dataDir], 30_000);
    client = await connect(daemon.socket);
    try {
      assert.equal(
        daemon.instanceId,
        Number.parseInt(named.slice(1, 5), 16),
        'the same instance id: ids still point to their owner',
      );
      assert.deepEqual(await client.get('durable/value'), { kept: true });
      assert.ok(((await client.get('durable/blob')) as Buffer).equals(Buffer.alloc(100_000, 7)));
      // The other daemon sees them again, through etcd.
      assert.equal(await otherClient.getName('durable/value', { wait: true, timeoutMs: 10_000 }), named);
      assert.equal(await otherClient.getName('durable/blob', { wait: true, timeoutMs: 10_000 }), blob);
      assert.deepEqual(await otherClient.get(named), { kept: true });
      assert.equal((await otherClient.getMeta(blob)).nbytes, 100_000);
    } finally {
      await client.close();
      await daemon.stop();
    }
  });

  it('keeps labels another daemon set on its objects across a restart', async () => {
    const dataDir = tempPath('cluster-data');
    let daemon = await startTestDaemon([...daemonArgs(), '--data-dir', dataDir]);
    let client = await connect(daemon.socket);
    const id = await client.put(Buffer.alloc(1000, 3), { persist: true, labels: { stage: 'raw' } });
    await waitFor('the other daemon to see the object', () => otherClient.exists(id), 10_000);
    await otherClient.label(id, { stage: 'clean', by: 'other' });
    const relabelled = { stage: 'clean', by: 'other' };
    await waitFor(
      'the owner to take the labels',
      async () => JSON.stringify((await client.getMeta(id)).labels) === JSON.stringify(relabelled),
      10_000,
    );
    // A clean stop: the catalog write that follows the watch event is awaited, not raced.
    await client.close();
    await daemon.stop();

    daemon = await startTestDaemon([...daemonArgs(), '--data-dir', dataDir], 30_000);
    client = await connect(daemon.socket);
    try {
      assert.deepEqual((await client.getMeta(id)).labels, relabelled, 'the owner restarted with the new labels');
      // Published again from the catalog, the record carries them too.
      await waitFor(
        'the other daemon to see the object again with its labels',
        async () =>
          (await otherClient.exists(id)) &&
          JSON.stringify((await otherClient.getMeta(id)).labels) === JSON.stringify(relabelled),
        10_000,
      );
    } finally {
      await client.close();
      await daemon.stop();
    }
  });
});
