/**
 * Timing inside a bench child. Besides durations it counts what usually explains them: minor
 * page faults (first touch of shared pages) and garbage collections (V8 counts every mapped
 * ArrayBuffer as external memory, so large mappings can trigger one). Both are counted only
 * inside the timed windows, so untimed setup and cleanup between samples do not pollute them.
 */
import { performance, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

export interface SampleSet {
  /** Duration of each timed operation, in nanoseconds (a batch's time divided by its size). */
  samplesNs: number[];
  /** Operations timed together per sample: tiny ones are batched to stay above timer noise. */
  opsPerSample: number;
  /** Minor page faults inside the timed windows, in total. */
  minorFaults: number;
  /** Garbage collections that started inside the timed windows, and their total duration. */
  gcCount: number;
  gcMs: number;
}

export interface SampleOptions {
  iterations: number;
  /** Untimed runs first, so the JIT and caches settle. */
  warmup?: number;
  /** Operations per timed sample; `op` is called this many times back to back. */
  opsPerSample?: number;
  /** Untimed work after each sample (say, releasing what the operation took). */
  after?: (iteration: number) => unknown;
}

type Operation = (iteration: number) => unknown;

export async function sample(op: Operation, options: SampleOptions): Promise<SampleSet> {
  const { iterations, warmup = 0, opsPerSample = 1, after } = options;
  for (let i = 0; i < warmup; i++) {
    await runBatch(op, i * opsPerSample, opsPerSample);
    if (after) await after(i);
  }
  const gc = watchGarbageCollection();
  const samplesNs: number[] = [];
  const windows: Array<[number, number]> = [];
  let minorFaults = 0;
  for (let i = 0; i < iterations; i++) {
    const faultsBefore = process.resourceUsage().minorPageFault;
    const start = performance.now();
    for (let j = 0; j < opsPerSample; j++) {
      // Await only real promises: awaiting a plain value would add a microtask to sync work.
      const result = op(i * opsPerSample + j);
      if (result instanceof Promise) await result;
    }
    const end = performance.now();
    minorFaults += process.resourceUsage().minorPageFault - faultsBefore;
    samplesNs.push(((end - start) * 1e6) / opsPerSample);
    windows.push([start, end]);
    if (after) await after(i);
  }
  const collections = (await gc.stop()).filter((entry) =>
    windows.some(([start, end]) => entry.startTime >= start && entry.startTime < end),
  );
  return {
    samplesNs,
    opsPerSample,
    minorFaults,
    gcCount: collections.length,
    gcMs: collections.reduce((total, entry) => total + entry.duration, 0),
  };
}

/** One timed run: for the first operation in a fresh process, which nothing can warm up. */
export function sampleOnce(op: Operation): Promise<SampleSet> {
  return sample(op, { iterations: 1 });
}

async function runBatch(op: Operation, first: number, count: number): Promise<void> {
  for (let j = 0; j < count; j++) await op(first + j);
}

function watchGarbageCollection(): { stop(): Promise<PerformanceEntry[]> } {
  const entries: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  return {
    async stop() {
      // Node queues gc entries from a native callback; one turn of the loop lets them arrive.
      await new Promise((resolve) => setImmediate(resolve));
      entries.push(...observer.takeRecords());
      observer.disconnect();
      return entries;
    },
  };
}
