/**
 * What a suite is. Each file in bench/suites exports `suite`; bench/run.ts finds them by file
 * name, runs the ones asked for, prints their rows and targets and writes their results file.
 * A suite treats its baselines (memcpy, a socket round trip, later Redis) as drivers of the same
 * workload and states every trellis number as a ratio to one of them, so that a result read on
 * a noisy 2-core machine still means something.
 *
 * To add a suite: bench/suites/NAME.ts exports `suite` (with name NAME); helpers only it uses go
 * in bench/suites/NAME/, scripts for its child processes in bench/children/ (each one calls
 * serveCommands and exports the type of its command table), shared drivers in bench/lib/.
 */
import type { AbContext } from './ab';
import type { Scope } from './scope';
import type { Summary } from './stats';
import type { Column } from './table';

export interface SuiteContext {
  /** Register daemons, children and temp files here; it is closed even when the suite throws. */
  readonly scope: Scope;
  /** Progress for the person watching (stderr, so the table on stdout stays clean). */
  log(message: string): void;
  /** `--key value` options from the command line (without the dashes); a suite reads the ones it knows. */
  readonly options: ReadonlyMap<string, string>;
}

/** One line of the results table. Durations are nanoseconds per operation. */
export interface Row {
  /** Groups rows under a heading: 'baseline', 'put', 'get', ... */
  section: string;
  operation: string;
  /** Bytes per operation, when the operation moves bytes; gives the size and GB/s columns. */
  bytes?: number;
  stats: Summary;
  /** Minor page faults per operation, inside the timed windows. */
  faultsPerOp?: number;
  /** Milliseconds of garbage collection inside the timed windows, over all samples. */
  gcMs?: number;
  /** The comparison that gives the number meaning, such as '0.92x memcpy' or '2.7 RT'. */
  versus?: string;
}

/** A goal from the issue: reported, never asserted. */
export interface TargetCheck {
  target: string;
  measured: string;
  met: boolean;
}

/** A table of a suite's own shape, for results that are not timings (sizes, counts, ratios). */
export interface ExtraTable {
  title: string;
  columns: Column[];
  rows: string[][];
}

export interface SuiteReport {
  rows: Row[];
  /** Printed after the timing table (which is left out when `rows` is empty). */
  tables?: ExtraTable[];
  targets: TargetCheck[];
  /** The targets are in one of `tables` already (with what they compare): the list of them is not printed. */
  targetsShownInTables?: boolean;
  /** Lines printed under the table: how things were measured, caveats. */
  notes: string[];
  /** Anything else worth keeping in the results file (raw samples, configuration). */
  data?: Record<string, unknown>;
}

export interface Suite {
  /** File name without .ts; what `npm run bench -- NAME` matches and results files start with. */
  readonly name: string;
  readonly title: string;
  run(context: SuiteContext): Promise<SuiteReport>;
  /**
   * The suite's A/B mode (`--ab REV_OR_DIR`, see ab.ts), when it has one: this tree against another
   * build, sample by sample. Its results go to bench/results/<name>-ab-<timestamp>.json.
   */
  runAb?(context: AbContext): Promise<SuiteReport>;
}
