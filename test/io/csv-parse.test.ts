/**
 * parseFile on small CSV and TSV files written by the test, each checked against the reference
 * reader in fixtures/csv/reference.ts: quoting, line endings, skipped lines, nulls, headers,
 * given and inferred types.
 */
import * as assert from 'node:assert/strict';
import { expectedRows, rowsOf, type ReferenceOptions, type ReferenceType } from '../fixtures/csv/reference';
import { describeSchema, readTable, writeTemp } from '../fixtures/csv/read-table';
import type { CsvReadOptions } from '../../src/io/csv/options';

/** Parses `text` as `name` and checks types and every value against the reference. */
async function check(
  name: string,
  text: string,
  types: ReferenceType[],
  options: CsvReadOptions = {},
  reference: ReferenceOptions & { header?: boolean } = {},
) {
  const file = writeTemp(name, text);
  const { table, result } = await readTable(file, options);
  const arrowTypes: Record<ReferenceType, string> = {
    int64: 'Int64',
    float64: 'Float64',
    bool: 'Bool',
    date: 'Date32<DAY>',
    string: 'Utf8',
  };
  assert.deepEqual(
    table.schema.fields.map((field) => String(field.type)),
    types.map((type) => arrowTypes[type]),
    'column types',
  );
  const expected = expectedRows(text, types, { header: options.header, nullValues: options.nullValues, ...reference });
  assert.deepEqual(rowsOf(table), expected);
  assert.equal(result.rows, expected.length);
  return table;
}

describe('csv: parsing', () => {
  it('infers int64, float64, bool, date and string columns', async () => {
    const table = await check(
      'types.csv',
      'i,f,b,d,s\n1,1.5,true,2024-01-31,x\n-22,2,FALSE,1969-12-31,y\n9007199254740993,-0.25e-3,True,2000-02-29,"z"\n',
      ['int64', 'float64', 'bool', 'date', 'string'],
    );
    assert.deepEqual(describeSchema(table), ['i: Int64', 'f: Float64', 'b: Bool', 'd: Date32<DAY>', 's: Utf8']);
    assert.equal(table.getChild('i')!.get(2), 9007199254740993n, 'int64 past 2^53 keeps every digit');
  });

  it('widens int to float64, and anything unreadable to string', async () => {
    await check('widen.csv', 'a,b,c,d\n1,1,true,2024-01-01\n2.5,x,1,2024-13-01\n', [
      'float64',
      'string',
      'string',
      'string',
    ]);
  });

  it('reads integers beyond int64 as float64, and keeps int64 extremes exact', async () => {
    await check('big.csv', 'a,b\n-9223372036854775808,99999999999999999999\n9223372036854775807,1\n', [
      'int64',
      'float64',
    ]);
  });

  it('reads float64 values exactly, including 17-digit and special ones', async () => {
    const values = [
      '0.1',
      '1e308',
      '-2.2250738585072014e-308',
      '61.106390692293644',
      '0.30000000000000004',
      '123456789012345678',
      'NaN',
      '-inf',
      'Infinity',
      '5e-324',
      ' 2.5 ',
    ];
    await check('floats.csv', `x\n${values.join('\n')}\n`, ['float64']);
  });

  it('handles quoted fields with delimiters, doubled quotes and newlines', async () => {
    const text = 'id,text\n1,"a,b"\n2,"say ""hi"""\n3,"two\nlines"\n4,"crlf\r\ninside"\n5,""\n6,""""\n';
    const table = await check('quoted.csv', text, ['int64', 'string']);
    assert.deepEqual(table.getChild('text')!.toArray(), ['a,b', 'say "hi"', 'two\nlines', 'crlf\r\ninside', '', '"']);
  });

  it('reads CRLF and LF line endings, and a last line without a newline', async () => {
    await check('crlf.csv', 'a,b\r\n1,x\r\n2,y\n3,z', ['int64', 'string']);
    await check('crlf-end.csv', 'a,b\r\n1,x\r\n', ['int64', 'string']);
  });

  it('keeps a lone CR inside a field', async () => {
    await check('lone-cr.csv', 'a,b\n1,x\ry\n', ['int64', 'string']);
  });

  it('skips empty lines and comment lines', async () => {
    const text = '# a comment before the header\na,b\n\n1,x\n# another\r\n\r\n2,y\n\n';
    await check('skip.csv', text, ['int64', 'string'], { comment: '#' }, { comment: '#' });
  });

  it('treats empty fields as null, and quoted empty strings as empty strings', async () => {
    const table = await check('nulls.csv', 'a,b,c,d\n1,,x,2024-01-01\n,2.5,,\n3,,"",\n', [
      'int64',
      'float64',
      'string',
      'date',
    ]);
    assert.deepEqual(table.getChild('c')!.toArray(), ['x', null, '']);
    assert.equal(table.getChild('a')!.nullCount, 1);
  });

  it('takes a list of null texts, checked before a value is read', async () => {
    const text = 'a,b,c\nNA,1.5,x\n-999,NA,NA\n3,-999,"NA"\n';
    const table = await check('na.csv', text, ['int64', 'float64', 'string'], { nullValues: ['NA', '-999'] });
    assert.deepEqual(rowsOf(table), [
      [null, 1.5, 'x'],
      [null, null, null],
      [3n, null, 'NA'],
    ]);
  });

  it('with nullValues not listing "", reads an empty string field as an empty string', async () => {
    const table = await check('empty-not-null.csv', 'a,b\n1,\n2,x\n', ['int64', 'string'], { nullValues: ['NULL'] });
    assert.deepEqual(table.getChild('b')!.toArray(), ['', 'x']);
  });

  it('makes a column with no values a string column', async () => {
    await check('all-null.csv', 'a,b\n1,\n2,\n', ['int64', 'string']);
  });

  it('reads files without a header, naming columns column_1, column_2, ...', async () => {
    const table = await check('noheader.csv', '1,x\n2,y\n', ['int64', 'string'], { header: false });
    assert.deepEqual(
      table.schema.fields.map((field) => field.name),
      ['column_1', 'column_2'],
    );
  });

  it('takes column names, with or without a header', async () => {
    const withHeader = await check('named.csv', 'a,b\n1,x\n', ['int64', 'string'], { columns: ['id', 'name'] });
    assert.deepEqual(
      withHeader.schema.fields.map((field) => field.name),
      ['id', 'name'],
    );
    const without = await check(
      'named-noheader.csv',
      '1,x\n',
      ['int64', 'string'],
      { header: false, columns: ['id', 'name'] },
      { header: false },
    );
    assert.deepEqual(
      without.schema.fields.map((field) => field.name),
      ['id', 'name'],
    );
  });

  it('makes repeated and empty header names unique', async () => {
    const table = await check('dups.csv', 'a,a,,a\n1,2,3,4\n', ['int64', 'int64', 'int64', 'int64']);
    assert.deepEqual(
      table.schema.fields.map((field) => field.name),
      ['a', 'a_1', 'column_3', 'a_2'],
    );
  });

  it('uses given column types by name or position instead of inferring', async () => {
    const text = 'zip,amount,flag\n01234,10,true\n98765,20,false\n';
    await check('given.csv', text, ['string', 'float64', 'string'], {
      columnTypes: { zip: 'string', amount: 'float64', flag: 'string' },
    });
    await check('given-array.csv', text, ['string', 'int64', 'bool'], { columnTypes: ['string'] });
  });

  it('reads TSV files by extension, and any single-byte delimiter', async () => {
    await check('data.tsv', 'a\tb\n1\tx,y\n2\t"q\tr"\n', ['int64', 'string'], {}, { delimiter: '\t' });
    await check('semi.csv', 'a;b\n1;x,y\n', ['int64', 'string'], { delimiter: ';' }, { delimiter: ';' });
  });

  it('reads quotes as ordinary bytes when quoting is off, and inside unquoted fields', async () => {
    await check('noquote.csv', 'a,b\n1,"x\n2,y"z\n', ['int64', 'string'], { quote: null }, { quote: null });
    await check('midquote.csv', 'a,b\n1,ab"c\n', ['int64', 'string']);
  });

  it('reads UTF-8 text as it is and skips a byte order mark', async () => {
    const table = await check('utf8.csv', '\ufeffname,n\ncafé,1\n"ñandú, 🦤",2\n', ['string', 'int64'], {}, {});
    assert.equal(table.schema.fields[0].name, 'name');
  });

  it('reads a header-only or empty file as no rows', async () => {
    const { table, result } = await readTable(writeTemp('header-only.csv', 'a,b\n'));
    assert.equal(result.rows, 0);
    assert.deepEqual(describeSchema(table), ['a: Utf8', 'b: Utf8']);
    const empty = await readTable(writeTemp('empty.csv', ''));
    assert.equal(empty.result.rows, 0);
    assert.equal(empty.table.schema.fields.length, 0);
  });

  it('calls onSchema before the first batch and progress after each', async () => {
    const events: string[] = [];
    const file = writeTemp(
      'events.csv',
      `a,b\n${Array.from({ length: 5000 }, (_, i) => `${i},row ${i}`).join('\n')}\n`,
    );
    let lastBytes = 0;
    await readTable(file, {
      chunkBytes: 8192,
      onSchema: (schema) => void events.push(`schema ${schema.fields.length}`),
      progress: ({ bytes, rows, totalBytes }) => {
        assert.ok(bytes > lastBytes && bytes <= totalBytes && rows > 0);
        lastBytes = bytes;
        events.push('progress');
      },
    });
    assert.equal(events[0], 'schema 2');
    assert.ok(events.length > 5);
    assert.equal(lastBytes, (await import('node:fs')).statSync(file).size);
  });
});
