/** Summaries of timing samples. All durations are nanoseconds. */

/** Below this many samples a p99 is just the maximum, so it is not reported. */
export const MIN_SAMPLES_FOR_P99 = 50;

export interface Summary {
  n: number;
  median: number;
  /** NaN when there are fewer than MIN_SAMPLES_FOR_P99 samples. */
  p99: number;
  min: number;
  max: number;
  mean: number;
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) return { n: 0, median: NaN, p99: NaN, min: NaN, max: NaN, mean: NaN };
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((total, value) => total + value, 0);
  return {
    n: sorted.length,
    median: percentile(sorted, 50),
    p99: sorted.length >= MIN_SAMPLES_FOR_P99 ? percentile(sorted, 99) : NaN,
    min: sorted[0],
    max: sorted[sorted.length - 1],
    mean: sum / sorted.length,
  };
}

/** Linear interpolation between closest ranks, over samples sorted ascending. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 1) return sorted[0];
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}
