/**
 * Name versions across two daemons on one etcd: the history lives in the name's key, so
 * expectVersion is checked in the same transaction as the write: of two clients on two daemons
 * expecting the same version, exactly one wins. Versions, get by version and dropVersion agree
 * everywhere.
 */
import * as assert from 'node:assert/strict';
import { connectEtcd, waitFor } from '../fixtures/cluster';
import {
  startChildClient,
  startTestCluster,
  type ChildClient,
  type ClusterDaemon,
  type TestCluster,
} from '../fixtures/cluster-daemons';

const PROPAGATION_MS = 3_000;
const RACE_ROUNDS = 5;

describe('cluster name versions', function () {
  this.timeout(30_000);
  let cluster: TestCluster | undefined;
  let d1: ClusterDaemon, d2: ClusterDaemon;
  before(async function () {
    this.timeout(40_000);
    cluster = await startTestCluster('versions', 2);
    [d1, d2] = cluster.daemons;
  });
  after(() => cluster?.stop());

  it('two clients on two daemons racing with the same expectVersion: exactly one wins', async () => {
    const [left, right]: ChildClient[] = await Promise.all([
      startChildClient(d1.daemon.socket),
      startChildClient(d2.daemon.socket),
    ]);
    for (let round = 0; round < RACE_ROUNDS; round++) {
      const name = `vrace/${round}`;
      const seed = await d1.client.put(`seed ${round}`);
      assert.equal(await d1.client.putName(seed, name), 1);
      await waitFor(
        `daemon 2 to see ${name}`,
        async () => (await d2.client.getName(name).catch(() => undefined)) === seed,
        PROPAGATION_MS,
      );
      const [leftId, rightId] = await Promise.all([
        left.call<string>('put', `left ${round}`),
        right.call<string>('put', `right ${round}`),
      ]);
      const options = { override: true, expectVersion: 1 };
      const outcomes = await Promise.all([
        left.attempt('putName', leftId, name, options),
        right.attempt('putName', rightId, name, options),
      ]);
      const winners = outcomes.filter((outcome) => outcome.ok);
      assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(outcomes)}`);
      assert.equal(winners[0].result, 2);
      const loser = outcomes.find((outcome) => !outcome.ok)!;
      assert.equal(loser.code, 'Conflict');
      assert.equal(loser.message, `name "${name}": expected version 1, but it is at version 2`);
      const winnerId = outcomes[0].ok ? leftId : rightId;
      for (const d of [d1, d2]) {
        await waitFor(
          `daemon ${d.instanceId} to agree on ${name}`,
          async () => (await d.client.getName(name).catch(() => undefined)) === winnerId,
          PROPAGATION_MS,
        );
        assert.deepEqual(
          (await d.client.versions(name)).map((v) => [v.version, v.id]),
          [
            [2, winnerId],
            [1, seed],
          ],
        );
      }
    }
  });

  it("a client's own write never makes its next one conflict; versions, get by version and dropVersion agree everywhere", async () => {
    const ids = [await d1.client.put({ n: 1 }), await d1.client.put({ n: 2 }), await d1.client.put({ n: 3 })];
    assert.equal(await d1.client.putName(ids[0], 'cv/own', { expectVersion: 0 }), 1);
    assert.equal(await d1.client.putName(ids[1], 'cv/own', { override: true, expectVersion: 1 }), 2);
    assert.equal(await d1.client.putName(ids[2], 'cv/own', { override: true, expectVersion: 2 }), 3);
    await waitFor(
      'daemon 2 to see version 3',
      async () => (await d2.client.versions('cv/own').catch(() => [])).length === 3,
      PROPAGATION_MS,
    );
    assert.deepEqual(await d2.client.get('cv/own', { version: 1 }), { n: 1 });
    assert.deepEqual(await d2.client.versions('cv/own'), await d1.client.versions('cv/own'));
    await d2.client.dropVersion('cv/own', 3);
    assert.equal(await d2.client.getName('cv/own'), ids[1]);
    await waitFor(
      'daemon 1 to see the drop',
      async () => (await d1.client.getName('cv/own')) === ids[1],
      PROPAGATION_MS,
    );
    await assert.rejects(d1.client.putName(ids[2], 'cv/own', { override: true, expectVersion: 3 }), {
      code: 'Conflict',
      message: 'name "cv/own": expected version 3, but it is at version 2',
    });
    assert.equal(await d1.client.putName(ids[2], 'cv/own', { override: true, expectVersion: 2 }), 4);
  });

  it('a forced delete drops only the versions that point to the deleted object; the one before becomes latest', async () => {
    // Version 1 on daemon 1, 2 on daemon 2, 3 on daemon 1 again; a plain name on version 2's object too.
    const one = await d1.client.put({ v: 1 }, { name: 'cv/forced' });
    const two = await d2.client.put({ v: 2 }, { persist: true });
    const three = await d1.client.put({ v: 3 });
    await waitFor('daemon 1 to see daemon 2 object', () => d1.client.exists(two), PROPAGATION_MS);
    assert.equal(await d1.client.putName(two, 'cv/forced', { override: true }), 2);
    assert.equal(await d1.client.putName(three, 'cv/forced', { override: true }), 3);
    await d1.client.putName(two, 'cv/only-two');
    const seen = async (d: ClusterDaemon, expected: Array<[number, string]>) =>
      JSON.stringify((await d.client.versions('cv/forced').catch(() => [])).map((v) => [v.version, v.id])) ===
      JSON.stringify(expected);
    await waitFor(
      'daemon 2 to see three versions',
      () =>
        seen(d2, [
          [3, three],
          [2, two],
          [1, one],
        ]),
      PROPAGATION_MS,
    );

    // A kept older version pins its object everywhere: a delete without force is refused.
    await assert.rejects(d1.client.delete(two), { code: 'Conflict' });
    await d1.client.delete(two, { force: true });
    for (const d of [d1, d2]) {
      await waitFor(
        `daemon ${d.instanceId} to drop version 2 only`,
        () =>
          seen(d, [
            [3, three],
            [1, one],
          ]),
        PROPAGATION_MS,
      );
      await waitFor(
        `daemon ${d.instanceId} to drop the name with no version left`,
        async () => !(await d.client.listNames({ pattern: 'cv/only-two' })).includes('cv/only-two'),
        PROPAGATION_MS,
      );
    }
    // The owner frees the object when the record's delete reaches it, through a watch of its own
    // (names and records are watched apart), so it may come a moment after the name's.
    await waitFor('daemon 2 to free the deleted object', async () => !(await d2.client.exists(two)), PROPAGATION_MS);

    // The latest going makes the one before latest; the key moves to that object's holder.
    await d2.client.delete(three, { force: true });
    for (const d of [d1, d2]) {
      await waitFor(`daemon ${d.instanceId} to see version 1 latest`, () => seen(d, [[1, one]]), PROPAGATION_MS);
      assert.deepEqual(await d.client.get('cv/forced'), { v: 1 });
    }
    // Numbers are not given again.
    const four = await d2.client.put({ v: 4 });
    assert.equal(await d2.client.putName(four, 'cv/forced', { override: true, expectVersion: 1 }), 4);
  });

  it('a lost lease puts the names back with their versions, not as version 1', async () => {
    const ids = [await d1.client.put({ l: 1 }), await d1.client.put({ l: 2 }), await d1.client.put({ l: 3 })];
    for (const id of ids) await d1.client.putName(id, 'cv/lease', { override: true });
    const expected = JSON.stringify([3, 2, 1].map((version) => [version, ids[version - 1]]));
    // What each daemon last answered, for the message of a wait that times out.
    const seenOn = new Map<number, string>();
    const versionsOn = async (d: ClusterDaemon) => {
      const seen = await d.client.versions('cv/lease').then(
        (versions) => JSON.stringify(versions.map((v) => [v.version, v.id])),
        (error: Error) => `${(error as { code?: string }).code}: ${error.message}`,
      );
      seenOn.set(d.instanceId, seen);
      return seen;
    };
    await waitFor('daemon 2 to see three versions', async () => (await versionsOn(d2)) === expected, PROPAGATION_MS);

    // Revoke daemon 1's lease behind its back: its keys go, it registers again and puts them back.
    const etcd = connectEtcd(cluster!.etcd.endpoint, d1.prefix);
    const key = await etcd.run('read the name', (kv) => kv.get('names/cv/lease').exec());
    const lease = key.kvs[0].lease;
    await etcd.run('revoke the lease', (kv) => kv.leaseClient.leaseRevoke({ ID: lease }));
    await waitFor(
      'the name to be put back on a new lease',
      async () => {
        const now = await etcd.run('read the name', (kv) => kv.get('names/cv/lease').exec());
        return now.kvs.length === 1 && now.kvs[0].lease !== lease;
      },
      10_000,
    );
    // Registering again and putting the names back can take a lease round, as above.
    for (const d of [d1, d2])
      await waitFor(
        `daemon ${d.instanceId} to see the three versions`,
        async () => (await versionsOn(d)) === expected,
        10_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}; it last answered ${seenOn.get(d.instanceId)}, expected ${expected}`);
      });
    assert.equal(
      await d2.client.putName(await d2.client.put({ l: 4 }), 'cv/lease', { override: true, expectVersion: 3 }),
      4,
    );
  });
});
