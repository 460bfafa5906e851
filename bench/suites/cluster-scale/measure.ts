/**
 * One cluster size of the cluster-scale suite, and the join-limit trial. Each runs in a scope of
 * its own (a fresh etcd, fresh daemons), closed before the next starts, so one size's daemons
 * neither load the machine nor fill etcd for the next.
 */
import type { ClusterScaleClientCommands, ReadLatencies } from '../../children/cluster-scale-client';
import { startChild } from '../../lib/child';
import { startBenchDaemon, type BenchDaemon, type BenchDaemonOptions } from '../../lib/daemon';
import { startBenchEtcd, type EtcdCounters } from '../../lib/etcd';
import { scrape } from '../../lib/prometheus';
import { Scope } from '../../lib/scope';
import type { SuiteContext } from '../../lib/suite';
import { scaleName, type ScalePlan } from './plan';

const ETCD_PREFIX = 'bench';
const VISIBLE_TIMEOUT_MS = 120_000;
/** A killed daemon's lease ends within its TTL; etcd checks expiry every 500 ms. */
const GONE_SLACK_MS = 20_000;
/** After the last name shows everywhere: lets the daemons finish what the watch handed them. */
const SETTLE_MS = 1_000;
/** A daemon starting among 32 others on a loaded 2-core machine can take far longer than usual. */
const READY_TIMEOUT_MS = 120_000;

export interface DaemonMemory {
  heapUsedBytes: number;
  rssBytes: number;
  /** The longest the daemon's event loop was blocked since the previous scrape (prom-client resets it). */
  eventLoopLagMaxSeconds: number;
  /** Names the daemon holds in memory (status().names, the trellis_names gauge). */
  namesHeld: number;
}

export interface JoinOutcome {
  joined: boolean;
  /** Spawn to ready line, or to exit. */
  ms: number;
  /** Why it did not join: RESOURCE_EXHAUSTED, or the first line of what it printed. */
  failure?: string;
}

export interface SizeResult {
  daemons: number;
  objects: number;
  /** Spawn to ready line of the first daemon, into an empty cluster: the join baseline. */
  firstJoinMs: number;
  etcdBefore: EtcdCounters;
  etcdAfter: EtcdCounters;
  publishWallMs: number;
  /** putMany calls made again after Unavailable (a loaded machine), all daemons together. */
  publishRetries: number;
  /** From the last putMany's reply until every daemon listed every name. */
  visibleAfterMs: number;
  /** Each publishing daemon's memory before and after publishing. */
  memoryBefore: DaemonMemory[];
  memoryAfter: DaemonMemory[];
  /** A daemon in the cluster that publishes nothing: what its view of the others alone costs. */
  observerBefore: DaemonMemory;
  observerAfter: DaemonMemory;
  latencies: ReadLatencies;
  join: JoinOutcome;
  /** The daemon that joined after publishing; undefined when it could not join. */
  joinerMemory?: DaemonMemory;
  /** From SIGKILL until no other daemon shows the daemon alive or any of its names. */
  goneAfterMs: number;
}

/** A cluster size whose measurement threw: what it said. */
export interface SizeFailure {
  daemons: number;
  error: string;
}

export interface JoinLimitResult {
  records: number;
  persistMs: number;
  persistRetries: number;
  etcd: EtcdCounters;
  join: JoinOutcome;
}

/** Runs `use` in a scope of its own, closed afterwards (or by the suite's scope on Ctrl-C). */
async function inOwnScope<T>(parent: Scope, use: (scope: Scope) => Promise<T>): Promise<T> {
  const scope = new Scope();
  const forget = parent.defer(() => scope.close());
  try {
    return await use(scope);
  } finally {
    await scope.close();
    forget();
  }
}

function daemonOptions(endpoint: string, plan: ScalePlan): BenchDaemonOptions {
  return { size: plan.daemonSize, args: daemonArgs(endpoint, plan), readyTimeoutMs: READY_TIMEOUT_MS };
}

function daemonArgs(endpoint: string, plan: ScalePlan): string[] {
  return [
    '--etcd',
    endpoint,
    '--etcd-prefix',
    ETCD_PREFIX,
    '--lease-ttl',
    String(plan.leaseTtlSeconds),
    '--http-port',
    '0',
    '--log-level',
    'warn',
  ];
}

async function timedStart(
  scope: Scope,
  plan: ScalePlan,
  endpoint: string,
): Promise<{ daemon?: BenchDaemon; join: JoinOutcome }> {
  const began = Date.now();
  try {
    const daemon = await startBenchDaemon(scope, daemonOptions(endpoint, plan));
    return { daemon, join: { joined: true, ms: Date.now() - began } };
  } catch (error) {
    const message = (error as Error).message;
    const failure = /RESOURCE_EXHAUSTED[^\n]*/.exec(message)?.[0] ?? message.split('\n').slice(0, 2).join(' ');
    return { join: { joined: false, ms: Date.now() - began, failure: failure.slice(0, 300) } };
  }
}

async function memoryOf(daemon: BenchDaemon): Promise<DaemonMemory> {
  const metrics = await scrape(daemon.httpEndpoint!);
  return {
    heapUsedBytes: metrics.sum('nodejs_heap_size_used_bytes'),
    rssBytes: metrics.sum('process_resident_memory_bytes'),
    eventLoopLagMaxSeconds: metrics.sum('nodejs_eventloop_lag_max_seconds'),
    namesHeld: metrics.sum('trellis_names'),
  };
}

/** Starts `count` daemons, `concurrency` at a time; the first alone, timed, as the join baseline. */
async function startDaemons(
  scope: Scope,
  plan: ScalePlan,
  endpoint: string,
  count: number,
): Promise<{ daemons: BenchDaemon[]; firstJoinMs: number }> {
  const first = await timedStart(scope, plan, endpoint);
  if (!first.daemon) throw new Error(`the first daemon did not start: ${first.join.failure}`);
  const daemons = [first.daemon];
  while (daemons.length < count) {
    const wave = Math.min(plan.startConcurrency, count - daemons.length);
    daemons.push(
      ...(await Promise.all(
        Array.from({ length: wave }, () => startBenchDaemon(scope, daemonOptions(endpoint, plan))),
      )),
    );
  }
  return { daemons, firstJoinMs: first.join.ms };
}

export function measureSize(context: SuiteContext, plan: ScalePlan, count: number): Promise<SizeResult> {
  const { log } = context;
  return inOwnScope(context.scope, async (scope) => {
    const etcd = await startBenchEtcd(scope);
    log(`${count} daemons and an observer: starting (etcd at ${etcd.endpoint})`);
    const started = await startDaemons(scope, plan, etcd.endpoint, count + 1);
    const observer = started.daemons.pop()!;
    const { daemons, firstJoinMs } = started;
    const client = await startChild<ClusterScaleClientCommands>(scope, 'cluster-scale-client.ts', [
      '--sockets',
      daemons.map((daemon) => daemon.socket).join(','),
    ]);
    await client.call('waitForInstances', { count: count + 1, timeoutMs: VISIBLE_TIMEOUT_MS });
    const memoryBefore = await Promise.all(daemons.map(memoryOf));
    const observerBefore = await memoryOf(observer);
    const etcdBefore = await etcd.counters();

    const objects = count * plan.objectsPerDaemon;
    log(`${count} daemons: publishing ${plan.objectsPerDaemon} named objects each (${objects} in all)`);
    const published = await client.call('publish', {
      objects: plan.objectsPerDaemon,
      batch: plan.batch,
      concurrency: plan.publishConcurrency,
    });
    const visibleAfterMs = await client.call('waitForAllNames', {
      objects: plan.objectsPerDaemon,
      timeoutMs: VISIBLE_TIMEOUT_MS,
    });
    const etcdAfter = await etcd.counters();
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const memoryAfter = await Promise.all(daemons.map(memoryOf));
    const observerAfter = await memoryOf(observer);

    const ids = await client.call('instances', {});
    log(`${count} daemons: timing getName / getMeta`);
    const latencies = await client.call('readLatencies', {
      index: 0,
      remoteName: scaleName(ids[1], plan.objectsPerDaemon - 1),
      samples: plan.readSamples,
    });

    log(`${count} daemons: a new daemon joins ${objects} objects`);
    const joiner = await timedStart(scope, plan, etcd.endpoint);
    const joinerMemory = joiner.daemon ? await memoryOf(joiner.daemon) : undefined;
    await joiner.daemon?.stop();

    const victim = daemons[daemons.length - 1];
    await client.call('disconnect', { index: daemons.length - 1 });
    log(`${count} daemons: SIGKILL instance ${victim.instanceId}`);
    process.kill(victim.pid, 'SIGKILL');
    const goneAfterMs = await client.call('waitForGone', {
      instanceId: victim.instanceId,
      objects: plan.objectsPerDaemon,
      timeoutMs: plan.leaseTtlSeconds * 1000 + GONE_SLACK_MS,
    });
    await victim.stop();
    await client.stop();
    // Daemons first: one that loses etcd before it stops would retry until stopped.
    await Promise.all([...daemons, observer].map((daemon) => daemon.stop()));
    return {
      daemons: count,
      objects,
      firstJoinMs,
      etcdBefore,
      etcdAfter,
      publishWallMs: published.wallMs,
      publishRetries: published.retries,
      visibleAfterMs,
      memoryBefore,
      memoryAfter,
      observerBefore,
      observerAfter,
      latencies,
      join: joiner.join,
      joinerMemory,
      goneAfterMs,
    };
  });
}

/** One daemon persists `plan.joinRecords` small objects (no names); then another tries to join. */
export function measureJoinLimit(context: SuiteContext, plan: ScalePlan): Promise<JoinLimitResult> {
  return inOwnScope(context.scope, async (scope) => {
    const etcd = await startBenchEtcd(scope);
    const writer = await startBenchDaemon(scope, daemonOptions(etcd.endpoint, plan));
    const client = await startChild<ClusterScaleClientCommands>(scope, 'cluster-scale-client.ts', [
      '--sockets',
      writer.socket,
    ]);
    context.log(`join limit: persisting ${plan.joinRecords} objects`);
    const persisted = await client.call('persistMany', { index: 0, count: plan.joinRecords, batch: 1_000 });
    const counters = await etcd.counters();
    context.log(`join limit: a new daemon joins ${plan.joinRecords} persisted objects`);
    const joiner = await timedStart(scope, plan, etcd.endpoint);
    await joiner.daemon?.stop();
    await client.stop();
    await writer.stop();
    return {
      records: plan.joinRecords,
      persistMs: persisted.ms,
      persistRetries: persisted.retries,
      etcd: counters,
      join: joiner.join,
    };
  });
}
