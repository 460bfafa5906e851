/** A report row from a set of timed samples: their statistics, faults per operation and GC time. */
import type { SampleSet } from './sampler';
import { summarize } from './stats';
import type { Row } from './suite';

export function sampleRow(section: string, operation: string, set: SampleSet, bytes?: number, versus?: string): Row {
  const ops = set.samplesNs.length * set.opsPerSample;
  return {
    section,
    operation,
    bytes,
    stats: summarize(set.samplesNs),
    faultsPerOp: set.minorFaults / ops,
    gcMs: set.gcMs,
    versus,
  };
}

/** Sets of samples of one operation (from rounds, or from fresh processes) as one set. */
export function pooled(sets: readonly SampleSet[]): SampleSet {
  return {
    samplesNs: sets.flatMap((set) => set.samplesNs),
    opsPerSample: sets[0]?.opsPerSample ?? 1,
    minorFaults: sets.reduce((total, set) => total + set.minorFaults, 0),
    gcCount: sets.reduce((total, set) => total + set.gcCount, 0),
    gcMs: sets.reduce((total, set) => total + set.gcMs, 0),
  };
}
