/**
 * parseFile against DuckDB's read_csv (through @duckdb/node-api, a dev dependency that ships its
 * engine in the npm package): the same column types inferred and the same values, for files
 * with quotes, doubled quotes, newlines in quotes, nulls, CRLF and tabs. Skipped when DuckDB
 * cannot be loaded. DuckDB is told `allow_quoted_nulls = false`, trellis's rule that a quoted
 * field is never null.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { generateCsv } from '../fixtures/csv/generate';
import { rowsOf } from '../fixtures/csv/reference';
import { readTable, writeTemp } from '../fixtures/csv/read-table';
import { tempPath } from '../fixtures/setup';

type DuckDB = typeof import('@duckdb/node-api');
type Connection = Awaited<ReturnType<Awaited<ReturnType<DuckDB['DuckDBInstance']['create']>>['connect']>>;

const DAY_MS = 86_400_000;
const DUCKDB_TYPES: Record<string, string> = {
  BIGINT: 'Int64',
  DOUBLE: 'Float64',
  BOOLEAN: 'Bool',
  DATE: 'Date32<DAY>',
  VARCHAR: 'Utf8',
};

function loadDuckDB(): DuckDB | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional: the test skips without it
    return require('@duckdb/node-api') as DuckDB;
  } catch {
    return undefined;
  }
}

/** DuckDB's view of the file: arrow type names, and rows as arrow would give them back. */
async function duckdbRead(
  connection: Connection,
  file: string,
  options = '',
): Promise<{ types: string[]; rows: unknown[][] }> {
  const reader = await connection.runAndReadAll(
    `select * from read_csv('${file}', allow_quoted_nulls = false${options})`,
  );
  const types = reader.columnTypes().map((type) => DUCKDB_TYPES[String(type)] ?? String(type));
  const rows = reader
    .getRows()
    .map((row) =>
      row.map((value) =>
        value !== null && typeof value === 'object' && 'days' in value
          ? Number((value as { days: number }).days) * DAY_MS
          : value,
      ),
    );
  return { types, rows };
}

describe('csv: against DuckDB read_csv', function () {
  let connection: Connection;

  before(async function () {
    const duckdb = loadDuckDB();
    if (!duckdb) return this.skip();
    const instance = await duckdb.DuckDBInstance.create(':memory:', { threads: '1' });
    connection = await instance.connect();
  });

  async function compare(file: string, duckdbOptions = '') {
    const ours = await readTable(file);
    const theirs = await duckdbRead(connection, file, duckdbOptions);
    assert.deepEqual(
      ours.table.schema.fields.map((field) => String(field.type)),
      theirs.types,
      'inferred types',
    );
    assert.deepEqual(rowsOf(ours.table), theirs.rows);
  }

  it('a generated file with quotes, doubled quotes, newlines in quotes and nulls', async () => {
    const file = tempPath('generated.csv');
    generateCsv(file, { bytes: 2 * 1024 * 1024, quoting: true, newlinesInQuotes: true, nullEvery: 20 });
    await compare(file);
    fs.rmSync(file);
  });

  it('a small file with every kind of field, CRLF line endings', async () => {
    const text =
      'id,price,ok,day,text\r\n1,1.5,true,2024-01-31,"a,b"\r\n2,,false,,"say ""hi"""\r\n3,-2e-3,true,1969-12-31,"x\r\ny"\r\n4,7,,2000-02-29,""\r\n';
    await compare(writeTemp('kinds.csv', text));
  });

  it('a TSV file', async () => {
    await compare(writeTemp('data.tsv', 'a\tb\tc\n1\tx y\t0.5\n2\t\t1e10\n'), ", delim = '\\t'");
  });
});
