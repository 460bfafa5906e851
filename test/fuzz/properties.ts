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
    // FUZZ_PATH (with FUZZ_SEED) replays one failure that a long run printed.
    path: process.env.FUZZ_PATH,
  };
}

/**
 * fc.assert that also says how many inputs were tried when run by `npm run fuzz` (FUZZ_MS set),
 * since a time-bounded search's worth is its number of executions.
 */
export function check<Ts>(property: fc.IProperty<Ts>, parameters: fc.Parameters<Ts>): void;
export function check<Ts>(property: fc.IAsyncProperty<Ts>, parameters: fc.Parameters<Ts>): Promise<void>;
export function check<Ts>(
  property: fc.IProperty<Ts> | fc.IAsyncProperty<Ts>,
  parameters: fc.Parameters<Ts>,
): void | Promise<void> {
  const started = performance.now();
  const report = (details: fc.RunDetails<Ts>): void => {
    if (details.failed) {
      const cause = details.errorInstance instanceof Error ? `\n${details.errorInstance.stack}` : '';
      throw new Error(`${fc.defaultReportMessage(details)}${cause}`);
    }
    if (process.env.FUZZ_MS) {
      const seconds = ((performance.now() - started) / 1000).toFixed(0);
      console.log(`      ${details.numRuns} executions in ${seconds} s, seed ${details.seed}, no failure`);
    }
  };
  const details = fc.check(property as fc.IRawProperty<Ts>, parameters);
  return details instanceof Promise ? details.then(report) : report(details);
}

/** Runs `act`; passes if it returns, or throws a TrellisError of one of `codes` (anything else is a bug). */
export function onlyTyped(act: () => unknown, codes: readonly ErrorCode[]): void {
  try {
    act();
  } catch (error) {
    if (!isTrellisError(error) || !codes.includes(error.code)) throw error;
  }
}
