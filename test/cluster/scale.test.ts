/**
 * Sixteen daemons on one etcd (issue 14): every daemon publishes names and reads the names of
 * every other; a getName waiting on one daemon wakes when another publishes; one daemon killed
 * with SIGKILL leaves every other view within its lease TTL, names and all, and every other
 * daemon's names still resolve everywhere. Small values, so it takes seconds, not minutes (most
 * of it starting sixteen Node processes).
 */
import * as assert from 'node:assert/strict';
import { connect } from '../../src/index';
import { uniquePrefix, waitFor } from '../fixtures/cluster';
import type { ClusterDaemon } from '../fixtures/cluster-daemons';
import { startTestDaemon } from '../fixtures/daemon';
import { startEtcd } from '../fixtures/etcd';
import { onCleanup } from '../fixtures/setup';

const DAEMONS = 16;
const NAMES_PER_DAEMON = 5;
/** Above the minimum (2): sixteen daemons on a busy 2-core machine can send a keep-alive late. */
const TTL_SECONDS = 5;
/** etcd checks expiry every 500 ms; the watch event and our poll add a little more. */
const EXPIRY_MARGIN_MS = 3_000;
const PROPAGATION_MS = 15_000;
/** Daemons started at once: sixteen Node processes compiling through tsx together overload 2 cores. */
const START_WAVE = 4;
const START_DEADLINE_MS = 150_000;

const nameOf = (instanceId: number, k: number) => `scale/${instanceId}/${k}`;

async function startDaemons(endpoint: string, count: number): Promise<ClusterDaemon[]> {
  const prefix = uniquePrefix('scale');
  const args = ['--size', '16MiB', '--etcd', endpoint, '--etcd-prefix', prefix, '--lease-ttl', String(TTL_SECONDS)];
  const started: ClusterDaemon[] = [];
  while (started.length < count) {
    const wave = Math.min(START_WAVE, count - started.length);
    const daemons = await Promise.all(Array.from({ length: wave }, () => startTestDaemon(args, START_DEADLINE_MS)));
    for (const daemon of daemons) {
      const client = await connect(daemon.socket);
      onCleanup(() => client.close());
      started.push({ daemon, client, instanceId: daemon.instanceId, prefix });
    }
  }
  return started;
}

const aliveIds = async (d: ClusterDaemon): Promise<number[]> =>
  (await d.client.clusterInfo()).instances
    .filter((instance) => instance.alive)
    .map((instance) => instance.instanceId)
    .sort((a, b) => a - b);

describe('cluster of sixteen daemons', function () {
  this.timeout(400_000);

  it('every daemon reads every other daemon’s names; a SIGKILLed daemon’s names leave every view within its TTL', async () => {
    const etcd = await startEtcd();
    const daemons = await startDaemons(etcd.endpoint, DAEMONS);
    const ids = daemons.map((d) => d.instanceId).sort((a, b) => a - b);
    assert.equal(new Set(ids).size, DAEMONS, 'every daemon has its own instance id');
    for (const d of daemons) {
      await waitFor(
        `daemon ${d.instanceId} to see all ${DAEMONS}`,
        async () => (await aliveIds(d)).join() === ids.join(),
        PROPAGATION_MS,
      );
    }

    // A waiter on the first daemon, for a name the last one publishes after everything else.
    const [first, last] = [daemons[0], daemons[DAEMONS - 1]];
    const waiting = first.client.getName('scale/late', { wait: true, timeoutMs: PROPAGATION_MS * 2 });
    waiting.catch(() => undefined); // awaited below; a failure before then must not go unhandled

    // One daemon after another: sixteen transactions at once on a busy 2-core machine can miss
    // the daemons' 2 s etcd deadline, and what is under test is the views, not etcd's throughput.
    const published = new Map<string, string>();
    for (const d of daemons) {
      const names = Array.from({ length: NAMES_PER_DAEMON }, (_, k) => nameOf(d.instanceId, k));
      const objectIds = await d.client.putMany(
        names.map((name) => ({ name })),
        names.map((name) => ({ name })),
      );
      names.forEach((name, k) => published.set(name, objectIds[k]));
    }
    const everyName = [...published.keys()].sort();
    for (const d of daemons) {
      await waitFor(
        `daemon ${d.instanceId} to list all ${everyName.length} names`,
        async () => (await d.client.listNames({ pattern: 'scale/*' })).join() === everyName.join(),
        PROPAGATION_MS,
      );
    }
    for (const d of daemons) {
      for (const [name, id] of published) assert.equal(await d.client.getName(name), id, `${name} on ${d.instanceId}`);
      // A remote object's metadata, through a daemon that does not own it.
      const remote = published.get(nameOf(d === first ? last.instanceId : first.instanceId, 0))!;
      assert.equal((await d.client.getMeta(remote)).id, remote);
    }
    const lateId = await last.client.put({ late: true }, { name: 'scale/late' });
    assert.equal(await waiting, lateId);

    const victim = daemons[DAEMONS / 2];
    const survivors = daemons.filter((d) => d !== victim);
    const victimNames = everyName.filter((name) => name.startsWith(`scale/${victim.instanceId}/`));
    const remaining = everyName.filter((name) => !victimNames.includes(name));
    victim.daemon.process.kill('SIGKILL');
    const limit = TTL_SECONDS * 1000 + EXPIRY_MARGIN_MS;
    const started = Date.now();
    for (const d of survivors) {
      const left = Math.max(limit - (Date.now() - started), 0);
      await waitFor(
        `daemon ${d.instanceId} to drop instance ${victim.instanceId} and its names`,
        async () =>
          !(await aliveIds(d)).includes(victim.instanceId) &&
          (await d.client.listNames({ pattern: `scale/${victim.instanceId}/*` })).length === 0,
        left,
      );
    }
    for (const d of survivors) {
      assert.deepEqual(await d.client.listNames({ pattern: 'scale/*' }), [...remaining, 'scale/late'].sort());
      await assert.rejects(d.client.getName(victimNames[0]), { code: 'NameNotFound' });
      for (const name of remaining) assert.equal(await d.client.getName(name), published.get(name));
    }
  });
});
