/**
 * A/B runs: `npm run bench -- SUITE --ab REV_OR_DIR` measures this tree (A) against another build
 * (B, ab-build.ts) in one run, alternating them sample by sample (the order turning each pair),
 * so that both see the same load; the report gives each metric's A and B medians and B/A with a
 * confidence (ab-stats.ts). A suite opts in with `runAb`, which prepares what each build needs
 * (its own daemon, from its own bin/trellisd on its own socket) and hands `runPairs` one function
 * that takes one sample of either build: fresh processes started with `buildRoot: build.root`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CODE_CACHE_DIR_ENV } from '../../src/code-cache';
import { compareAB, pairOrder, type AbComparison, type BuildLabel } from './ab-stats';
import type { AbBuild } from './ab-build';
import { formatDuration, formatRatio } from './format';
import type { SuiteContext, SuiteReport } from './suite';
import type { Column } from './table';

export interface AbContext extends SuiteContext {
  /** A (this tree) and B (the other build). */
  readonly builds: { readonly A: AbBuild; readonly B: AbBuild };
  /** Pairs asked for with --ab-pairs, or undefined for the suite's own default. */
  readonly pairs?: number;
}

/** One sample of one build: milliseconds by metric name (a metric a build cannot give is left out). */
export type AbSample = Record<string, number>;

export interface AbSamples {
  /** Metric names, in the order they were first given. */
  metrics: string[];
  /** Per metric, each pair's sample of A and of B (NaN where one was missing). */
  A: Record<string, number[]>;
  B: Record<string, number[]>;
}

/**
 * The environment for a build's processes in an A/B run (its clients', and where the suite passes
 * it, its daemon's): a new code cache of the build's own (src/code-cache.ts), removed with the
 * run's scope. The machine's cache holds what earlier runs of each directory wrote there, which
 * favours the build that ran more often: this tree's has been refined by every bench and test run,
 * a build under $TMPDIR's by a few A/B runs.
 */
export function ownCodeCache(context: AbContext, build: AbBuild): Record<string, string> {
  const codeCache = fs.mkdtempSync(path.join(os.tmpdir(), `trellis-bench-code-cache-${build.label}-`));
  context.scope.defer(() => fs.rmSync(codeCache, { recursive: true, force: true }));
  return { [CODE_CACHE_DIR_ENV]: codeCache };
}

/** Takes `pairs` pairs of samples, one of each build a pair, A first in even pairs and B first in odd ones. */
export async function runPairs(
  context: AbContext,
  pairs: number,
  sample: (build: AbBuild, pair: number) => Promise<AbSample>,
): Promise<AbSamples> {
  const samples: AbSamples = { metrics: [], A: {}, B: {} };
  for (let pair = 0; pair < pairs; pair++) {
    const order = pairOrder(pair);
    context.log(`pair ${pair + 1} of ${pairs}: ${order.join(' then ')}`);
    const taken: Partial<Record<BuildLabel, AbSample>> = {};
    for (const label of order) taken[label] = await sample(context.builds[label], pair);
    for (const label of ['A', 'B'] as const) {
      for (const metric of Object.keys(taken[label]!)) {
        if (!samples.metrics.includes(metric)) {
          samples.metrics.push(metric);
          samples.A[metric] = new Array<number>(pair).fill(NaN);
          samples.B[metric] = new Array<number>(pair).fill(NaN);
        }
      }
    }
    for (const metric of samples.metrics) {
      for (const label of ['A', 'B'] as const) samples[label][metric].push(taken[label]![metric] ?? NaN);
    }
  }
  return samples;
}

const COLUMNS: Column[] = [
  { header: 'metric (ms, or a count)' },
  { header: 'pairs', align: 'right' },
  { header: 'A median', align: 'right' },
  { header: 'B median', align: 'right' },
  { header: 'B/A medians', align: 'right' },
  { header: 'B/A per pair: median [95% CI]', align: 'right' },
  { header: 'pair range', align: 'right' },
  { header: 'B lower in', align: 'right' },
  { header: 'verdict' },
];

export interface AbReportOptions {
  /** Metrics that count something (requests, page faults) rather than take milliseconds. */
  counts?: readonly string[];
}

/** The report of an A/B run: one row per metric, the builds named, the raw samples kept in the results file. */
export function abReport(
  context: AbContext,
  samples: AbSamples,
  title: string,
  notes: string[] = [],
  options: AbReportOptions = {},
): SuiteReport {
  const compared: Record<string, AbComparison> = {};
  for (const metric of samples.metrics) compared[metric] = compareAB(samples.A[metric], samples.B[metric]);
  const rows = samples.metrics.map((metric) => {
    const c = compared[metric];
    const format = options.counts?.includes(metric)
      ? (value: number) => (Number.isFinite(value) ? value.toPrecision(3) : '-')
      : (ms: number) => formatDuration(ms * 1e6);
    return [
      metric,
      String(c.pairs),
      format(c.aMedian),
      format(c.bMedian),
      formatRatio(c.ratioOfMedians),
      `${c.pairRatio.toFixed(3)} [${c.interval[0].toFixed(3)}, ${c.interval[1].toFixed(3)}]`,
      `${c.pairRatioMin.toFixed(2)}–${c.pairRatioMax.toFixed(2)}`,
      `${c.bLowerIn}/${c.pairs}`,
      c.verdict,
    ];
  });
  const { A, B } = context.builds;
  return {
    rows: [],
    tables: [{ title: `${title}: A/B, lower is better`, columns: COLUMNS, rows }],
    targets: [],
    notes: [
      `A = ${A.description} (${A.root})`,
      `B = ${B.description} (${B.root})`,
      'each pair takes one sample of A and one of B in fresh processes, A first in odd pairs and B first in even ones,',
      "so both see the same load; B/A per pair is each pair's own ratio, its median with a bootstrap 95% interval",
      '(2000 resamples of the pairs); the verdict says B lower/higher only when that interval excludes 1.',
      "Both builds run this tree's bench code; only the library (dist/, build/, bin/trellisd) is each build's own.",
      ...notes,
    ],
    data: { builds: { A, B }, samples, compared },
  };
}
