/**
 * One CSV parser in its own process: trellis's parseFile, papaparse, csv-parse or DuckDB's
 * read_csv, each timed here from its first call to its last row. Every driver reads the same
 * file from the page cache and reports its row count, so the runner can check they agree.
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { generateCsv } from '../../test/fixtures/csv/generate';
import { collectGarbage, serveCommands } from '../lib/serve-commands';
import { loadDist } from '../lib/dist';

const { parseFile } = loadDist<typeof import('../../src/io/csv/parse-file')>('io/csv/parse-file');

export interface ParseTrial {
  ns: number;
  rows: number;
  /** User + system CPU time of this process (all threads), in milliseconds. */
  cpuMs: number;
}

async function timed(parse: () => Promise<number>): Promise<ParseTrial> {
  collectGarbage();
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const rows = await parse();
  const ns = (performance.now() - start) * 1e6;
  const cpu = process.cpuUsage(cpuBefore);
  return { ns, rows, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Streams the file through a Node stream parser and counts the rows it emits. */
function countStreamRows(
  file: string,
  start: (
    input: fs.ReadStream,
    onRows: (count: number) => void,
    onEnd: () => void,
    onError: (error: Error) => void,
  ) => void,
): Promise<number> {
  return new Promise((resolve, reject) => {
    let rows = 0;
    start(
      fs.createReadStream(file, { highWaterMark: 1 << 20 }),
      (count) => (rows += count),
      () => resolve(rows),
      reject,
    );
  });
}

const commands = {
  generate({ file, bytes }: { file: string; bytes: number }): number {
    return generateCsv(file, { bytes, quoting: true, nullEvery: 50 });
  },

  trellis({ file, workers }: { file: string; workers?: number }): Promise<ParseTrial> {
    return timed(async () => (await parseFile(file, { workers }, () => {})).rows);
  },

  papaparse({ file, typed }: { file: string; typed: boolean }): Promise<ParseTrial> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Papa = require('papaparse') as typeof import('papaparse');
    return timed(async () => {
      const rows = await countStreamRows(file, (input, onRows, onEnd, onError) => {
        Papa.parse(input, {
          dynamicTyping: typed,
          chunk: (results: { data: unknown[] }) => onRows(results.data.length),
          complete: onEnd,
          error: onError,
        });
      });
      return rows - 1; // papaparse counts the header as a row
    });
  },

  csvParse({ file }: { file: string }): Promise<ParseTrial> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { parse } = require('csv-parse') as typeof import('csv-parse');
    return timed(async () => {
      const rows = await countStreamRows(file, (input, onRows, onEnd, onError) => {
        input
          .pipe(parse({ from_line: 2 }))
          .on('data', () => onRows(1))
          .on('end', onEnd)
          .on('error', onError);
      });
      return rows;
    });
  },

  /**
   * read_csv into a DuckDB table: DuckDB's own columnar form (its arrow export needs an extension it
   * cannot download here).
   */
  async duckdb({ file, threads }: { file: string; threads: number }): Promise<ParseTrial> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { DuckDBInstance } = require('@duckdb/node-api') as typeof import('@duckdb/node-api');
    const instance = await DuckDBInstance.create(':memory:', { threads: String(threads) });
    const connection = await instance.connect();
    const trial = await timed(async () => {
      await connection.run(`create table t as select * from read_csv('${file}')`);
      return 0;
    });
    const count = await connection.runAndReadAll('select count(*) from t');
    return { ...trial, rows: Number(count.getRows()[0][0]) };
  },

  available(): Record<string, boolean> {
    const can = (name: string) => {
      try {
        require.resolve(name);
        return true;
      } catch {
        return false;
      }
    };
    return { papaparse: can('papaparse'), csvParse: can('csv-parse'), duckdb: can('@duckdb/node-api') };
  },
};

export type CsvParserCommands = typeof commands;

if (require.main === module) serveCommands(commands);
