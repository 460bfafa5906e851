/**
 * How much the core suite measures. Counts shrink as sizes grow so the whole suite stays well
 * under a minute on 2 cores: a 1 GiB put or memcpy takes around 0.1 s, a small operation tens
 * of µs, and every fresh process costs a few hundred ms to start.
 */
import { GiB, KiB, MiB } from '../../lib/format';

export interface SizePlan {
  bytes: number;
  /** Timed samples, and copies timed together per sample (small copies are too short to time alone). */
  memcpy: { iterations: number; opsPerSample: number };
  /** Steady-state puts after warmup, each blob deleted after (untimed); the first put is timed apart. */
  put: { iterations: number; warmup: number };
  /** Distinct blobs of this size that one process writes and readers get in rotation. */
  getCopies: number;
}

export interface CorePlan {
  /** Enough for the largest blob twice over plus standard segments, well inside the 8 GiB budget. */
  daemonSize: string;
  sizes: SizePlan[];
  /** Gets per reader process, after the first (cold) get; get cost should not depend on size. */
  get: { iterations: number; warmup: number };
  /** Sizes whose gets are measured again with the reader on the daemon's CPU. */
  sameCoreGetSizes: number[];
  /**
   * create + fill + seal + get + release, back to back, of one small blob; in `rounds` that
   * alternate with as many round trips to a raw echo from the same process.
   */
  cycle: { bytes: number; iterations: number; warmup: number; rounds: number };
  /** A small echo, measured before and after the cross-CPU trials and once on one CPU. */
  roundTrip: { messageBytes: number; iterations: number; warmup: number };
}

export const CORE_PLAN: CorePlan = {
  daemonSize: '4GiB',
  sizes: [
    { bytes: KiB, memcpy: { iterations: 300, opsPerSample: 256 }, put: { iterations: 500, warmup: 50 }, getCopies: 8 },
    {
      bytes: 64 * KiB,
      memcpy: { iterations: 300, opsPerSample: 8 },
      put: { iterations: 300, warmup: 30 },
      getCopies: 8,
    },
    { bytes: MiB, memcpy: { iterations: 200, opsPerSample: 1 }, put: { iterations: 200, warmup: 20 }, getCopies: 8 },
    { bytes: 16 * MiB, memcpy: { iterations: 50, opsPerSample: 1 }, put: { iterations: 50, warmup: 3 }, getCopies: 4 },
    { bytes: 256 * MiB, memcpy: { iterations: 20, opsPerSample: 1 }, put: { iterations: 16, warmup: 1 }, getCopies: 1 },
    { bytes: GiB, memcpy: { iterations: 10, opsPerSample: 1 }, put: { iterations: 8, warmup: 1 }, getCopies: 1 },
  ],
  get: { iterations: 1000, warmup: 100 },
  sameCoreGetSizes: [KiB, GiB],
  cycle: { bytes: KiB, iterations: 1000, warmup: 100, rounds: 10 },
  roundTrip: { messageBytes: 32, iterations: 2000, warmup: 200 },
};
