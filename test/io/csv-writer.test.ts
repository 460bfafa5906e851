/**
 * writeCsv: quoting what needs it, nulls against empty strings, and round trips (write, then
 * parse, gives the same table) for CSV, TSV and edge lists.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  Bool,
  DateDay,
  Dictionary,
  Field,
  Float64,
  Int32,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { isTrellisError } from '../../src/errors';
import { writeCsv } from '../../src/io/csv-writer';
import { assertValuesEqual } from '../fixtures/arrow-compare';
import { generateCsv } from '../fixtures/csv/generate';
import { referenceRows } from '../fixtures/csv/reference';
import { readTable } from '../fixtures/csv/read-table';
import { tempPath } from '../fixtures/setup';

const DAY_MS = 86_400_000;

/** A batch with every column type the parser produces, nulls, and strings that need quoting. */
function sampleBatch(): RecordBatch {
  const fields = [
    new Field('id', new Int64(), true),
    new Field('x', new Float64(), true),
    new Field('ok', new Bool(), true),
    new Field('day', new DateDay(), true),
    new Field('text', new Utf8(), true),
  ];
  const columns = [
    vectorFromArray([1n, -9223372036854775808n, null, 9223372036854775807n, 5n, 6n], new Int64()),
    vectorFromArray([0.1, null, 1e300, -0, 3, 61.106390692293644], new Float64()),
    vectorFromArray([true, false, null, true, false, true], new Bool()),
    vectorFromArray([0, 19_000 * DAY_MS, null, -DAY_MS, 2 * DAY_MS, 3 * DAY_MS], new DateDay()),
    vectorFromArray(['plain', 'a,b', 'say "hi"', 'two\nlines', '', null], new Utf8()),
  ];
  const data = makeData({
    type: new Struct(fields),
    length: 6,
    nullCount: 0,
    children: columns.map((column) => column.data[0]),
  });
  return new RecordBatch(new Schema(fields), data);
}

describe('csv: writer', () => {
  it('quotes fields that need it and writes nulls as empty fields', async () => {
    const file = tempPath('out.csv');
    const result = await writeCsv(file, sampleBatch());
    assert.equal(result.rows, 6);
    const text = fs.readFileSync(file, 'utf8');
    assert.equal(result.bytes, Buffer.byteLength(text));
    const lines = text.split('\n');
    assert.equal(lines[0], 'id,x,ok,day,text');
    assert.equal(lines[1], '1,0.1,true,1970-01-01,plain');
    assert.equal(lines[2], '-9223372036854775808,,false,2022-01-08,"a,b"');
    assert.equal(lines[3], ',1e+300,,,"say ""hi"""');
    assert.equal(lines[4], '9223372036854775807,-0.0,true,1969-12-31,"two');
    assert.equal(lines[6], '5,3.0,false,1970-01-03,""', 'an empty string is quoted, so it does not read back as null');
    assert.equal(lines[7], '6,61.106390692293644,true,1970-01-04,');
    assert.equal(referenceRows(text).length, 7);
  });

  it('round trips: parsing what it wrote gives the same table', async () => {
    const batch = sampleBatch();
    for (const name of ['round.csv', 'round.tsv']) {
      const file = tempPath(name);
      await writeCsv(file, new Table([batch, batch]));
      const { table } = await readTable(file);
      assertValuesEqual(table, new Table([batch, batch]));
    }
  });

  it('round trips a generated file with quotes and newlines through parse, write, parse', async () => {
    const source = tempPath('generated.csv');
    generateCsv(source, { bytes: 1024 * 1024, quoting: true, newlinesInQuotes: true, nullEvery: 10 });
    const first = await readTable(source, { workers: 0, chunkBytes: 64 * 1024 });
    const copy = tempPath('copy.csv');
    await writeCsv(copy, first.batches);
    const second = await readTable(copy, { workers: 0 });
    assertValuesEqual(second.table, first.table);
  });

  it('writes other arrow types and sliced batches through the generic path', async () => {
    const table = new Table({
      small: vectorFromArray(Int32Array.from([1, -2, 3])),
      f32: vectorFromArray(Float32Array.from([0.5, 2, -1.25])),
      words: vectorFromArray(['a', 'b,c', 'a'], new Dictionary(new Utf8(), new Int32())),
    });
    const file = tempPath('generic.csv');
    await writeCsv(file, table.slice(1));
    assert.equal(fs.readFileSync(file, 'utf8'), 'small,f32,words\n-2,2.0,"b,c"\n3,-1.25,a\n');
  });

  it('writes edge lists separated by spaces without a header, from an async iterable', async () => {
    const file = tempPath('out.e');
    const { table } = await readTable(writeSource('in.e', '1 2 0.5\n2 3 1\n'));
    async function* batches() {
      yield* table.batches;
    }
    await writeCsv(file, batches());
    assert.equal(fs.readFileSync(file, 'utf8'), '1 2 0.5\n2 3 1.0\n');
    const again = await readTable(file);
    assertValuesEqual(again.table, table);
  });

  it('refuses values it cannot write unquoted, and leaves no file behind', async () => {
    const file = tempPath('bad.e');
    const { table } = await readTable(writeSource('names.csv', 'a,b\nx y,1\n'));
    await assert.rejects(writeCsv(file, table), (error: unknown) => {
      assert.ok(isTrellisError(error, 'InvalidArgument'));
      assert.equal(
        error.message,
        'cannot write "x y" without quoting (quote is null); choose a quote character or another delimiter',
      );
      return true;
    });
    assert.equal(fs.existsSync(file), false);
    assert.deepEqual(
      fs.readdirSync(path.dirname(file)).filter((name) => name.includes('partial')),
      [],
    );
  });

  it('throws IOError with the cause when the file cannot be written', async () => {
    const file = tempPath('no-such-dir/out.csv');
    await assert.rejects(writeCsv(file, sampleBatch()), (error: unknown) => {
      assert.ok(isTrellisError(error, 'IOError'));
      assert.match(error.message, new RegExp(`^cannot write ${file}: ENOENT`));
      assert.equal((error.cause as NodeJS.ErrnoException).code, 'ENOENT');
      return true;
    });
  });
});

function writeSource(name: string, text: string): string {
  const file = tempPath(name);
  fs.writeFileSync(file, text);
  return file;
}
