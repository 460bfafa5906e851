/** The cluster-scale tables: etcd's cost and each daemon's cost per cluster size, and the join limit. */
import { formatBytes, formatDuration, formatRatio } from '../../lib/format';
import { percentile, summarize } from '../../lib/stats';
import type { ExtraTable, SuiteReport, TargetCheck } from '../../lib/suite';
import type { DaemonMemory, JoinLimitResult, SizeFailure, SizeResult } from './measure';
import type { ScalePlan } from './plan';

/** Growth above this, from the smallest cluster to the largest, counts as "grows with the cluster". */
const FLAT_GROWTH_LIMIT = 1.5;

function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

function signedBytes(bytes: number): string {
  return bytes < 0 ? `-${formatBytes(-bytes)}` : formatBytes(bytes);
}

function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function perObject(value: number, digits = 1): string {
  return value.toFixed(digits);
}

/** Each daemon's growth from before publishing to after, median over the daemons. */
function growth(result: SizeResult, field: keyof DaemonMemory): number {
  return median(result.memoryAfter.map((after, i) => after[field] - result.memoryBefore[i][field]));
}

export interface Derived {
  keysPerObject: number;
  putsPerObject: number;
  dbBytesPerObject: number;
  putBytesPerObject: number;
  eventsPerObject: number;
  etcdCallsPerSecond: number;
  heapPerObject: number;
  rssPerObject: number;
  observerHeapPerObject: number;
  observerRssPerObject: number;
}

export function derive(result: SizeResult): Derived {
  const { etcdBefore: before, etcdAfter: after, objects } = result;
  return {
    keysPerObject: (after.keys - before.keys) / objects,
    putsPerObject: (after.puts - before.puts) / objects,
    dbBytesPerObject: (after.dbBytesInUse - before.dbBytesInUse) / objects,
    putBytesPerObject: (after.putBytes - before.putBytes) / objects,
    eventsPerObject: (after.watchEvents - before.watchEvents) / objects,
    etcdCallsPerSecond: (after.unaryCalls - before.unaryCalls) / (result.publishWallMs / 1000),
    heapPerObject: growth(result, 'heapUsedBytes') / objects,
    rssPerObject: growth(result, 'rssBytes') / objects,
    observerHeapPerObject: (result.observerAfter.heapUsedBytes - result.observerBefore.heapUsedBytes) / objects,
    observerRssPerObject: (result.observerAfter.rssBytes - result.observerBefore.rssBytes) / objects,
  };
}

function etcdTable(results: readonly SizeResult[]): ExtraTable {
  return {
    title: 'etcd, per cluster size (objects: named + persisted, all daemons together)',
    columns: [
      { header: 'daemons', align: 'right' },
      { header: 'objects', align: 'right' },
      { header: 'keys', align: 'right' },
      { header: 'keys/obj', align: 'right' },
      { header: 'db in use', align: 'right' },
      { header: 'db B/obj', align: 'right' },
      { header: 'writes/obj', align: 'right' },
      { header: 'put B/obj', align: 'right' },
      { header: 'events/obj', align: 'right' },
      { header: 'events/obj/watcher', align: 'right' },
      { header: 'etcd RT/s', align: 'right' },
      { header: 'objects/s', align: 'right' },
      { header: 'all visible', align: 'right' },
      { header: 'retries', align: 'right' },
    ],
    rows: results.map((result) => {
      const derived = derive(result);
      return [
        String(result.daemons),
        count(result.objects),
        count(result.etcdAfter.keys),
        perObject(derived.keysPerObject, 2),
        formatBytes(result.etcdAfter.dbBytesInUse),
        count(derived.dbBytesPerObject),
        perObject(derived.putsPerObject, 2),
        count(derived.putBytesPerObject),
        perObject(derived.eventsPerObject),
        perObject(derived.eventsPerObject / (result.daemons + 1), 2),
        count(derived.etcdCallsPerSecond),
        count(result.objects / (result.publishWallMs / 1000)),
        formatDuration(result.visibleAfterMs * 1e6),
        String(result.publishRetries),
      ];
    }),
  };
}

function daemonTable(results: readonly SizeResult[], plan: ScalePlan): ExtraTable {
  return {
    title:
      'each daemon, per cluster size (Δ: after every daemon published vs before; observer: a daemon that publishes nothing)',
    columns: [
      { header: 'daemons', align: 'right' },
      { header: 'observer heap Δ', align: 'right' },
      { header: 'B/obj', align: 'right' },
      { header: 'observer RSS Δ', align: 'right' },
      { header: 'B/obj', align: 'right' },
      { header: 'observer loop lag', align: 'right' },
      { header: 'observer names held', align: 'right' },
      { header: 'publisher heap Δ', align: 'right' },
      { header: 'publisher RSS Δ', align: 'right' },
      { header: 'joiner RSS Δ', align: 'right' },
      { header: 'join', align: 'right' },
      { header: 'vs empty', align: 'right' },
      { header: 'SIGKILL gone', align: 'right' },
      { header: 'vs TTL', align: 'right' },
      { header: 'getName remote', align: 'right' },
      { header: 'vs local', align: 'right' },
      { header: 'getMeta remote', align: 'right' },
      { header: 'vs local', align: 'right' },
    ],
    rows: results.map((result) => {
      const derived = derive(result);
      const lat = result.latencies;
      const remoteName = summarize(lat.remoteGetNameNs).median;
      const remoteMeta = summarize(lat.remoteGetMetaNs).median;
      const baselineRss = median(result.memoryBefore.map((memory) => memory.rssBytes));
      return [
        String(result.daemons),
        signedBytes(result.observerAfter.heapUsedBytes - result.observerBefore.heapUsedBytes),
        count(derived.observerHeapPerObject),
        signedBytes(result.observerAfter.rssBytes - result.observerBefore.rssBytes),
        count(derived.observerRssPerObject),
        formatDuration(result.observerAfter.eventLoopLagMaxSeconds * 1e9),
        count(result.observerAfter.namesHeld),
        signedBytes(growth(result, 'heapUsedBytes')),
        signedBytes(growth(result, 'rssBytes')),
        result.joinerMemory ? signedBytes(result.joinerMemory.rssBytes - baselineRss) : '-',
        result.join.joined ? formatDuration(result.join.ms * 1e6) : 'FAILED',
        result.join.joined ? formatRatio(result.join.ms / result.firstJoinMs) : '-',
        formatDuration(result.goneAfterMs * 1e6),
        formatRatio(result.goneAfterMs / (plan.leaseTtlSeconds * 1000)),
        formatDuration(remoteName),
        formatRatio(remoteName / summarize(lat.localGetNameNs).median),
        formatDuration(remoteMeta),
        formatRatio(remoteMeta / summarize(lat.localGetMetaNs).median),
      ];
    }),
  };
}

function joinLimitTable(limit: JoinLimitResult): ExtraTable {
  return {
    title: 'join into a cluster holding many persisted objects (one writer, objects persisted without names)',
    columns: [
      { header: 'records', align: 'right' },
      { header: 'keys', align: 'right' },
      { header: 'db in use', align: 'right' },
      { header: 'put B/record', align: 'right' },
      { header: 'persist time', align: 'right' },
      { header: 'new daemon' },
      { header: 'after', align: 'right' },
    ],
    rows: [
      [
        count(limit.records),
        count(limit.etcd.keys),
        formatBytes(limit.etcd.dbBytesInUse),
        count(limit.etcd.putBytes / limit.records),
        formatDuration(limit.persistMs * 1e6),
        limit.join.joined ? 'joined' : `FAILED: ${limit.join.failure}`,
        formatDuration(limit.join.ms * 1e6),
      ],
    ],
  };
}

function targets(results: readonly SizeResult[], limit: JoinLimitResult | undefined): TargetCheck[] {
  const checks: TargetCheck[] = [];
  if (results.length >= 2) {
    const small = results[0];
    const large = results[results.length - 1];
    const eventsGrowth = derive(large).eventsPerObject / derive(small).eventsPerObject;
    checks.push({
      target: `watch events per published object do not grow with the cluster (${small.daemons} -> ${large.daemons} daemons, < ${FLAT_GROWTH_LIMIT}x)`,
      measured: `${perObject(derive(small).eventsPerObject)} -> ${perObject(derive(large).eventsPerObject)} (${formatRatio(eventsGrowth)})`,
      met: eventsGrowth < FLAT_GROWTH_LIMIT,
    });
    const rssSmall = small.observerAfter.rssBytes - small.observerBefore.rssBytes;
    const rssLarge = large.observerAfter.rssBytes - large.observerBefore.rssBytes;
    checks.push({
      target: `an idle daemon's RSS does not grow with other daemons' objects (${small.daemons} -> ${large.daemons} daemons, < ${FLAT_GROWTH_LIMIT}x)`,
      measured: `${signedBytes(rssSmall)} -> ${signedBytes(rssLarge)} (${formatRatio(rssLarge / rssSmall)})`,
      met: rssLarge / rssSmall < FLAT_GROWTH_LIMIT,
    });
  }
  const failedJoins = results.filter((result) => !result.join.joined).map((result) => result.daemons);
  checks.push({
    target: 'a new daemon joins every cluster size measured',
    measured: failedJoins.length === 0 ? 'all joined' : `failed at ${failedJoins.join(', ')} daemons`,
    met: failedJoins.length === 0,
  });
  if (limit) {
    checks.push({
      target: `a new daemon joins a cluster holding ${count(limit.records)} persisted objects`,
      measured: limit.join.joined
        ? `joined in ${formatDuration(limit.join.ms * 1e6)}`
        : `failed: ${limit.join.failure}`,
      met: limit.join.joined,
    });
  }
  return checks;
}

export function report(
  plan: ScalePlan,
  results: SizeResult[],
  failures: SizeFailure[],
  limit: JoinLimitResult | undefined,
): SuiteReport {
  const tables = [etcdTable(results), daemonTable(results, plan)];
  if (limit) tables.push(joinLimitTable(limit));
  return {
    rows: [],
    tables,
    targets: targets(results, limit),
    notes: [
      ...failures.map((failure) => `${failure.daemons} daemons: FAILED, no numbers: ${failure.error}`),
      `Each size: a fresh etcd (data on /dev/shm, so no fsync cost) and N + 1 trellisd processes on this machine (--size ${plan.daemonSize}, --lease-ttl ${plan.leaseTtlSeconds}); N of them publish ${plan.objectsPerDaemon} small values each, ${plan.publishConcurrency} daemons at a time, each value under its own name (putMany, ${plan.batch} per call), so each object is a record key and a name key; the last one (the observer) publishes nothing. retries: putMany calls made again after Unavailable (etcd slower than the daemon's 2 s deadline, or a lease lost, on a loaded machine); a retried batch may leave the keys of its first attempt behind, which shows in keys/obj.`,
      'etcd columns come from etcd /metrics: keys (etcd_debugging_mvcc_keys_total, all keys, instances included), db in use (etcd_mvcc_db_total_size_in_use_in_bytes), writes/obj (key puts, also inside transactions, etcd_debugging_mvcc_put_total), put B/obj (key + value bytes those puts wrote), events/obj (etcd_debugging_mvcc_events_total: watch events delivered to watchers, all N + 1 daemons together; /watcher divides by N + 1), etcd RT/s (unary KV + Lease calls during publishing / its wall time).',
      "Daemon memory is the daemon's own /metrics (nodejs_heap_size_used_bytes, process_resident_memory_bytes), scraped once every daemon listed every name and again 1 s later; the daemon runs without --expose-gc, so heap includes garbage not yet collected. B/obj divides the observer's growth by every object in the cluster; observer loop lag: the longest its event loop was blocked while the others published (nodejs_eventloop_lag_max_seconds, reset by each scrape); publisher Δ is the median publishing daemon (its own objects included).",
      'joiner RSS Δ: a daemon that joins after publishing, right after its ready line, minus the median daemon before publishing (both fresh processes, same flags). join: spawn to ready line (cold: a new Node process running bin/trellisd); vs empty: the first daemon of the same size, joining an empty cluster.',
      'SIGKILL gone: from the kill until no other daemon shows the instance alive nor any of its names (then every surviving daemon is checked to still resolve a name of every other). getName / getMeta: through daemon 1, warm, median of the samples; remote is a name / object published by daemon 2, local one daemon 1 published itself.',
    ],
    data: { plan, results, failures, joinLimit: limit },
  };
}
