/**
 * Turns the objects suite's measurements into rows, targets and notes. The DataFrame get is set
 * against the 1 KiB value get (same reader, interleaved) and against the two ways of loading
 * the same table without trellis; put rates are set against Redis from the same process.
 */
import type {
  BaselineReadResult,
  PutDriver,
  PutRateResult,
  StoreTableResult,
  TrellisGetResult,
} from '../../children/objects-client';
import type { DaemonStatus } from '../../../src/index';
import { describePlacement, type Placement } from '../../lib/cpu';
import { formatBytes, formatDuration, formatRatio } from '../../lib/format';
import type { SampleSet } from '../../lib/sampler';
import { sampleRow } from '../../lib/sample-row';
import { MIN_SAMPLES_FOR_P99, summarize } from '../../lib/stats';
import type { Row, SuiteReport, TargetCheck } from '../../lib/suite';
import type { ObjectsPlan } from './plan';

export interface ObjectsMeasurements {
  placement: Placement | undefined;
  redis: { description: string; version: string; maxValueBytes: number };
  roundTrip: SampleSet;
  putRates: Map<number, PutRateResult>;
  dataFrame: { available: boolean; reason?: string; typename?: string };
  valueEncodedBytes: number;
  stored: StoreTableResult;
  gets: TrellisGetResult;
  file: BaselineReadResult;
  redisLoad: BaselineReadResult;
  daemonAfter: DaemonStatus;
  memory: { startBytes: number; peakBytes: number };
  /** 1-minute load average when the suite started and ended: above ~2 on 2 cores, something else competed. */
  loadAverage: { before: number; after: number };
}

// The goals.
const TABLE_VS_VALUE_LIMIT = 3;
const TABLE_SPEEDUP_GOAL = 100;
const PUT_VS_SET_GOAL = 1;
const PUT_MANY_VS_SET_GOAL = 10;

const median = (set: SampleSet) => summarize(set.samplesNs).median;
const only = (set: SampleSet) => set.samplesNs[0];

function pooled(sets: SampleSet[]): SampleSet {
  return {
    samplesNs: sets.flatMap((set) => set.samplesNs),
    opsPerSample: sets[0].opsPerSample,
    minorFaults: sets.reduce((total, set) => total + set.minorFaults, 0),
    gcCount: sets.reduce((total, set) => total + set.gcCount, 0),
    gcMs: sets.reduce((total, set) => total + set.gcMs, 0),
  };
}

/** A one-off timing taken in milliseconds (the writer's steps), as a one-sample row. */
function onceRow(section: string, operation: string, ms: number, bytes?: number, versus?: string): Row {
  return { section, operation, bytes, stats: summarize([ms * 1e6]), versus };
}

function perSecond(nsPerOp: number): string {
  const rate = 1e9 / nsPerOp;
  return rate >= 1e6 ? `${(rate / 1e6).toFixed(2)}M/s` : `${(rate / 1e3).toFixed(1)}k/s`;
}

export function objectsReport(plan: ObjectsPlan, m: ObjectsMeasurements): SuiteReport {
  const rt = median(m.roundTrip);
  const rows: Row[] = [
    sampleRow(
      'baseline',
      `socket round trip, ${plan.roundTrip.messageBytes} B echo, cross-CPU`,
      m.roundTrip,
      undefined,
      `RT = ${formatDuration(rt)}`,
    ),
    ...putRows(m, rt),
    ...getRows(m, rt),
    ...touchRows(m),
    ...storeRows(m),
  ];
  return {
    rows,
    targets: [...getTargets(m), ...putTargets(m)],
    notes: notes(plan, m, rt),
    data: {
      plan,
      roundTripNs: rt,
      measurements: { ...m, putRates: Object.fromEntries(m.putRates) },
    },
  };
}

function putRows(m: ObjectsMeasurements, rt: number): Row[] {
  const rows: Row[] = [];
  for (const rate of m.putRates.values()) {
    const section = `put of small plain values (${rate.encodedBytes} B msgpack), one client process, ns per value`;
    const d = (name: PutDriver) => pooled(rate.drivers[name]);
    const set = median(d('redis SET'));
    const faster = (name: PutDriver, than: PutDriver) => `${formatRatio(median(d(than)) / median(d(name)))} ${than}`;
    rows.push(
      sampleRow(
        section,
        'trellis put, one at a time',
        d('trellis put'),
        undefined,
        `${perSecond(median(d('trellis put')))}, ${(median(d('trellis put')) / rt).toFixed(1)} RT, ${faster('trellis put', 'redis SET')} rate`,
      ),
      sampleRow(
        section,
        'redis SET, one at a time (encode + SET)',
        d('redis SET'),
        undefined,
        `${perSecond(set)}, ${(set / rt).toFixed(1)} RT`,
      ),
      sampleRow(
        section,
        `trellis putMany, ${rate.batchSize} a call`,
        d('trellis putMany'),
        undefined,
        `${perSecond(median(d('trellis putMany')))}, ${faster('trellis putMany', 'redis SET')} rate`,
      ),
      sampleRow(
        section,
        `trellis put, ${rate.batchSize} in flight (Promise.all)`,
        d('trellis put, all in flight'),
        undefined,
        `${perSecond(median(d('trellis put, all in flight')))}; ${faster('trellis put, all in flight', 'redis pipeline of SETs')} rate`,
      ),
      sampleRow(
        section,
        `redis MSET, ${rate.batchSize} a call`,
        d('redis MSET'),
        undefined,
        `${perSecond(median(d('redis MSET')))}; putMany: ${faster('trellis putMany', 'redis MSET')} rate`,
      ),
      sampleRow(
        section,
        `redis pipeline of ${rate.batchSize} SETs`,
        d('redis pipeline of SETs'),
        undefined,
        `${perSecond(median(d('redis pipeline of SETs')))}; putMany: ${faster('trellis putMany', 'redis pipeline of SETs')} rate`,
      ),
    );
  }
  return rows;
}

function getRows(m: ObjectsMeasurements, rt: number): Row[] {
  const section = 'get from another process (ids not held; fresh reader)';
  const value = pooled(m.gets.valueSteady);
  const valueNs = median(value);
  const rows: Row[] = [
    sampleRow(
      section,
      'first request of the process (exists)',
      m.gets.firstRequest,
      undefined,
      `${(only(m.gets.firstRequest) / rt).toFixed(1)} RT`,
    ),
    sampleRow(
      section,
      `trellis::Value, first get`,
      m.gets.valueFirst,
      m.valueEncodedBytes,
      `${(only(m.gets.valueFirst) / rt).toFixed(1)} RT`,
    ),
    sampleRow(section, `trellis::Value, steady`, value, m.valueEncodedBytes, `${(valueNs / rt).toFixed(1)} RT`),
  ];
  const table = m.gets.table;
  if (table) {
    const steady = pooled(table.steady);
    rows.push(
      sampleRow(
        section,
        `${table.typename}, first get (maps its segments)`,
        table.first,
        m.stored.tableBytes,
        `${(only(table.first) / rt).toFixed(1)} RT, ${formatRatio(only(table.first) / valueNs)} get Value`,
      ),
      sampleRow(
        section,
        `${table.typename}, steady`,
        steady,
        m.stored.tableBytes,
        `${(median(steady) / rt).toFixed(1)} RT, ${formatRatio(median(steady) / valueNs)} get Value`,
      ),
    );
  }
  const loadSection = `load the same ${formatBytes(m.stored.tableBytes)} table without trellis (fresh process)`;
  const speedup = (ns: number) =>
    table ? `trellis get is ${formatRatio(ns / median(pooled(table.steady)))} faster` : 'trellis get: missing';
  rows.push(
    sampleRow(
      loadSection,
      'readFileSync + tableFromIPC, /dev/shm',
      m.file.total,
      m.stored.ipcBytes,
      speedup(median(m.file.total)),
    ),
    sampleRow(
      loadSection,
      'redis GET (ioredis getBuffer) + tableFromIPC',
      m.redisLoad.total,
      m.stored.redisBytes,
      speedup(scaledRedisNs(m)),
    ),
  );
  return rows;
}

/** Redis's time for the whole table, scaled up linearly when Redis could only take part of it. */
function scaledRedisNs(m: ObjectsMeasurements): number {
  return (median(m.redisLoad.total) * m.stored.rows) / m.stored.redisRows;
}

function touchRows(m: ObjectsMeasurements): Row[] {
  const section = 'then read 1 byte of every 4 KiB page of every column';
  const rows: Row[] = [];
  if (m.gets.table) {
    rows.push(
      sampleRow(
        section,
        'trellis: first time in the reader (faults in shared pages)',
        m.gets.table.firstTouch,
        m.stored.tableBytes,
      ),
      sampleRow(section, 'trellis: second time', m.gets.table.secondTouch, m.stored.tableBytes),
    );
  }
  rows.push(
    sampleRow(section, 'after readFileSync (pages already in the heap)', m.file.touch, m.stored.tableBytes),
    sampleRow(section, 'after redis GET (pages already in the heap)', m.redisLoad.touch, m.stored.redisBytes),
  );
  return rows;
}

function storeRows(m: ObjectsMeasurements): Row[] {
  const section = 'store the table once (writer process, first time each; one sample)';
  const s = m.stored;
  const rows = [onceRow(section, 'build the Table (typed arrays)', s.ms.build, s.tableBytes)];
  if (s.ms.trellisPut !== undefined)
    rows.push(onceRow(section, 'trellis put (DataFrame)', s.ms.trellisPut, s.tableBytes));
  rows.push(
    onceRow(section, 'tableToIPC (file format)', s.ms.ipcEncode, s.ipcBytes),
    onceRow(section, 'writeFileSync to /dev/shm', s.ms.ipcWrite, s.ipcBytes),
  );
  if (s.ms.redisEncode !== undefined)
    rows.push(onceRow(section, `tableToIPC of the ${s.redisRows} rows Redis accepts`, s.ms.redisEncode, s.redisBytes));
  rows.push(onceRow(section, 'redis SET of the IPC bytes', s.ms.redisSet, s.redisBytes));
  return rows;
}

function getTargets(m: ObjectsMeasurements): TargetCheck[] {
  const table = m.gets.table;
  const size = formatBytes(m.stored.tableBytes);
  const missing = `missing: ${m.dataFrame.reason ?? 'the DataFrame type is not registered'}`;
  if (!table) {
    return [
      {
        target: `get of a ${size} DataFrame within ${TABLE_VS_VALUE_LIMIT}x get of a 1 KiB Value`,
        measured: missing,
        met: false,
      },
      {
        target: `get of a ${size} DataFrame >= ${TABLE_SPEEDUP_GOAL}x faster than readFileSync + tableFromIPC from /dev/shm`,
        measured: missing,
        met: false,
      },
      {
        target: `get of a ${size} DataFrame >= ${TABLE_SPEEDUP_GOAL}x faster than Redis GET + tableFromIPC`,
        measured: missing,
        met: false,
      },
    ];
  }
  const steady = median(pooled(table.steady));
  const first = only(table.first);
  const valueNs = median(pooled(m.gets.valueSteady));
  const fileNs = median(m.file.total);
  const redisNs = scaledRedisNs(m);
  const partial =
    m.stored.redisRows < m.stored.rows
      ? ` (Redis took ${m.stored.redisRows} of ${m.stored.rows} rows; scaled linearly)`
      : '';
  return [
    {
      target: `get of a ${size} DataFrame from another process within ${TABLE_VS_VALUE_LIMIT}x get of a 1 KiB Value (steady medians)`,
      measured: `${formatRatio(steady / valueNs)} (${formatDuration(steady)} vs ${formatDuration(valueNs)}; first get in a fresh process ${formatDuration(first)} = ${formatRatio(first / valueNs)})`,
      met: steady / valueNs <= TABLE_VS_VALUE_LIMIT,
    },
    {
      target: `get of a ${size} DataFrame >= ${TABLE_SPEEDUP_GOAL}x faster than readFileSync + tableFromIPC from /dev/shm`,
      measured: `${formatRatio(fileNs / steady)} steady, ${formatRatio(fileNs / first)} counting the first get (file ${formatDuration(fileNs)})`,
      met: fileNs / steady >= TABLE_SPEEDUP_GOAL,
    },
    {
      target: `get of a ${size} DataFrame >= ${TABLE_SPEEDUP_GOAL}x faster than Redis GET + tableFromIPC`,
      measured: `${formatRatio(redisNs / steady)} steady, ${formatRatio(redisNs / first)} counting the first get (Redis ${formatDuration(redisNs)})${partial}`,
      met: redisNs / steady >= TABLE_SPEEDUP_GOAL,
    },
  ];
}

function putTargets(m: ObjectsMeasurements): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const rate of m.putRates.values()) {
    const d = (name: PutDriver) => median(pooled(rate.drivers[name]));
    const put = d('redis SET') / d('trellis put');
    const many = d('redis SET') / d('trellis putMany');
    checks.push(
      {
        target: `put of ${rate.encodedBytes} B values: trellis put rate >= Redis SET rate (one at a time, same process)`,
        measured: `${formatRatio(put)} (${perSecond(d('trellis put'))} vs ${perSecond(d('redis SET'))})`,
        met: put >= PUT_VS_SET_GOAL,
      },
      {
        target: `put of ${rate.encodedBytes} B values: putMany rate >= ${PUT_MANY_VS_SET_GOAL}x Redis SET one at a time`,
        measured:
          `${formatRatio(many)} (${perSecond(d('trellis putMany'))}); for honesty, vs Redis MSET ${formatRatio(d('redis MSET') / d('trellis putMany'))}, ` +
          `vs a pipeline of SETs ${formatRatio(d('redis pipeline of SETs') / d('trellis putMany'))}`,
        met: many >= PUT_MANY_VS_SET_GOAL,
      },
    );
  }
  return checks;
}

function notes(plan: ObjectsPlan, m: ObjectsMeasurements, rt: number): string[] {
  const s = m.stored;
  const table = m.gets.table;
  const out = [
    `Placement: ${describePlacement(m.placement)}; trellisd (--size ${plan.daemonSize}) and redis-server share the server CPU. RT = ${formatDuration(rt)}. ` +
      `1-minute load average ${m.loadAverage.before.toFixed(2)} at the start, ${m.loadAverage.after.toFixed(2)} at the end (the suite itself keeps it near 1; more means other work competed).`,
    `Redis: ${m.redis.description}; proto-max-bulk-len in force ${formatBytes(m.redis.maxValueBytes)}` +
      (s.redisRows < s.rows
        ? ` is below the ${formatBytes(s.ipcBytes)} IPC file, so Redis stored the first ${s.redisRows} of ${s.rows} rows (${formatBytes(s.redisBytes)}) and its time is scaled up linearly in the targets.`
        : `, so it stored the whole ${formatBytes(s.redisBytes)} IPC file as one value.`),
    `Table: ${s.rows} rows x 4 columns (2 float64, 2 int64), ${formatBytes(s.tableBytes)} of column data, one chunk; as an Arrow IPC file ${formatBytes(s.ipcBytes)}.`,
    m.dataFrame.available
      ? `trellis stores it as ${m.dataFrame.typename} (one blob per arrow buffer); the reader's Table ${table?.zeroCopy ? 'views trellis shared memory in every column (isSharedMemory)' : 'does NOT view shared memory in every column'}.`
      : `DataFrame numbers are missing: ${m.dataFrame.reason}.`,
    "put: plain values of at most 4 KiB encoded are written into the client's put ring (docs/put-ring.md) and resolve " +
      'with no request; the daemon registers them on its own CPU (by its next request, or within about 1 ms), so those ' +
      "rows time the client's side; larger values are one request each.",
    'get: every get is of an id the reader does not hold (released after each, untimed), since a held id is answered from the client cache. ' +
      `The 1 KiB Value and the DataFrame gets alternate in ${plan.trellisGets.rounds} rounds in one process; "first get" includes receiving the segment fds and mapping them.`,
    'A trellis get hands back a Table over shared memory without touching its pages; the first read of each page in a process then costs a minor fault, ' +
      'shown in the touch rows. readFileSync and Redis have paid for every page before their Table exists.',
    `Node has no mmap, so readFileSync is the fair file baseline: one copy from /dev/shm into the heap, then tableFromIPC builds the table over that copy ` +
      `(${m.file.zeroCopyDecode ? 'no second copy' : 'it copied again'}): fetch ${m.file.fetchMs.toFixed(0)} ms + decode ${m.file.decodeMs.toFixed(1)} ms (medians).`,
    `Redis: GET with ioredis getBuffer (the bytes as one Buffer) + tableFromIPC (${m.redisLoad.zeroCopyDecode ? 'no second copy' : 'it copied again'}), ` +
      `since the user needs a Table: fetch ${m.redisLoad.fetchMs.toFixed(0)} ms + decode ${m.redisLoad.decodeMs.toFixed(1)} ms (medians).`,
    `File and Redis loads: ${plan.fileLoads.iterations} and ${plan.redisLoads.iterations} timed loads after ${plan.fileLoads.warmup} and ${plan.redisLoads.warmup} warm-up; each table is dropped and collected (untimed) before the next.`,
    'put rate: each driver runs once per round, in turn, in one client process; samples pooled over ' +
      `${plan.putRate.rounds} rounds. Redis SETs include msgpack encoding (the same msgpackr settings trellis::Value uses), as trellis put does; ` +
      'every put makes a new object or key; trellis objects are deleted and Redis flushed after each sample (untimed). ' +
      '"in flight" issues a batch of plain put() calls at once and awaits them all (one request each, not waiting for replies in between), the trellis analogue of a Redis pipeline.',
    `faults/op and gc ms count only inside timed windows. p99 is shown from ${MIN_SAMPLES_FOR_P99} samples up.`,
    `Memory in use on the machine: ${formatBytes(m.memory.startBytes)} at the start, peak ${formatBytes(m.memory.peakBytes)} (MemTotal - MemAvailable, sampled every 100 ms).`,
    `daemon after deleting everything: ${formatBytes(m.daemonAfter.memoryUsage)} in use, ${m.daemonAfter.objects} objects.`,
  ];
  return out;
}
