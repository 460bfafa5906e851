/**
 * The statistics of an A/B run (ab.ts): two builds measured in pairs, one sample of each per pair,
 * the order turning each pair. On a machine others load, the medians of two sequential runs drift
 * apart with the load more than a 0.3 ms change moves them; the two samples of one pair saw (about)
 * the same load, so each pair's own B/A ratio cancels most of it, and the median of those ratios,
 * with a bootstrap interval over the pairs, says whether B differs from A. Pure functions: tested
 * in test/bench/ab-stats.test.ts.
 */
import { percentile } from './stats';
import { seededRandom } from '../../test/fixtures/seeded-random';

export type BuildLabel = 'A' | 'B';

/** Which build goes first in pair `pair` (from 0): A then B, then B then A, and so on. */
export function pairOrder(pair: number): [BuildLabel, BuildLabel] {
  return pair % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
}

export interface AbComparison {
  /** Pairs with a finite, positive sample on both sides (the others are left out). */
  pairs: number;
  aMedian: number;
  bMedian: number;
  /** bMedian / aMedian. */
  ratioOfMedians: number;
  /** The median over pairs of each pair's own B/A. */
  pairRatio: number;
  pairRatioMin: number;
  pairRatioMax: number;
  /** A bootstrap interval of `pairRatio` (resampling whole pairs); NaN below 3 pairs. */
  interval: [number, number];
  /** Pairs where B took less than A. */
  bLowerIn: number;
  /** 'B lower' or 'B higher' when the interval lies wholly below or above 1; else 'no clear difference'. */
  verdict: 'B lower' | 'B higher' | 'no clear difference';
}

export interface CompareOptions {
  /** Bootstrap resamples; default 2000. */
  resamples?: number;
  /** The interval's coverage; default 0.95. */
  confidence?: number;
  /** Seed of the resampling: the same samples give the same interval. Default 1. */
  seed?: number;
}

/**
 * Compares B's samples with A's, pair by pair: `a[i]` and `b[i]` are pair i's two samples (lower
 * is better, such as a duration). A pair missing either side (NaN, undefined, not positive) is
 * left out of everything, so both medians are over the same pairs.
 */
export function compareAB(a: readonly number[], b: readonly number[], options: CompareOptions = {}): AbComparison {
  const { resamples = 2000, confidence = 0.95, seed = 1 } = options;
  const kept: Array<[number, number]> = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] > 0 && b[i] > 0 && Number.isFinite(a[i]) && Number.isFinite(b[i])) kept.push([a[i], b[i]]);
  }
  const aMedian = median(kept.map(([x]) => x));
  const bMedian = median(kept.map(([, y]) => y));
  const ratios = kept.map(([x, y]) => y / x);
  const interval = bootstrapMedianInterval(ratios, resamples, confidence, seed);
  const verdict = interval[1] < 1 ? 'B lower' : interval[0] > 1 ? 'B higher' : 'no clear difference';
  return {
    pairs: kept.length,
    aMedian,
    bMedian,
    ratioOfMedians: bMedian / aMedian,
    pairRatio: median(ratios),
    pairRatioMin: ratios.length > 0 ? Math.min(...ratios) : NaN,
    pairRatioMax: ratios.length > 0 ? Math.max(...ratios) : NaN,
    interval,
    bLowerIn: kept.filter(([x, y]) => y < x).length,
    verdict,
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  return percentile(
    [...values].sort((x, y) => x - y),
    50,
  );
}

/** The percentile interval of the median over `resamples` resamples (with replacement) of `values`. */
export function bootstrapMedianInterval(
  values: readonly number[],
  resamples: number,
  confidence: number,
  seed: number,
): [number, number] {
  if (values.length < 3) return [NaN, NaN];
  const random = seededRandom(seed);
  const medians: number[] = [];
  const sample = new Array<number>(values.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < values.length; i++) sample[i] = values[Math.floor(random() * values.length)];
    medians.push(median(sample));
  }
  medians.sort((x, y) => x - y);
  const tail = ((1 - confidence) / 2) * 100;
  return [percentile(medians, tail), percentile(medians, 100 - tail)];
}
