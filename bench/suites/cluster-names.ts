/**
 * cluster-names: publishing many small objects under cluster-wide names. 10,000 values are put
 * through one daemon of a two-daemon cluster, each under its own name (which persists it): in
 * batches with putMany, where the daemon packs records and names into etcd transactions of up
 * to 128 operations, and one at a time with put, where each object and its name take one
 * transaction. Reported: objects per second, etcd round trips per object (counted by etcd
 * itself), and how long the other daemon takes to see every name (its watch).
 */
import type { ClusterClientCommands, PublishResult } from '../children/cluster-client';
import { withChild, type BenchChild } from '../lib/child';
import { startBenchDaemon } from '../lib/daemon';
import { startBenchEtcd } from '../lib/etcd';
import { summarize } from '../lib/stats';
import type { Row, Suite, SuiteContext, SuiteReport } from '../lib/suite';

const PLAN = {
  batched: { count: 10_000, batch: 1_000 },
  oneByOne: { count: 1_000 },
  daemonSize: '256MiB',
  leaseTtlSeconds: 10,
  visibleTimeoutMs: 60_000,
};
/** The goal: batching makes etcd round trips per object well under one. */
const ROUND_TRIPS_PER_OBJECT_GOAL = 0.1;

interface Run {
  label: string;
  count: number;
  result: PublishResult;
  etcdCalls: number;
  visibleAfterMs: number;
}

async function measure({ scope, log }: SuiteContext): Promise<Run[]> {
  const etcd = await startBenchEtcd(scope);
  const cluster = ['--etcd', etcd.endpoint, '--etcd-prefix', 'bench', '--lease-ttl', String(PLAN.leaseTtlSeconds)];
  const writer = await startBenchDaemon(scope, { size: PLAN.daemonSize, args: cluster });
  const observer = await startBenchDaemon(scope, { size: PLAN.daemonSize, args: cluster });
  log(
    `etcd at ${etcd.endpoint}; trellisd instances ${writer.instanceId} (writer) and ${observer.instanceId} (observer)`,
  );

  const runs: Run[] = [];
  const publish = async (
    label: string,
    count: number,
    prefix: string,
    call: (client: BenchChild<ClusterClientCommands>) => Promise<PublishResult>,
  ): Promise<void> => {
    log(`${label}: ${count} objects`);
    const before = await etcd.unaryCalls();
    const result = await withChild<ClusterClientCommands, PublishResult>(
      scope,
      'cluster-client.ts',
      ['--socket', writer.socket],
      {},
      (client) => call(client),
    );
    const etcdCalls = (await etcd.unaryCalls()) - before;
    const visibleAfterMs = await withChild<ClusterClientCommands, number>(
      scope,
      'cluster-client.ts',
      ['--socket', observer.socket],
      {},
      (client) => client.call('waitForNames', { pattern: `${prefix}/*`, count, timeoutMs: PLAN.visibleTimeoutMs }),
    );
    runs.push({ label, count, result, etcdCalls, visibleAfterMs });
  };
  await publish(
    `putMany, ${PLAN.batched.batch} per call, name + persist each`,
    PLAN.batched.count,
    'batched',
    (client) => client.call('putManyNamed', { prefix: 'batched', ...PLAN.batched }),
  );
  await publish('put(value, { name }), one at a time', PLAN.oneByOne.count, 'single', (client) =>
    client.call('putNamedOneByOne', { prefix: 'single', ...PLAN.oneByOne }),
  );
  await observer.stop();
  await writer.stop();
  return runs;
}

function report(runs: Run[]): SuiteReport {
  const rows: Row[] = runs.map((run) => {
    const perObject = run.result.samplesNs.map((ns) => ns / run.result.perSample);
    const totalNs = run.result.samplesNs.reduce((a, b) => a + b, 0);
    const rate = run.count / (totalNs / 1e9);
    return {
      section: 'publish (per object)',
      operation: run.label,
      stats: summarize(perObject),
      versus: `${Math.round(rate).toLocaleString('en-US')} objects/s, ${(run.etcdCalls / run.count).toFixed(3)} etcd RT/object, ${(run.result.requests / run.count).toFixed(3)} socket RT/object`,
    };
  });
  const batched = runs[0];
  const perObject = batched.etcdCalls / batched.count;
  return {
    rows,
    targets: [
      {
        target: `etcd round trips per object well under one (< ${ROUND_TRIPS_PER_OBJECT_GOAL}) when publishing ${batched.count} named objects`,
        measured: `${perObject.toFixed(3)} (${batched.etcdCalls} calls)`,
        met: perObject < ROUND_TRIPS_PER_OBJECT_GOAL,
      },
    ],
    notes: [
      "etcd round trips are etcd's own count of unary gRPC calls answered (KV and Lease services) during the run; watch and keep-alive streams are not round trips.",
      "Each named object is one record key (objects/<id>) and one name key (names/<name>) on the writer's lease; a transaction holds at most 128 operations (etcd's --max-txn-ops), so 64 objects.",
      ...runs.map(
        (run) =>
          `${run.label}: every name visible on the observer daemon ${run.visibleAfterMs} ms after the last put returned (through its watch).`,
      ),
      'etcd runs with its data dir on /dev/shm: the numbers leave out disk fsync.',
    ],
    data: { plan: PLAN, runs },
  };
}

export const suite: Suite = {
  name: 'cluster-names',
  title: `persist + name ${PLAN.batched.count.toLocaleString('en-US')} small objects in a cluster: objects/s and etcd round trips per object`,
  async run(context) {
    return report(await measure(context));
  },
};
