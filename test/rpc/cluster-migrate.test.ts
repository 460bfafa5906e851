/**
 * migrate in a cluster: two daemons on a real etcd, each serving RPC; the migrating daemon finds
 * the owner's endpoint in its cluster view (no --rpc-peer), and forgets it once the owner leaves.
 */
import * as assert from 'node:assert/strict';
import type { Table } from 'apache-arrow';
import { connect, isTrellisError, type TrellisClient } from '../../src/index';
import { assertValuesEqual } from '../fixtures/arrow-compare';
import { generatedTable } from '../fixtures/arrow-tables';
import { uniquePrefix, waitFor } from '../fixtures/cluster';
import { startTestDaemon, type TestDaemon } from '../fixtures/daemon';
import { startEtcd, type TestEtcd } from '../fixtures/etcd';

describe('migrate through the cluster view', function () {
  this.timeout(60_000);
  let etcd: TestEtcd;
  let owner: TestDaemon;
  let other: TestDaemon;
  let onOwner: TrellisClient;
  let onOther: TrellisClient;

  before(async function () {
    this.timeout(40_000);
    etcd = await startEtcd();
    const prefix = uniquePrefix('migrate');
    const start = () =>
      startTestDaemon([
        '--size',
        '128MiB',
        '--rpc-port',
        '0',
        '--etcd',
        etcd.endpoint,
        '--etcd-prefix',
        prefix,
        '--lease-ttl',
        '2',
      ]);
    [owner, other] = await Promise.all([start(), start()]);
    onOwner = await connect(owner.socket);
    onOther = await connect(other.socket);
    await waitFor(
      'the other daemon to see the owner and its RPC endpoint',
      async () =>
        (await onOther.clusterInfo()).instances.some(
          (i) => i.instanceId === owner.instanceId && i.alive && i.rpcEndpoint === owner.rpcEndpoint,
        ),
      5_000,
    );
  });
  after(async () => {
    await onOwner?.close();
    await onOther?.close();
    await other?.stop();
    await owner?.stop();
    await etcd?.dispose();
  });

  it('copies an object found through the cluster view, persisted or not', async () => {
    const table = generatedTable(10_000, 11);
    const id = await onOwner.put(table);
    const copy = await onOther.migrate(id);
    assert.equal(parseInt(copy.slice(1, 5), 16), other.instanceId);
    assertValuesEqual((await onOther.get(copy)) as Table, table);
    assert.equal(await onOther.migrate(id), copy, 'a second migrate is free');

    const named = await onOwner.put(new Float64Array([1, 2, 3]), { name: 'cluster/tensor' });
    await waitFor(
      'the name to reach the other daemon',
      async () => (await onOther.listNames()).includes('cluster/tensor'),
      5_000,
    );
    assert.deepEqual([...((await onOther.get('cluster/tensor', { fetch: true })) as Float64Array)], [1, 2, 3]);
    assert.notEqual(await onOther.migrate('cluster/tensor'), named);
  });

  it('putGlobal with a name publishes the object and its name to the whole cluster', async () => {
    const remotePart = await onOwner.put(new Float64Array([1, 2]));
    const localPart = await onOther.put(new Float64Array([3]));
    const global = await onOther.putGlobal(
      'demo::Partitioned',
      [remotePart, localPart],
      { rows: 3 },
      { name: 'cluster/global' },
    );
    await waitFor(
      'the name to reach the owner',
      async () => (await onOwner.listNames()).includes('cluster/global'),
      5_000,
    );
    assert.equal(await onOwner.getName('cluster/global'), global);
    const meta = await onOwner.getMeta('cluster/global');
    assert.equal(meta.id, global);
    assert.deepEqual(meta.fields, { rows: 3 });
    assert.deepEqual(
      Object.values(meta.members).map((member) => [member.id, member.instanceId]),
      [
        [remotePart, owner.instanceId],
        [localPart, other.instanceId],
      ],
    );
  });

  it("putGlobal takes a put's options: persist, labels and parents, in its one request", async () => {
    const source = await onOther.put({ raw: true }, { name: 'cluster/global-source' });
    const part = await onOther.put(new Float64Array([7]));
    const before = (await onOther.status()).requests;
    const global = await onOther.putGlobal(
      'demo::Partitioned',
      [part],
      { rows: 1 },
      { persist: true, labels: { stage: 'joined' }, parents: ['cluster/global-source'] },
    );
    // The putGlobal and the status call.
    assert.equal((await onOther.status()).requests - before, 2);
    await waitFor('the owner to see it', () => onOwner.exists(global), 5_000);
    const meta = await onOwner.getMeta(global);
    assert.deepEqual(meta.labels, { stage: 'joined' });
    assert.deepEqual(meta.parents, [{ id: source, name: 'cluster/global-source', version: 1 }]);
    assert.deepEqual(
      (await onOwner.lineage(global)).map((entry) => [entry.depth, entry.id, entry.name]),
      [
        [0, global, undefined],
        [1, source, 'cluster/global-source'],
      ],
    );
  });

  it('an owner that has left the cluster is Unavailable', async () => {
    const id = await onOwner.put(Buffer.from('short-lived'));
    await owner.stop();
    await waitFor(
      'the owner to leave the view',
      async () => !(await onOther.clusterInfo()).instances.some((i) => i.instanceId === owner.instanceId && i.alive),
      10_000,
    );
    await assert.rejects(onOther.migrate(id), (error: unknown) => {
      assert.ok(isTrellisError(error, 'Unavailable'), String(error));
      assert.match(error.message, new RegExp(`instance ${owner.instanceId} has left the cluster`));
      return true;
    });
  });
});
