/**
 * Name versions across two daemons on one etcd: the history lives in the name's key, so
 * expectVersion is checked in the same transaction as the write: of two clients on two daemons
 * expecting the same version, exactly one wins. Versions, get by version and dropVersion agree
 * everywhere.
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
});
