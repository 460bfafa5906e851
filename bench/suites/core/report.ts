/**
 * Turns the core suite's measurements into rows, targets and notes. Every trellis row carries a
 * ratio: puts against memcpy of the same size, gets and the small-blob cycle against the bare
 * socket round trip (RT) measured under the same CPU placement in the same run.
 */
import type { FirstPutResult, GetResult, PutPhases, PutResult } from '../../children/blob-client';
import type { DaemonStatus } from '../../../src/index';
import { describePlacement, type Placement } from '../../lib/cpu';
import { formatBytes, formatDuration, formatRatio, GiB, KiB, MiB } from '../../lib/format';
import type { SampleSet } from '../../lib/sampler';
import { sampleRow } from '../../lib/sample-row';
import { MIN_SAMPLES_FOR_P99, summarize } from '../../lib/stats';
import type { Row, SuiteReport, TargetCheck } from '../../lib/suite';
import type { CorePlan } from './plan';

/** Reads and round trips measured under one CPU placement. */
export interface PlacementRun {
  placement: Placement | undefined;
  roundTrips: SampleSet[];
  gets: Map<number, GetResult>;
  cycle: SampleSet;
  /** Round trips to a raw echo from the cycle's own process, in rounds interleaved with the cycles. */
  cycleEcho?: SampleSet;
}

export interface CoreMeasurements {
  memcpy: Map<number, SampleSet>;
  puts: Map<number, PutResult>;
  /** A second fresh process's first put of each size, after the first process deleted its blobs. */
  reusedPuts: Map<number, FirstPutResult>;
  /** The largest size's first put in a fresh process on a new daemon with --spare-segment of that size. */
  sparePut: FirstPutResult;
  crossCore: PlacementRun;
  /** Missing when processes cannot be pinned. */
  sameCore?: PlacementRun;
  daemonAfter: DaemonStatus;
}

// The goals.
const GET_LIMIT_NS = 1e6;
const GET_SIZE_RATIO_LIMIT = 5;
const PUT_MEMCPY_FRACTION = 0.7;
/** A fresh process's first put into memory the daemon holds: the "first put" goal. */
const FIRST_PUT_MEMCPY_FRACTION = 0.5;
const CYCLE_ROUND_TRIP_LIMIT = 4;
/** Below this, reading a blob's pages is too quick to say anything about faults. */
const MIN_READ_ROW_BYTES = MiB;

const median = (set: SampleSet) => summarize(set.samplesNs).median;
const only = (set: SampleSet) => set.samplesNs[0];

export function coreReport(plan: CorePlan, m: CoreMeasurements): SuiteReport {
  const crossRt = pooledMedian(m.crossCore.roundTrips);
  const rows: Row[] = [
    ...baselineRows(plan, m, crossRt),
    ...putRows(plan, m, crossRt),
    ...readRows(plan, m.crossCore, crossRt, m.memcpy),
  ];
  if (m.sameCore) rows.push(...sameCoreRows(plan, m.sameCore));
  return {
    rows,
    targets: targets(m),
    notes: notes(plan, m, crossRt),
    data: {
      plan,
      roundTripNs: { crossCore: crossRt, sameCore: m.sameCore && pooledMedian(m.sameCore.roundTrips) },
      measurements: serializable(m),
    },
  };
}

function baselineRows(plan: CorePlan, m: CoreMeasurements, rt: number): Row[] {
  const echo = `socket round trip, ${plan.roundTrip.messageBytes} B echo, cross-CPU`;
  const [before, after] = m.crossCore.roundTrips;
  return [
    sampleRow('baseline', `${echo} (before)`, before),
    sampleRow('baseline', `${echo} (after)`, after, undefined, `RT = ${formatDuration(rt)} (pooled)`),
    ...plan.sizes.map(({ bytes }) => sampleRow('baseline', 'memcpy (TypedArray.set)', m.memcpy.get(bytes)!, bytes)),
  ];
}

function putRows(plan: CorePlan, m: CoreMeasurements, rt: number): Row[] {
  const section = 'put: createBlob + fill from a JS buffer + seal';
  const versus = (bytes: number, ns: number) =>
    `${formatRatio(median(m.memcpy.get(bytes)!) / ns)} memcpy speed, ${inRoundTrips(ns, rt)}`;
  return plan.sizes.flatMap(({ bytes }) => {
    const { first, steady } = m.puts.get(bytes)!;
    const reused = m.reusedPuts.get(bytes)!.first;
    const spare =
      bytes === GiB
        ? [
            sampleRow(
              section,
              'first in a fresh process, new to the daemon, --spare-segment 1GiB',
              m.sparePut.first,
              bytes,
              versus(bytes, only(m.sparePut.first)),
            ),
          ]
        : [];
    return [
      sampleRow(section, 'steady', steady, bytes, versus(bytes, median(steady))),
      sampleRow(
        section,
        'first in a fresh process, daemon holds the memory',
        reused,
        bytes,
        versus(bytes, only(reused)),
      ),
      sampleRow(
        section,
        'first in a fresh process, a size new to the daemon',
        first,
        bytes,
        versus(bytes, only(first)),
      ),
      ...spare,
    ];
  });
}

function readRows(plan: CorePlan, run: PlacementRun, rt: number, memcpy: Map<number, SampleSet>): Row[] {
  const section = 'get from another process, ids not held';
  const smallGet = median(run.gets.get(KiB)!.steady);
  const firstRequests = [...run.gets.values()].flatMap(({ firstRequest }) => firstRequest.samplesNs);
  const rows: Row[] = [
    {
      section,
      operation: 'first request of a fresh process (exists)',
      stats: summarize(firstRequests),
      versus: `${inRoundTrips(summarize(firstRequests).median, rt)}; one per reader process`,
    },
  ];
  for (const { bytes } of plan.sizes) {
    const { first, steady } = run.gets.get(bytes)!;
    rows.push(
      sampleRow(
        section,
        'steady',
        steady,
        bytes,
        `${inRoundTrips(median(steady), rt)}, ${formatRatio(median(steady) / smallGet)} get 1 KiB`,
      ),
    );
    rows.push(sampleRow(section, 'first get of a new segment', first, bytes, inRoundTrips(only(first), rt)));
  }
  for (const { bytes } of plan.sizes.filter(({ bytes }) => bytes >= MIN_READ_ROW_BYTES)) {
    const { firstRead, secondRead } = run.gets.get(bytes)!;
    const readSection = 'read 1 byte per 4 KiB page of a got blob';
    rows.push(
      sampleRow(
        readSection,
        'first touch in this process',
        firstRead,
        bytes,
        `${formatRatio(only(firstRead) / median(memcpy.get(bytes)!))} memcpy time`,
      ),
    );
    rows.push(sampleRow(readSection, 'second pass', secondRead, bytes));
  }
  rows.push(...cycleRows(plan, run, 'small blob'));
  return rows;
}

function sameCoreRows(plan: CorePlan, run: PlacementRun): Row[] {
  const section = `clients on the daemon's CPU (${describePlacement(run.placement)})`;
  const rt = pooledMedian(run.roundTrips);
  const smallGet = median(run.gets.get(KiB)!.steady);
  return [
    sampleRow(
      section,
      `socket round trip, ${plan.roundTrip.messageBytes} B echo`,
      run.roundTrips[0],
      undefined,
      `RT = ${formatDuration(rt)}`,
    ),
    ...[...run.gets].map(([bytes, { steady }]) =>
      sampleRow(
        section,
        'get, ids not held: steady',
        steady,
        bytes,
        `${inRoundTrips(median(steady), rt)}, ${formatRatio(median(steady) / smallGet)} get 1 KiB`,
      ),
    ),
    ...cycleRows(plan, run, section),
  ];
}

/**
 * The round trip the small-blob cycle is counted in: the echo timed in the cycle's own process,
 * interleaved with it, when there is one; else the placement's separate round trips.
 */
function cycleRoundTrip(run: PlacementRun): number {
  return run.cycleEcho ? median(run.cycleEcho) : pooledMedian(run.roundTrips);
}

function cycleRows(plan: CorePlan, run: PlacementRun, section: string): Row[] {
  const rt = cycleRoundTrip(run);
  return [
    ...(run.cycleEcho
      ? [
          sampleRow(
            section,
            `socket round trip, ${plan.roundTrip.messageBytes} B echo, in rounds with the cycle (same process)`,
            run.cycleEcho,
            undefined,
            `RT = ${formatDuration(rt)}`,
          ),
        ]
      : []),
    sampleRow(
      section,
      'createBlob + fill + seal + getBlob + release',
      run.cycle,
      plan.cycle.bytes,
      inRoundTrips(median(run.cycle), rt),
    ),
  ];
}

function targets(m: CoreMeasurements): TargetCheck[] {
  const memcpy = median(m.memcpy.get(GiB)!);
  const bigPut = m.puts.get(GiB)!;
  const reusedPut = m.reusedPuts.get(GiB)!.first;
  const checks: TargetCheck[] = [
    ...getTargets(m.crossCore, 'cross-CPU'),
    {
      target: `put of 1 GiB >= ${PUT_MEMCPY_FRACTION}x memcpy speed (steady, median)`,
      measured: `${formatRatio(memcpy / median(bigPut.steady))} (put ${formatDuration(median(bigPut.steady))}, memcpy ${formatDuration(memcpy)})`,
      met: memcpy / median(bigPut.steady) >= PUT_MEMCPY_FRACTION,
    },
    {
      target:
        `put of 1 GiB >= ${FIRST_PUT_MEMCPY_FRACTION}x memcpy speed ` +
        '(first put in a fresh process, the daemon holds the memory an earlier object left)',
      measured: `${formatRatio(memcpy / only(reusedPut))} (put ${formatDuration(only(reusedPut))})`,
      met: memcpy / only(reusedPut) >= FIRST_PUT_MEMCPY_FRACTION,
    },
    {
      target:
        `put of 1 GiB >= ${FIRST_PUT_MEMCPY_FRACTION}x memcpy speed ` +
        '(first put in a fresh process, and the first of that size for the daemon: a new segment from the OS)',
      measured: `${formatRatio(memcpy / only(bigPut.first))} (put ${formatDuration(only(bigPut.first))})`,
      met: memcpy / only(bigPut.first) >= FIRST_PUT_MEMCPY_FRACTION,
    },
    {
      target:
        `put of 1 GiB >= ${FIRST_PUT_MEMCPY_FRACTION}x memcpy speed ` +
        '(the same, on a daemon with --spare-segment 1GiB: the put takes the spare)',
      measured: `${formatRatio(memcpy / only(m.sparePut.first))} (put ${formatDuration(only(m.sparePut.first))})`,
      met: memcpy / only(m.sparePut.first) >= FIRST_PUT_MEMCPY_FRACTION,
    },
    cycleTarget(m.crossCore, 'cross-CPU'),
  ];
  if (m.sameCore) checks.push(sizeRatioTarget(m.sameCore, 'same CPU'), cycleTarget(m.sameCore, 'same CPU'));
  return checks;
}

function getTargets(run: PlacementRun, where: string): TargetCheck[] {
  const big = run.gets.get(GiB)!;
  const steady = summarize(big.steady.samplesNs);
  return [
    {
      target: `get of a sealed 1 GiB blob from another process < 1 ms (steady median, ${where})`,
      measured: `${formatDuration(steady.median)} (p99 ${formatDuration(steady.p99)})`,
      met: steady.median < GET_LIMIT_NS,
    },
    {
      target: `get of a sealed 1 GiB blob < 1 ms (first get of its segment in a fresh process, ${where})`,
      measured: formatDuration(only(big.first)),
      met: only(big.first) < GET_LIMIT_NS,
    },
    sizeRatioTarget(run, where),
  ];
}

function sizeRatioTarget(run: PlacementRun, where: string): TargetCheck {
  const ratio = median(run.gets.get(GiB)!.steady) / median(run.gets.get(KiB)!.steady);
  return {
    target: `get 1 GiB within ${GET_SIZE_RATIO_LIMIT}x of get 1 KiB (steady medians, ${where})`,
    measured: formatRatio(ratio),
    met: ratio <= GET_SIZE_RATIO_LIMIT,
  };
}

function cycleTarget(run: PlacementRun, where: string): TargetCheck {
  const rt = cycleRoundTrip(run);
  const roundTrips = median(run.cycle) / rt;
  return {
    target: `createBlob+seal+getBlob+release of 1 KiB < ${CYCLE_ROUND_TRIP_LIMIT} socket round trips (median, ${where})`,
    measured: `${roundTrips.toFixed(2)} RT (${formatDuration(median(run.cycle))}, RT ${formatDuration(rt)})`,
    met: roundTrips < CYCLE_ROUND_TRIP_LIMIT,
  };
}

function notes(plan: CorePlan, m: CoreMeasurements, rt: number): string[] {
  const copies = plan.sizes.map(({ bytes, getCopies }) => `${getCopies} x ${formatBytes(bytes)}`).join(', ');
  const after = m.daemonAfter;
  return [
    `Placement: ${describePlacement(m.crossCore.placement)}. trellisd is its own process (--size ${plan.daemonSize}); every trellis number is timed inside a client process.`,
    `RT is the median bare UNIX-socket round trip under the same placement (before and after pooled): ${formatDuration(rt)} cross-CPU.`,
    'put: "steady" deletes each blob after its put (untimed), so the next put reuses space this process already mapped; ' +
      '"a size new to the daemon" is the first put of that size in a fresh process, and includes the daemon reserving a ' +
      'segment when none has room (for 1 GiB: a new segment, whose 2 MiB pages come from the OS); ' +
      '"daemon holds the memory" is another fresh process\'s first put right after, into the empty segment the daemon kept.',
    ...plan.sizes.map(({ bytes }) => putPhasesNote(bytes, m.puts.get(bytes)!, m.reusedPuts.get(bytes)!)),
    '"--spare-segment 1GiB" is a second daemon, started after the first stopped, whose spare 1 GiB segment is ' +
      `ready before the put (the next spare is reserved a second after the put takes it): ${phasesOf(m.sparePut.phases)} ` +
      `(${formatCount(m.sparePut.first.minorFaults)} client page faults).`,
    `get: one process wrote the blobs (${copies}) and each reader is a fresh process. Every get is of an id the reader does not hold ` +
      '(released after each get, untimed, rotating over the distinct ids), because a get of a held id is answered from the ' +
      'client cache with no round trip. "first get of a new segment" comes after 100 warm-up requests, and includes receiving the fd and mapping it.',
    'cycle: the getBlob right after seal is answered from the client cache (seal keeps a reference); a createBlob of ' +
      'at most 4 KiB and its seal are put ring records (docs/put-ring.md), so the 1 KiB cycle sends 1 request: ' +
      'release (larger blobs send 3: createBlob, seal, release). Its RT is the echo timed from the same process in ' +
      `${plan.cycle.rounds} rounds that alternate with the cycle's, so both see the same load.`,
    `faults/op and gc ms count only inside timed windows. p99 is shown from ${MIN_SAMPLES_FOR_P99} samples up, the range below that.`,
    `daemon after deleting everything: ${formatBytes(after.memoryUsage)} in use, ${formatBytes(after.memoryReserved)} still reserved in ${after.segments} segment(s), ${after.objects} objects.`,
  ];
}

function phasesOf(p: PutPhases): string {
  return `createBlob ${formatDuration(p.create)} + fill ${formatDuration(p.fill)} + seal ${formatDuration(p.seal)}`;
}

function putPhasesNote(bytes: number, put: PutResult, reused: FirstPutResult): string {
  const phases = phasesOf;
  return (
    `put ${formatBytes(bytes)}: first (size new to the daemon) = ${phases(put.firstPhases)} (daemon CPU ` +
    `${put.firstDaemonCpuMs} ms, ${formatCount(put.first.minorFaults)} client page faults, gc ` +
    `${put.first.gcMs.toFixed(1)} ms); first (daemon holds the memory) = ${phases(reused.phases)} ` +
    `(${formatCount(reused.first.minorFaults)} client page faults); steady medians = ${phases(put.steadyPhases)}.`
  );
}

function pooledMedian(sets: SampleSet[]): number {
  return summarize(sets.flatMap((set) => set.samplesNs)).median;
}

function inRoundTrips(ns: number, rt: number): string {
  return `${(ns / rt).toFixed(1)} RT`;
}

function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

/** Maps do not survive JSON.stringify; the results file keys everything by byte size. */
function serializable(m: CoreMeasurements): Record<string, unknown> {
  const run = (r: PlacementRun) => ({ ...r, gets: Object.fromEntries(r.gets) });
  return {
    memcpy: Object.fromEntries(m.memcpy),
    puts: Object.fromEntries(m.puts),
    reusedPuts: Object.fromEntries(m.reusedPuts),
    sparePut: m.sparePut,
    crossCore: run(m.crossCore),
    sameCore: m.sameCore && run(m.sameCore),
    daemonAfter: m.daemonAfter,
  };
}
