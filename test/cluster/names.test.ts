/**
 * Names across three daemons on one etcd: one namespace, each change one etcd transaction.
 * Concurrent publishers of the same name on two daemons: exactly one wins. A waiter on one
 * daemon wakes when another publishes. putNames is all or none; override swaps; dropName
 * through any daemon drops everywhere.
 */
import * as assert from 'node:assert/strict';
import { waitFor } from '../fixtures/cluster';
import {
  startChildClient,
  startTestCluster,
  type ChildClient,
  type ClusterDaemon,
  type TestCluster,
} from '../fixtures/cluster-daemons';

const PROPAGATION_MS = 3_000;
const RACE_ROUNDS = 10;

describe('cluster names', function () {
  this.timeout(30_000);
  let cluster: TestCluster | undefined;
  let d1: ClusterDaemon, d2: ClusterDaemon, d3: ClusterDaemon;
  before(async function () {
    this.timeout(40_000);
    cluster = await startTestCluster('names', 3);
    [d1, d2, d3] = cluster.daemons;
  });
  after(() => cluster?.stop());

  it('concurrent putName of one name from clients of two daemons: exactly one wins, the other gets NameExists', async () => {
    const [left, right]: ChildClient[] = await Promise.all([
      startChildClient(d1.daemon.socket),
      startChildClient(d2.daemon.socket),
    ]);
    for (let round = 0; round < RACE_ROUNDS; round++) {
      const name = `race/${round}`;
      const [leftId, rightId] = await Promise.all([
        left.call<string>('put', `left ${round}`),
        right.call<string>('put', `right ${round}`),
      ]);
      const outcomes = await Promise.all([
        left.attempt('putName', leftId, name),
        right.attempt('putName', rightId, name),
      ]);
      const winners = outcomes.filter((outcome) => outcome.ok);
      assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(outcomes)}`);
      const loser = outcomes.find((outcome) => !outcome.ok)!;
      const winnerId = outcomes[0].ok ? leftId : rightId;
      assert.equal(loser.code, 'NameExists');
      assert.equal(loser.message, `name "${name}" is taken by ${winnerId}; pass override to move it`);
      for (const d of [d1, d2, d3]) {
        await waitFor(
          `daemon ${d.instanceId} to agree on ${name}`,
          async () => (await d.client.getName(name).catch(() => undefined)) === winnerId,
          PROPAGATION_MS,
        );
      }
    }
  });

  it('getName(wait) on daemon 3 returns when daemon 1 publishes', async () => {
    const waiting = d3.client.getName('late/arrival', { wait: true, timeoutMs: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const publisher = await startChildClient(d1.daemon.socket);
    const id = await publisher.call<string>('put', { late: true }, { name: 'late/arrival' });
    assert.equal(await waiting, id);
    assert.deepEqual(await d3.client.get('late/arrival'), { late: true });
    await assert.rejects(d3.client.getName('never/published', { wait: true, timeoutMs: 200 }), {
      code: 'NameNotFound',
      message: 'name "never/published" was not published within 200 ms',
    });
  });

  it('putNames is all or none across daemons, override swaps, and dropName anywhere drops everywhere', async () => {
    const a = await d1.client.put('a');
    const b = await d2.client.put('b');
    await d1.client.putName(a, 'set/taken');
    await waitFor(
      'daemon 2 to see set/taken',
      async () => (await d2.client.listNames({ pattern: 'set/*' })).includes('set/taken'),
      PROPAGATION_MS,
    );
    await assert.rejects(d2.client.putNames({ 'set/one': b, 'set/taken': b, 'set/two': b }), {
      code: 'NameExists',
      message: `name "set/taken" is taken by ${a}; pass override to move it`,
    });
    assert.deepEqual(await d2.client.listNames({ pattern: 'set/*' }), ['set/taken'], 'none of the batch was published');

    // A name on another instance's object: daemon 2 names daemon 1's object.
    await waitFor('daemon 2 to see a persisted', () => d2.client.exists(a), PROPAGATION_MS);
    await d2.client.putNames({ 'set/one': b, 'set/two': b, 'set/of-a': a });
    for (const d of [d1, d3]) {
      await waitFor(
        `daemon ${d.instanceId} to see the batch`,
        async () => (await d.client.listNames({ pattern: 'set/*' })).length === 4,
        PROPAGATION_MS,
      );
    }
    assert.equal(await d3.client.getName('set/of-a'), a);

    await d3.client.putName(b, 'set/taken', { override: true });
    assert.equal(await d3.client.getName('set/taken'), b);
    await waitFor('daemon 1 to see the swap', async () => (await d1.client.getName('set/taken')) === b, PROPAGATION_MS);
    assert.equal(await d1.client.exists(a), true, 'moving a name does not delete the object');

    await d3.client.dropName('set/one');
    await d3.client.dropName('set/one'); // no-op when absent
    for (const d of [d1, d2]) {
      await waitFor(
        `daemon ${d.instanceId} to lose set/one`,
        async () => !(await d.client.listNames({ pattern: 'set/*' })).includes('set/one'),
        PROPAGATION_MS,
      );
    }
    await assert.rejects(d1.client.getName('set/one'), { code: 'NameNotFound' });

    const tooMany = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`many/${i}`, a]));
    await assert.rejects(d1.client.putNames(tooMany), {
      code: 'InvalidArgument',
      message: 'putNames: at most 128 names per call in a cluster (one etcd transaction), got 129',
    });
    await assert.rejects(d2.client.putName('o00ff000000000001', 'set/nowhere'), {
      code: 'ObjectNotFound',
      message:
        /^object o00ff000000000001 does not exist here or in the cluster: instance 255 that made it is not in the cluster$/,
    });
  });

  it('a named object pins against delete everywhere; naming persists it first', async () => {
    const id = await d2.client.put('pinned');
    assert.equal(await d1.client.exists(id), false);
    await d2.client.putName(id, 'pin/me');
    await waitFor(
      'daemon 1 to see the name',
      async () => (await d1.client.getName('pin/me').catch(() => undefined)) === id,
      PROPAGATION_MS,
    );
    assert.equal(await d1.client.exists(id), true);
    await assert.rejects(d2.client.delete(id), { code: 'Conflict', message: /is published as "pin\/me"/ });
    await assert.rejects(d1.client.delete(id), { code: 'Conflict', message: /is published as "pin\/me"/ });
    await d1.client.dropName('pin/me');
    await waitFor(
      'daemon 2 to see the name dropped',
      async () => (await d2.client.listNames({ pattern: 'pin/*' })).length === 0,
      PROPAGATION_MS,
    );
    await d1.client.delete(id);
    await waitFor('daemon 2 to delete it', async () => !(await d2.client.exists(id)), PROPAGATION_MS);
  });
});
