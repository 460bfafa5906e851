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
