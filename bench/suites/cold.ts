/**
 * cold: what a new worker process meets first. A writer stores a 1 GiB DataFrame (two float64
 * columns), a 1 KiB and a 1 GiB blob in trellis, and the same table as an Arrow IPC file in the
 * daemon's tmpfs. Then, RUNS times, each reader is a new process (no warm-up): it gets the
 * table, a blob, or maps the IPC file and decodes it with tableFromIPC (the fastest no-copy way
 * a Node user has to the same Table), and scans what it got. apache-arrow is loaded on both sides
 * before anything is timed. Each run takes the trellis and the file reader in turn, so load on
 * the machine hits both alike; every ratio is between medians of the same runs.
 *
 * Rows: cold (first in the process) and warm (the same again in that process) side by side, and
 * the first scan (page tables filled as pages are touched) beside the second.
 *
 * On /dev/shm the daemon gives the segments it reserves for blobs 2 MiB pages (where the kernel
 * allows), while the IPC file keeps 4 KiB pages. TRELLIS_BENCH_HUGE_DIR=DIR (a tmpfs
 * mounted with huge=always or within_size) runs every row a second time with the daemon's
 * --shm-dir and the IPC file there: huge pages for both from the first write, where the reader
 * also populates a blob's page tables at first view (src/client/mappings.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ColdReaderCommands, FirstRead, StoreResult } from '../children/cold-reader';
import { CODE_CACHE_DIR_ENV, CODE_CACHE_ENV } from '../../src/code-cache';
import { withChild } from '../lib/child';
import { runColdAb } from './cold/ab';
import { crossCorePlacement, describePlacement } from '../lib/cpu';
import { startBenchDaemon } from '../lib/daemon';
import { formatBytes, formatDuration, formatRatio, GiB, KiB } from '../lib/format';
import { summarize } from '../lib/stats';
import type { Row, Suite, SuiteContext, SuiteReport, TargetCheck } from '../lib/suite';

/** 7 runs of six fresh readers: about a minute on this machine. */
const PLAN = { runs: 7, tableBytes: GiB, smallBlobBytes: KiB, largeBlobBytes: GiB, daemonSize: '3GiB' };
export const HUGE_DIR_ENV = 'TRELLIS_BENCH_HUGE_DIR';

// The issue's goals.
const SMALL_BLOB_FIRST_GET_MS = 0.5;
const TABLE_FIRST_GET_MS = 1;
const TABLE_VS_FILE_GOAL = 10;

type Reader = 'table' | 'ipcFile' | 'smallBlob' | 'largeBlob' | 'tableNoCodeCache' | 'ipcFileShared';
const READERS: Reader[] = ['table', 'ipcFile', 'smallBlob', 'largeBlob', 'tableNoCodeCache', 'ipcFileShared'];
/** The readers that load trellis (the others only map the IPC file). */
const TRELLIS_READERS = new Set<Reader>(['table', 'smallBlob', 'largeBlob', 'tableNoCodeCache']);

interface Placed {
  /** The daemon's tmpfs and what it is. */
  shmDir: string;
  label: string;
  runs: Record<Reader, FirstRead[]>;
  stored: StoreResult;
}

async function measure({ scope, log }: SuiteContext, shmDir: string, label: string): Promise<Placed> {
  const placement = crossCorePlacement();
  const cpu = placement?.clientCpu;
  const daemon = await startBenchDaemon(scope, {
    size: PLAN.daemonSize,
    cpu: placement?.serverCpu,
    args: ['--shm-dir', shmDir],
  });
  log(`${label}: trellisd pid ${daemon.pid} --shm-dir ${shmDir}; ${describePlacement(placement)}`);
  const fileDir = fs.mkdtempSync(path.join(shmDir, 'trellis-bench-cold-'));
  scope.defer(() => fs.rmSync(fileDir, { recursive: true, force: true }));
  const ipcFile = path.join(fileDir, 'table.arrow');
  const socketArgs = ['--socket', daemon.socket];
  // A code cache of this run's own (src/code-cache.ts), in a fresh folder: the writer's exit
  // writes it and the first readers' exits refine it, as on a machine where trellis has run before.
  const codeCache = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bench-code-cache-'));
  scope.defer(() => fs.rmSync(codeCache, { recursive: true, force: true }));
  const env = { [CODE_CACHE_DIR_ENV]: codeCache };

  log(`${label}: writer stores a ${formatBytes(PLAN.tableBytes)} table, two blobs and ${ipcFile}`);
  const stored = await withChild<ColdReaderCommands, StoreResult>(
    scope,
    'cold-reader.ts',
    socketArgs,
    { cpu, env },
    (w) => w.call('store', { ...PLAN, ipcFile }),
  );
  const runs = Object.fromEntries(READERS.map((reader) => [reader, []])) as unknown as Record<Reader, FirstRead[]>;
  for (let run = 1; run <= PLAN.runs; run++) {
    log(`${label}: run ${run} of ${PLAN.runs}, a new process for each reader`);
    // The order turns each run, so that no reader always follows the same one.
    const order = READERS.map((_, i) => READERS[(run - 1 + i) % READERS.length]);
    for (const reader of order) {
      const args = TRELLIS_READERS.has(reader) ? socketArgs : [];
      const readerEnv = reader === 'tableNoCodeCache' ? { ...env, [CODE_CACHE_ENV]: '0' } : env;
      runs[reader].push(
        await withChild<ColdReaderCommands, FirstRead>(
          scope,
          'cold-reader.ts',
          args,
          { cpu, env: readerEnv },
          (child) => {
            if (reader === 'table' || reader === 'tableNoCodeCache') return child.call('table', { id: stored.tableId });
            if (reader === 'ipcFile') return child.call('ipcFile', { file: ipcFile });
            if (reader === 'ipcFileShared') return child.call('ipcFile', { file: ipcFile, shared: true });
            return child.call('blob', { id: reader === 'smallBlob' ? stored.smallBlobId : stored.largeBlobId });
          },
        ),
      );
    }
    // Each run's own first gets: run 1's readers are the first to load the cache the writer made.
    const firsts = (['table', 'smallBlob'] as const).map((r) => `${r} ${formatDuration(runs[r][run - 1].first * 1e6)}`);
    log(`${label}: run ${run}: first get ${firsts.join(', ')}`);
  }
  await daemon.stop();
  return { shmDir, label, runs, stored };
}

const ms = (values: number[]) => summarize(values.map((value) => value * 1e6));
const medianMs = (values: number[]) => summarize(values).median;

/** Each run's own ratio of a baseline's time to trellis's, lowest to highest: '2.1x–4.0x'. */
function runRatios(baseline: number[], trellis: number[]): string {
  const ratios = trellis.map((value, run) => baseline[run] / value);
  return `${formatRatio(Math.min(...ratios))}–${formatRatio(Math.max(...ratios))}`;
}

/** How many requests each run's first read made: none when the read index answered it. */
function requestsNote(runs: Array<{ firstRequests?: number }>): string {
  const requests = runs.map((r) => r.firstRequests);
  return requests.every((n) => n === 0)
    ? 'no request (read index)'
    : `requests: ${requests.map((n) => n ?? '?').join(',')}`;
}

function rows(placed: Placed): Row[] {
  const { runs, label } = placed;
  const pick = (reader: Reader, key: 'first' | 'firstCpu' | 'warm' | 'firstScan' | 'secondScan') =>
    runs[reader].map((r) => r[key]);
  const table = medianMs(pick('table', 'first'));
  const file = medianMs(pick('ipcFile', 'first'));
  const sharedFile = medianMs(pick('ipcFileShared', 'first'));
  const section = (what: string) => `${what} (${label}; median of ${PLAN.runs} new processes)`;
  const getSection = section('a new process reads a 1 GiB DataFrame or a blob; apache-arrow loaded on both sides');
  const scanSection = section('that process scans what it read: one byte of every 4 KiB page');
  const firstTable = medianMs(pick('table', 'firstScan'));
  const firstFile = medianMs(pick('ipcFile', 'firstScan'));
  return [
    {
      section: getSection,
      operation: 'baseline, cold: open + mmap IPC file + tableFromIPC',
      bytes: PLAN.tableBytes,
      stats: ms(pick('ipcFile', 'first')),
    },
    {
      section: getSection,
      operation: 'baseline, cold: the same, the file mapped as a SharedArrayBuffer (no GC, as trellis maps)',
      bytes: PLAN.tableBytes,
      stats: ms(pick('ipcFileShared', 'first')),
    },
    {
      section: getSection,
      operation: 'trellis, cold: first get of the DataFrame -> Table',
      bytes: PLAN.tableBytes,
      stats: ms(pick('table', 'first')),
      versus:
        `${formatRatio(file / table)} the IPC file (runs ${runRatios(pick('ipcFile', 'first'), pick('table', 'first'))}), ` +
        `${formatRatio(sharedFile / table)} as SharedArrayBuffer; ${requestsNote(runs.table)}`,
    },
    {
      section: getSection,
      operation: 'trellis, cold: the same with no code cache (TRELLIS_CODE_CACHE=0)',
      bytes: PLAN.tableBytes,
      stats: ms(pick('tableNoCodeCache', 'first')),
      versus: `${formatRatio(file / medianMs(pick('tableNoCodeCache', 'first')))} the IPC file`,
    },
    {
      section: getSection,
      operation: 'baseline, cold, reader CPU time only',
      bytes: PLAN.tableBytes,
      stats: ms(pick('ipcFile', 'firstCpu')),
    },
    {
      section: getSection,
      operation: 'baseline as SharedArrayBuffer, cold, reader CPU time only',
      bytes: PLAN.tableBytes,
      stats: ms(pick('ipcFileShared', 'firstCpu')),
    },
    {
      section: getSection,
      operation: 'trellis, cold, reader CPU time only (not the daemon, not waits)',
      bytes: PLAN.tableBytes,
      stats: ms(pick('table', 'firstCpu')),
      versus: `${formatRatio(medianMs(pick('ipcFile', 'firstCpu')) / medianMs(pick('table', 'firstCpu')))} the IPC file`,
    },
    {
      section: getSection,
      operation: 'trellis, cold, no code cache, reader CPU time only',
      bytes: PLAN.tableBytes,
      stats: ms(pick('tableNoCodeCache', 'firstCpu')),
    },
    {
      section: getSection,
      operation: 'baseline, warm: the same file again, same process',
      bytes: PLAN.tableBytes,
      stats: ms(pick('ipcFile', 'warm')),
    },
    {
      section: getSection,
      operation: 'trellis, warm: the DataFrame again, same process',
      bytes: PLAN.tableBytes,
      stats: ms(pick('table', 'warm')),
      versus: `${formatRatio(medianMs(pick('ipcFile', 'warm')) / medianMs(pick('table', 'warm')))} the IPC file`,
    },
    ...(['smallBlob', 'largeBlob'] as const).flatMap((reader): Row[] => {
      const bytes = reader === 'smallBlob' ? PLAN.smallBlobBytes : PLAN.largeBlobBytes;
      // What connect() costs the same processes, and the two together: what a user's new process
      // pays to its first blob, so that work moved from the first get into connect shows.
      const connect = runs[reader].map((r) => r.connect ?? NaN);
      const connectCpu = runs[reader].map((r) => r.connectCpu ?? NaN);
      return [
        {
          section: getSection,
          operation: `trellis, cold: first getBlob`,
          bytes,
          stats: ms(pick(reader, 'first')),
          versus: requestsNote(runs[reader]),
        },
        {
          section: getSection,
          operation: `trellis, cold: first getBlob, reader CPU time only`,
          bytes,
          stats: ms(pick(reader, 'firstCpu')),
        },
        { section: getSection, operation: `trellis, cold: connect() before it`, bytes, stats: ms(connect) },
        {
          section: getSection,
          operation: `trellis, cold: connect() before it, reader CPU time only`,
          bytes,
          stats: ms(connectCpu),
        },
        {
          section: getSection,
          operation: `trellis, cold: connect() + first getBlob`,
          bytes,
          stats: ms(connect.map((value, run) => value + pick(reader, 'first')[run])),
        },
        { section: getSection, operation: `trellis, warm: getBlob again`, bytes, stats: ms(pick(reader, 'warm')) },
      ];
    }),
    {
      section: scanSection,
      operation: 'baseline: the IPC file table, first scan',
      bytes: PLAN.tableBytes,
      stats: ms(pick('ipcFile', 'firstScan')),
    },
    {
      section: scanSection,
      operation: 'trellis: the DataFrame, first scan',
      bytes: PLAN.tableBytes,
      stats: ms(pick('table', 'firstScan')),
      versus: `${formatRatio(firstFile / firstTable)} the IPC file`,
    },
    {
      section: scanSection,
      operation: 'trellis: the 1 GiB blob, first scan',
      bytes: PLAN.largeBlobBytes,
      stats: ms(pick('largeBlob', 'firstScan')),
    },
    {
      section: scanSection,
      operation: 'trellis: the DataFrame, second scan (pages mapped)',
      bytes: PLAN.tableBytes,
      stats: ms(pick('table', 'secondScan')),
      versus: `first scan ${formatRatio(firstTable / medianMs(pick('table', 'secondScan')))} slower`,
    },
  ];
}

function targets(placed: Placed): TargetCheck[] {
  const { runs, label } = placed;
  const first = (reader: Reader) => medianMs(runs[reader].map((r) => r.first));
  const smallBlob = first('smallBlob');
  const largeBlob = first('largeBlob');
  const table = first('table');
  const file = first('ipcFile');
  return [
    {
      target: `${label}: a new process's first getBlob, any size, < ${SMALL_BLOB_FIRST_GET_MS} ms`,
      measured: `1 KiB ${formatDuration(smallBlob * 1e6)}, 1 GiB ${formatDuration(largeBlob * 1e6)}`,
      met: Math.max(smallBlob, largeBlob) < SMALL_BLOB_FIRST_GET_MS,
    },
    {
      target: `${label}: first get of a 1 GiB DataFrame < ${TABLE_FIRST_GET_MS} ms and >= ${TABLE_VS_FILE_GOAL}x the mmap'd IPC file`,
      measured:
        `${formatDuration(table * 1e6)}, ${formatRatio(file / table)} the IPC file (medians of ${PLAN.runs} runs; ` +
        `runs ${runRatios(
          runs.ipcFile.map((r) => r.first),
          runs.table.map((r) => r.first),
        )})`,
      met: table < TABLE_FIRST_GET_MS && file / table >= TABLE_VS_FILE_GOAL,
    },
    {
      target: `${label}: every Table and Buffer read lies in shared memory / the mapping (zero-copy)`,
      measured: READERS.map((reader) => `${reader} ${runs[reader].every((r) => r.zeroCopy) ? 'yes' : 'NO'}`).join(', '),
      met: READERS.every((reader) => runs[reader].every((r) => r.zeroCopy)),
    },
  ];
}

async function run(context: SuiteContext): Promise<SuiteReport> {
  const places: Array<{ dir: string; label: string }> = [
    { dir: fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), label: '/dev/shm' },
  ];
  const hugeDir = process.env[HUGE_DIR_ENV];
  if (hugeDir) places.push({ dir: hugeDir, label: `${hugeDir}, huge pages` });
  const measured: Placed[] = [];
  for (const place of places) measured.push(await measure(context, place.dir, place.label));
  return {
    rows: measured.flatMap(rows),
    targets: measured.flatMap(targets),
    notes: [
      'cold = the first read in a new process, which had connected and imported apache-arrow beforehand (both sides);',
      'the connect() rows time that connect in the blob readers (trellis already loaded), and connect() + first getBlob',
      'adds the two per process;',
      'warm = the same read again in that process. Readers run in turn in each run (the order turning each run);',
      'ratios are of medians of the same runs, "runs" gives the lowest and highest of each run\'s own ratio, and',
      'rows show the range of the runs where a p99 would need 50.',
      "the IPC baseline maps the file with trellis's addon (Node has no mmap) as an external ArrayBuffer,",
      'as mmap addons do: V8 counts those bytes and collects garbage. trellis maps segments as SharedArrayBuffers,',
      'which V8 does not count; the "as SharedArrayBuffer" baseline maps the file so too.',
      "The targets compare with the first baseline (the issue's). trellis readers load dist/ with a code cache",
      'that the writer and the first readers of this run wrote (src/code-cache.ts), as on a machine where trellis',
      'ran before; the "no code cache" rows turn it off (TRELLIS_CODE_CACHE=0).',
      '/dev/shm: the IPC file has 4 KiB pages; the segments the daemon reserves for blobs get 2 MiB pages where the kernel',
      'allows (native/segment.h).',
      `huge pages: ${hugeDir ? `measured in ${hugeDir}` : `not measured; set ${HUGE_DIR_ENV} to a tmpfs mounted with huge=always`}.`,
      `load average ${os.loadavg()[0].toFixed(1)} at the end: above ~2 on 2 cores, other work competed.`,
    ],
    data: { plan: PLAN, measured },
  };
}

export const suite: Suite = {
  name: 'cold',
  title: "a new process's first get of a 1 GiB DataFrame and of blobs, against an mmap'd Arrow IPC file",
  run,
  runAb: runColdAb,
};
