/**
 * What /proc says about the daemon over a soak: its private resident memory and its open fds.
 * RSS here is VmRSS less RssShmem: the shared-memory pages the daemon has touched follow the
 * objects in the store, which the workload changes by design; a leak shows in the rest.
 */
import * as fs from 'node:fs';

export interface ProbeSample {
  /** Seconds since the workers started. */
  t: number;
  /** Resident bytes that are not shared memory (heap, code, stacks). */
  privateRss: number;
  fds: number;
}

export function readProbe(pid: number, t: number): ProbeSample {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { t, privateRss: kib('VmRSS') - kib('RssShmem'), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

export interface Flatness {
  early: number;
  late: number;
  /** The most `late` may be for the check to pass. */
  allowed: number;
  flat: boolean;
  /** Samples in each window. */
  samples: [number, number];
}

/**
 * Compares the median of the last fifth of the samples with the median of the window just after
 * warm-up (from 20% to 40% of them): flat means late <= early * (1 + relative) + absolute.
 * Medians, so that a kill and restart caught mid-sample does not decide the answer. Windows are
 * cut by sample, not by time: none is taken while the daemon restarts, and on a loaded machine a
 * restart can outlast a time window of a short run and leave it empty.
 */
export function flatness(
  samples: readonly ProbeSample[],
  pick: (sample: ProbeSample) => number,
  relative: number,
  absolute: number,
): Flatness {
  const window = (from: number, to: number) =>
    samples.slice(Math.floor(from * samples.length), Math.ceil(to * samples.length)).map(pick);
  const earlyValues = window(0.2, 0.4);
  const lateValues = window(0.8, 1);
  const early = median(earlyValues);
  const late = median(lateValues);
  const allowed = early * (1 + relative) + absolute;
  return { early, late, allowed, flat: late <= allowed, samples: [earlyValues.length, lateValues.length] };
}

function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
