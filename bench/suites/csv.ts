/**
 * csv: parsing a generated 1 GiB CSV (8 columns: two int64, two float64 of which one has 17
 * digits, bool, date, two strings, some quoted, 2% nulls) into typed columns, against
 * papaparse and csv-parse (strings only, which is less work than trellis does, and papaparse
 * with dynamicTyping) and DuckDB's read_csv. Each trial runs in a fresh process; every parser
 * reads the same file from the page cache and must report the same row count.
 *
 * The file is generated once per run inside the bench's temp folder and removed with it.
 */
import type { CsvParserCommands, ParseTrial } from '../children/csv-parser';
import { withChild } from '../lib/child';
import { formatBytes, formatRatio, GiB } from '../lib/format';
import { summarize } from '../lib/stats';
import type { Row, Suite, SuiteContext, SuiteReport, TargetCheck } from '../lib/suite';

const FILE_BYTES = Number(process.env.TRELLIS_BENCH_CSV_BYTES ?? GiB);
const TRELLIS_TRIALS = 3;
const DUCKDB_TRIALS = 2;

interface Driver {
  operation: string;
  trials: number;
  run(
    child: {
      call: <K extends keyof CsvParserCommands & string>(
        command: K,
        args: Parameters<CsvParserCommands[K]>[0],
      ) => Promise<Awaited<ReturnType<CsvParserCommands[K]>>>;
    },
    file: string,
  ): Promise<ParseTrial>;
}

const DRIVERS: Record<string, Driver> = {
  trellis: {
    operation: 'trellis parseFile, 2 workers',
    trials: TRELLIS_TRIALS,
    run: (child, file) => child.call('trellis', { file, workers: 2 }),
  },
  trellisOne: {
    operation: 'trellis parseFile, 1 worker',
    trials: 1,
    run: (child, file) => child.call('trellis', { file, workers: 1 }),
  },
  papaparse: {
    operation: 'papaparse (strings)',
    trials: 1,
    run: (child, file) => child.call('papaparse', { file, typed: false }),
  },
  papaparseTyped: {
    operation: 'papaparse dynamicTyping',
    trials: 1,
    run: (child, file) => child.call('papaparse', { file, typed: true }),
  },
  csvParse: { operation: 'csv-parse (strings)', trials: 1, run: (child, file) => child.call('csvParse', { file }) },
  duckdb: {
    operation: 'DuckDB read_csv, 2 threads',
    trials: DUCKDB_TRIALS,
    run: (child, file) => child.call('duckdb', { file, threads: 2 }),
  },
};

async function measure({ scope, log }: SuiteContext): Promise<SuiteReport> {
  const file = scope.path('bench.csv');
  log(`generating a ${formatBytes(FILE_BYTES)} CSV`);
  const rows = await withChild<CsvParserCommands, number>(scope, 'csv-parser.ts', [], {}, (child) =>
    child.call('generate', { file, bytes: FILE_BYTES }),
  );
  const available = await withChild<CsvParserCommands, Record<string, boolean>>(
    scope,
    'csv-parser.ts',
    [],
    {},
    (child) => child.call('available', undefined),
  );

  const results = new Map<string, ParseTrial[]>();
  const notes: string[] = [];
  for (const [name, driver] of Object.entries(DRIVERS)) {
    const needs = name.startsWith('papaparse')
      ? 'papaparse'
      : name === 'csvParse'
        ? 'csvParse'
        : name === 'duckdb'
          ? 'duckdb'
          : undefined;
    if (needs && !available[needs]) {
      notes.push(`${driver.operation}: not installed, skipped`);
      continue;
    }
    const trials: ParseTrial[] = [];
    for (let i = 0; i < driver.trials; i++) {
      log(`${driver.operation}: trial ${i + 1} of ${driver.trials}`);
      try {
        const trial = await withChild<CsvParserCommands, ParseTrial>(scope, 'csv-parser.ts', [], {}, (child) =>
          driver.run(child, file),
        );
        if (trial.rows !== rows)
          throw new Error(`${driver.operation} counted ${trial.rows} rows, the file has ${rows}`);
        trials.push(trial);
      } catch (error) {
        notes.push(`${driver.operation}: failed: ${(error as Error).message.split('\n')[0]}`);
        break;
      }
    }
    if (trials.length > 0) results.set(name, trials);
  }
  return report(rows, results, notes);
}

function report(rows: number, results: Map<string, ParseTrial[]>, notes: string[]): SuiteReport {
  const median = (name: string) => {
    const trials = results.get(name);
    return trials ? summarize(trials.map((trial) => trial.ns)).median : NaN;
  };
  const trellis = median('trellis');
  const tableRows: Row[] = [];
  for (const [name, trials] of results) {
    const stats = summarize(trials.map((trial) => trial.ns));
    const cpu = summarize(trials.map((trial) => trial.cpuMs)).median;
    const cores = `${(cpu / (stats.median / 1e6)).toFixed(2)} cores busy`;
    const versus =
      name === 'trellis'
        ? cores
        : name === 'trellisOne'
          ? `${cores}; 2 workers ${formatRatio(stats.median / trellis)} faster`
          : `trellis ${formatRatio(stats.median / trellis)} faster`;
    tableRows.push({
      section: name.startsWith('trellis') ? 'trellis' : 'baselines',
      operation: DRIVERS[name].operation,
      bytes: FILE_BYTES,
      stats,
      versus,
    });
  }
  const rate = (ns: number) => `${((FILE_BYTES / ns) * 1000).toFixed(0)} MB/s`;
  const targets: TargetCheck[] = [];
  for (const [name, goal, label] of [
    ['papaparse', 2, '>= 2x papaparse'],
    ['csvParse', 2, '>= 2x csv-parse'],
    ['duckdb', 1, 'match DuckDB read_csv'],
  ] as const) {
    const theirs = median(name);
    if (Number.isFinite(theirs) && Number.isFinite(trellis)) {
      targets.push({
        target: `parse 1 GiB ${label}`,
        measured: `${formatRatio(theirs / trellis)} (${rate(trellis)} vs ${rate(theirs)})`,
        met: theirs / trellis >= goal,
      });
    }
  }
  notes.push(
    `${rows.toLocaleString('en-US')} rows, ${formatBytes(FILE_BYTES)}; every parser reads from the page cache in a fresh process; times are wall clock from the first call to the last row`,
    'trellis builds typed arrow columns (int64, float64, bool, date32, utf8); papaparse and csv-parse (strings) only split fields into JS strings, dynamicTyping also converts numbers and booleans',
    'trellis runs from dist/ (the compiled package) here, its worker threads too',
    'DuckDB loads into its own table: its arrow export is an extension this machine cannot download',
  );
  return { rows: tableRows, targets, notes, data: { rows, trials: Object.fromEntries(results) } };
}

export const suite: Suite = {
  name: 'csv',
  title: 'parse a generated 1 GiB CSV into typed columns, against papaparse, csv-parse and DuckDB',
  run: measure,
};
