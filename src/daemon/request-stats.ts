/**
 * Requests answered, per kind, and how long they took: what /metrics reports as
 * trellis_requests_total and trellis_request_duration_seconds.
 *
 * Counting sits on every request's path, so it is a Map lookup and an increment. Timing costs
 * two clock reads and a bucket search, so it runs only once something reads it (`timing`, set
 * when the daemon serves HTTP). The buckets are kept here rather than in a prom-client Histogram,
 * whose observe() hashes its labels on every call; the metrics page reads them when scraped.
 */
import { performance } from 'node:perf_hooks';
import { isTrellisError } from '../errors';
import { daemonLog } from './log';

/** Upper bounds in seconds: from a 10 µs round trip to a 10 s wait for a name or a peer. */
export const DURATION_BUCKETS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
  5, 10,
] as const;

export class KindStats {
  count = 0;
  errors = 0;
  /** Observations per bucket, not cumulative; the last is above every bound (+Inf). */
  readonly buckets = new Float64Array(DURATION_BUCKETS.length + 1);
  timed = 0;
  /** Seconds, over the timed requests. */
  sum = 0;

  constructor(
    readonly kind: string,
    private readonly stats: RequestStats,
  ) {}

  /** The start time to pass to `finished`, or 0 when nothing reads durations. */
  started(): number {
    return this.stats.timing ? performance.now() : 0;
  }

  finished(started: number): void {
    if (started === 0) return;
    const seconds = (performance.now() - started) / 1000;
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]) bucket++;
    this.buckets[bucket]++;
    this.timed++;
    this.sum += seconds;
  }

  /** An error reply. A persist that fails for a reason other than a bad request is worth a log line. */
  failed(error: unknown): void {
    this.errors++;
    if (
      this.kind === 'persist' &&
      !isTrellisError(error, 'InvalidArgument') &&
      !isTrellisError(error, 'ObjectNotFound')
    ) {
      daemonLog().warn({ code: (error as { code?: string }).code }, `persist failed: ${(error as Error).message}`);
    }
  }
}

export class RequestStats {
  /** Whether requests are timed (set while something reads the durations). */
  timing = false;
  private readonly kinds = new Map<string, KindStats>();

  /** Counts one request of `kind`; the caller has checked that `kind` is one the daemon knows. */
  count(kind: string): KindStats {
    let stats = this.kinds.get(kind);
    if (stats === undefined) {
      stats = new KindStats(kind, this);
      this.kinds.set(kind, stats);
    }
    stats.count++;
    return stats;
  }

  all(): IterableIterator<KindStats> {
    return this.kinds.values();
  }
}
