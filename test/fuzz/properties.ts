/**
 * Settings shared by the fast-check properties: a fixed seed so that a failure reproduces, and a
 * bounded number of runs so that each property takes a few seconds. FUZZ_RUNS (set by
 * `npm run fuzz`) raises the runs for a long search; FUZZ_SEED picks another seed.
 */
import * as fc from 'fast-check';
import { isTrellisError, type ErrorCode } from '../../src/errors';

export function runs(normal: number): fc.Parameters<unknown> {
  const scale = Number(process.env.FUZZ_RUNS ?? 0);
  const seed = Number(process.env.FUZZ_SEED ?? 20261206);
  return {
    seed,
    numRuns: scale > 0 ? scale : normal,
    interruptAfterTimeLimit: Number(process.env.FUZZ_MS ?? 0) || undefined,
  };
}

/** Runs `act`; passes if it returns, or throws a TrellisError of one of `codes` (anything else is a bug). */
export function onlyTyped(act: () => unknown, codes: readonly ErrorCode[]): void {
  try {
    act();
  } catch (error) {
    if (!isTrellisError(error) || !codes.includes(error.code)) throw error;
  }
}
