/**
 * What a soak worker tells the runner over Node's IPC channel. Workers may be SIGKILLed at any
 * moment, so they report as they go: counts and latencies in a batch every second, and each
 * change to a name they own twice, as an intent before the request and as done after the reply.
 * A name whose worker died between the two may hold either value; the final check accepts both.
 */

/** What a name should hold: absent, or an object whose bytes have this sha1. */
export type NameValue = { present: false } | { present: true; checksum: string; size: number };

export interface StatsBatch {
  type: 'stats';
  /** Milliseconds per finished operation, by operation kind. */
  latencies: Record<string, number[]>;
  /** Failures the workload expects (a name another client dropped), by 'kind:Code'. */
  expected: Record<string, number>;
  /** Everything else: each one fails the soak. */
  unexpected: Array<{ kind: string; code: string; message: string }>;
  /** Bytes written into new objects and streams. */
  bytesWritten: number;
}

export interface NameIntent {
  type: 'name-intent';
  name: string;
  value: NameValue;
}

export interface NameDone {
  type: 'name-done';
  name: string;
  value: NameValue;
}

export type WorkerMessage = StatsBatch | NameIntent | NameDone | { type: 'ready' } | { type: 'stopped' };

/** The runner's only message: finish the current operation, report, close and exit. */
export type RunnerMessage = { type: 'stop' };
