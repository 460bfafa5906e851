/**
 * ShareableList: reading every item of a frozen 100,000-item list in a process that did not
 * create it, against reading the same items from a plain JS array in that process; and the
 * cost of ShareableList.open against one request round trip to the daemon.
 *
 * The goal from the issue is a full read within 3x of the array. A list decodes an item the
 * first time it is read and caches it (a frozen list never changes), so the first pass pays for
 * decoding and later passes cost what the array does. Both are reported; the first pass, which
 * in a fresh process also pays for the open and a cold JIT, is set against the alternative to
 * sharing: copying the items into the process (v8.deserialize), also timed cold.
 *
 * Run alone: node --expose-gc --require tsx/cjs bench/shareable-list.ts
 */
import { startChild } from './lib/child';
import { startBenchDaemon } from './lib/daemon';
import { formatBytes, formatDuration, formatRatio } from './lib/format';
import type { SampleSet } from './lib/sampler';
import { Scope } from './lib/scope';
import { summarize } from './lib/stats';
import type { ShareableListCommands } from './children/shareable-list-client';

export const LIST_ITEMS = 100_000;
const PASSES = 30;
const OPENS = 300;
const TARGET_RATIO = 3;

export interface ShareableListBench {
  items: number;
  listBytes: number;
  /** Median nanoseconds for one pass over all items. */
  arrayPassNs: number;
  cachedPassNs: number;
  decodingPassNs: number;
  firstOpenNs: number;
  firstPassNs: number;
  firstDeserializeAndReadNs: number;
  /** Median nanoseconds. */
  openNs: number;
  roundTripNs: number;
  ratios: {
    cachedVsArray: number;
    decodingVsArray: number;
    firstOpenAndReadVsArray: number;
    firstOpenAndReadVsCopy: number;
    openVsRoundTrip: number;
  };
  targetMet: boolean;
}

const median = (set: SampleSet) => summarize(set.samplesNs).median;

/** Runs in `scope` when given (the runner's), else in its own, closed at the end. */
export async function benchShareableList(options: { scope?: Scope; log?: (message: string) => void } = {}): Promise<ShareableListBench> {
  const scope = options.scope ?? new Scope();
  const log = options.log ?? ((message: string) => process.stderr.write(`  shareable-list: ${message}\n`));
  try {
    const daemon = await startBenchDaemon(scope, { size: '1GiB' });
    log(`creating a frozen list of ${LIST_ITEMS} items (writer process)`);
    const writer = await startChild<ShareableListCommands>(scope, 'shareable-list-client.ts', [daemon.socket]);
    const { name, bytes } = await writer.call('create', { count: LIST_ITEMS });
    await writer.stop();

    log('reading it in a fresh process');
    const reader = await startChild<ShareableListCommands>(scope, 'shareable-list-client.ts', [daemon.socket]);
    const read = await reader.call('read', { name, count: LIST_ITEMS, iterations: PASSES, warmup: 3 });
    await reader.stop();
    log('copying the items into a fresh process instead');
    const copier = await startChild<ShareableListCommands>(scope, 'shareable-list-client.ts', [daemon.socket]);
    const copied = await copier.call('copyFirst', { count: LIST_ITEMS });
    await copier.stop();
    log('timing open against a round trip (fresh process)');
    const opener = await startChild<ShareableListCommands>(scope, 'shareable-list-client.ts', [daemon.socket]);
    const opened = await opener.call('open', { name, iterations: OPENS, warmup: 30 });
    await opener.stop();

    const result = summarizeBench(bytes, read, median(copied.firstDeserializeAndRead), opened);
    process.stdout.write(renderBench(result));
    return result;
  } finally {
    if (!options.scope) await scope.close();
  }
}

function summarizeBench(
  listBytes: number,
  read: Awaited<ReturnType<ShareableListCommands['read']>>,
  firstDeserializeAndReadNs: number,
  opened: Awaited<ReturnType<ShareableListCommands['open']>>,
): ShareableListBench {
  const arrayPassNs = median(read.arrayPass);
  const cachedPassNs = median(read.cachedPass);
  const decodingPassNs = median(read.decodingPass);
  const firstOpenNs = median(read.firstOpen);
  const firstPassNs = median(read.firstPass);
  const firstOpenAndReadNs = firstOpenNs + firstPassNs;
  const openNs = median(opened.open);
  const roundTripNs = median(opened.roundTrip);
  return {
    items: LIST_ITEMS,
    listBytes,
    arrayPassNs,
    cachedPassNs,
    decodingPassNs,
    firstOpenNs,
    firstPassNs,
    firstDeserializeAndReadNs,
    openNs,
    roundTripNs,
    ratios: {
      cachedVsArray: cachedPassNs / arrayPassNs,
      decodingVsArray: decodingPassNs / arrayPassNs,
      firstOpenAndReadVsArray: firstOpenAndReadNs / arrayPassNs,
      firstOpenAndReadVsCopy: firstOpenAndReadNs / firstDeserializeAndReadNs,
      openVsRoundTrip: openNs / roundTripNs,
    },
    targetMet: cachedPassNs / arrayPassNs <= TARGET_RATIO,
  };
}

function renderBench(r: ShareableListBench): string {
  const row = (label: string, ns: number, versus: string) => `  ${label.padEnd(44)} ${formatDuration(ns).padStart(10)}  ${versus}`.trimEnd() + '\n';
  return (
    `\nshareable-list: ${r.items} items, ${formatBytes(r.listBytes)}, read in another process (medians)\n` +
    row('plain JS array, one pass', r.arrayPassNs, 'baseline') +
    row('frozen list, later passes (cached)', r.cachedPassNs, `${formatRatio(r.ratios.cachedVsArray)} array`) +
    row('frozen list, decoding every item', r.decodingPassNs, `${formatRatio(r.ratios.decodingVsArray)} array`) +
    row('first open, fresh process', r.firstOpenNs, '') +
    row('first pass after it', r.firstPassNs, '') +
    row('first open + first pass', r.firstOpenNs + r.firstPassNs, `${formatRatio(r.ratios.firstOpenAndReadVsArray)} array`) +
    row('copy instead: deserialize + first pass, fresh', r.firstDeserializeAndReadNs, `list's first pass: ${formatRatio(r.ratios.firstOpenAndReadVsCopy)} this`) +
    row('ShareableList.open (one round trip)', r.openNs, `${formatRatio(r.ratios.openVsRoundTrip)} round trip`) +
    row('round trip (client.exists)', r.roundTripNs, 'baseline') +
    `  target: a full read within ${TARGET_RATIO}x the array: ${r.targetMet ? 'MET' : 'MISSED'} (cached passes)\n`
  );
}

if (require.main === module) {
  benchShareableList().catch((error: Error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exitCode = 1;
  });
}
