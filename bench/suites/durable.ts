/**
 * durable: the --data-dir storage layer (src/daemon/durable) against plain fs on the same disk.
 *
 * - persist of a 1 GiB blob from shared memory (write with CRC-32 alongside, fsync, rename, fsync
 *   of the directory, catalog commit) against fs write + fsync of the same bytes;
 * - the first read of it after reopening the store, into shared memory, checked against its
 *   CRC-32, against an fs read of the same bytes from a plain file (page cache dropped first
 *   when running as root, so both come from the disk);
 * - opening a data dir holding 10,000 small (inline) and 10 large (file) objects, in a fresh
 *   process, as a restarting daemon does before its ready line.
 *
 * Store and fs alternate which goes first in each trial. Everything is in the bench's temp
 * folder (os.tmpdir(), a real disk here) and removed with it.
 */
import type { BigBlobTrials, DurableClientCommands } from '../children/durable-client';
import { withChild } from '../lib/child';
import { formatBytes, formatRatio, GiB, KiB, MiB } from '../lib/format';
import { summarize } from '../lib/stats';
import type { Suite, SuiteContext, SuiteReport } from '../lib/suite';

const BIG_BYTES = Number(process.env.TRELLIS_BENCH_DURABLE_BYTES ?? GiB);
const BIG_TRIALS = 3;
const CATALOG = { small: 10_000, smallBytes: 4 * KiB, large: 10, largeBytes: 8 * MiB };
const OPEN_TRIALS = 3;
const GOALS = { persist: 0.7, firstGet: 0.7, openMs: 1000 };

async function run({ scope, log }: SuiteContext): Promise<SuiteReport> {
  log(`${BIG_TRIALS} trials of persist and first read of ${formatBytes(BIG_BYTES)}, each against fs`);
  const big = await withChild<DurableClientCommands, BigBlobTrials>(scope, 'durable-client.ts', [], {}, (child) =>
    child.call('bigBlob', { dir: scope.path('big'), bytes: BIG_BYTES, trials: BIG_TRIALS, cold: true }),
  );
  const catalogDir = scope.path('catalog');
  log(`filling a data dir with ${CATALOG.small} small and ${CATALOG.large} large objects`);
  const filled = await withChild<DurableClientCommands, { smallNs: number; largeNs: number }>(
    scope,
    'durable-client.ts',
    [],
    {},
    (child) => child.call('fillCatalog', { dir: catalogDir, ...CATALOG }),
  );
  const opens: Array<{ requireNs: number; openNs: number; objects: number }> = [];
  for (let trial = 0; trial < OPEN_TRIALS; trial++) {
    log(`opening it in a fresh process, ${trial + 1} of ${OPEN_TRIALS}`);
    opens.push(
      await withChild<DurableClientCommands, (typeof opens)[number]>(scope, 'durable-client.ts', [], {}, (child) =>
        child.call('openCatalog', { dir: catalogDir }),
      ),
    );
  }

  const persist = summarize(big.persistNs);
  const fsWrite = summarize(big.fsWriteNs);
  const readBlob = summarize(big.readBlobNs);
  const fsRead = summarize(big.fsReadNs);
  const open = summarize(opens.map((o) => o.openNs));
  const load = summarize(opens.map((o) => o.requireNs));
  const persistRatio = fsWrite.median / persist.median;
  const readRatio = fsRead.median / readBlob.median;
  const smallObjects = CATALOG.small;
  const perSmall = { ...summarize([filled.smallNs / smallObjects]), n: smallObjects };
  const perLarge = { ...summarize([filled.largeNs / CATALOG.large]), n: CATALOG.large };
  const cache = big.coldReads ? 'page cache dropped' : 'from the page cache (not root: cannot drop it)';
  return {
    rows: [
      { section: 'baseline', operation: 'fs write + fsync (one file)', bytes: BIG_BYTES, stats: fsWrite },
      { section: 'baseline', operation: `fs read into shared memory, ${cache}`, bytes: BIG_BYTES, stats: fsRead },
      {
        section: 'persist',
        operation: 'persist of one blob (file)',
        bytes: BIG_BYTES,
        stats: persist,
        versus: `${formatRatio(persistRatio)} of fs write + fsync`,
      },
      {
        section: 'persist',
        operation: `persist of ${smallObjects} inline blobs, concurrent calls (per object)`,
        bytes: CATALOG.smallBytes,
        stats: perSmall,
      },
      {
        section: 'persist',
        operation: `persist of ${CATALOG.large} file blobs, one after another (per object)`,
        bytes: CATALOG.largeBytes,
        stats: perLarge,
      },
      {
        section: 'first get after restart',
        operation: `readBlob into shared memory, ${cache}`,
        bytes: BIG_BYTES,
        stats: readBlob,
        versus: `${formatRatio(readRatio)} of fs read`,
      },
      {
        section: 'restart',
        operation: `open a data dir of ${smallObjects} small + ${CATALOG.large} large objects`,
        stats: open,
        versus: `${opens[0].objects} objects loaded`,
      },
      { section: 'restart', operation: 'load the durable store code (lmdb, from dist/)', stats: load },
    ],
    targets: [
      {
        target: `persist of ${formatBytes(BIG_BYTES)} >= ${GOALS.persist}x fs write + fsync`,
        measured: formatRatio(persistRatio),
        met: persistRatio >= GOALS.persist,
      },
      {
        target: `first get after restart >= ${GOALS.firstGet}x fs read`,
        measured: formatRatio(readRatio),
        met: readRatio >= GOALS.firstGet,
      },
      {
        target: `restart with ${smallObjects} persisted small objects ready in < ${GOALS.openMs} ms`,
        measured: `${(open.median / 1e6).toFixed(0)} ms open (+ ${(load.median / 1e6).toFixed(0)} ms loading code)`,
        met: (open.median + load.median) / 1e6 < GOALS.openMs,
      },
    ],
    notes: [
      `big blob: ${BIG_TRIALS} trials in one process (persist, reopen, two reads each), store and fs alternating ` +
        'which goes first; both read into the same touched shared memory',
      `catalog: ${smallObjects} blobs of ${formatBytes(CATALOG.smallBytes)} (inline) and ${CATALOG.large} of ` +
        `${formatBytes(CATALOG.largeBytes)} (files); open = lock, lmdb open, read every record, sweep blobs/, ` +
        'in a fresh process',
      'disk: os.tmpdir() on a virtio disk: fsync speed swings by 3x or more between runs, and reads after dropping ' +
        "the page cache can still come from the host's cache at memory speed",
    ],
    data: { big, filled, opens },
  };
}

export const suite: Suite = {
  name: 'durable',
  title: 'durable store: persist and first get of 1 GiB vs fs, restart with 10,000 objects',
  run,
};
