/**
 * Malformed input gives a ParseError naming the file, the 1-based line (counting the header,
 * skipped lines and newlines inside quoted fields) and the column; unreadable files give an
 * IOError with the system error as cause; bad options give InvalidArgument.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { isTrellisError, type ErrorCode } from '../../src/errors';
import type { CsvReadOptions } from '../../src/io/csv/options';
import { readTable, writeTemp } from '../fixtures/csv/read-table';
import { tempPath } from '../fixtures/setup';
import { expectRejects } from '../fixtures/trellis-errors';

async function expectError(file: string, options: CsvReadOptions, code: ErrorCode, message: string | RegExp) {
  await expectRejects(readTable(file, options), code, message);
}

async function expectParseError(
  name: string,
  text: string,
  options: CsvReadOptions,
  where: string,
  message: string | RegExp,
) {
  const file = writeTemp(name, text);
  const expected =
    typeof message === 'string'
      ? `${file}: ${where}: ${message}`
      : new RegExp(`^${escape(`${file}: ${where}: `)}${message.source}`);
  await expectError(file, options, 'ParseError', expected);
  return file;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('csv: errors', () => {
  it('a row with too many fields', async () => {
    await expectParseError('many.csv', 'a,b\n1,2\n3,4,5\n', {}, 'line 3, column 3', 'the row has more than 2 fields');
  });

  it('a row with too few fields', async () => {
    await expectParseError(
      'few.csv',
      'a,b,c\n1,2,3\n1,2\n',
      {},
      'line 3, column 3 ("c")',
      'the row has 2 fields, expected 3',
    );
  });

  it('a value that does not fit a given type', async () => {
    await expectParseError(
      'given.csv',
      'a,b\n1,2\n2,oops\n',
      { columnTypes: { b: 'int64' } },
      'line 3, column 2 ("b")',
      '"oops" is not a valid int64 (the column is int64, as columnTypes says)',
    );
    await expectParseError(
      'date.csv',
      'd\n2024-02-30\n',
      { columnTypes: ['date'] },
      'line 2, column 1 ("d")',
      /"2024-02-30" is not a valid date/,
    );
    await expectParseError(
      'bool.csv',
      'b\ntrue\nyes\n',
      { columnTypes: ['bool'] },
      'line 3, column 1 ("b")',
      /"yes" is not a valid bool/,
    );
  });

  it('a value after the sample that does not fit the inferred type, which a whole-file sample avoids', async () => {
    const rows = Array.from({ length: 1000 }, (_, i) => String(i));
    rows[700] = '7.5';
    const text = `n\n${rows.join('\n')}\n`;
    const file = await expectParseError(
      'late.csv',
      text,
      { sampleRows: 10 },
      'line 702, column 1 ("n")',
      /"7.5" is not a valid int64 \(the column is int64, as inferred from a sample of rows; pass columnTypes \(or sampleRows: Infinity\)/,
    );
    const { table } = await readTable(file, { sampleRows: Infinity });
    assert.equal(String(table.schema.fields[0].type), 'Float64');
  });

  it('a quoted field that is never closed', async () => {
    await expectParseError(
      'open-quote.csv',
      'a,b\n1,x\n2,"abc\n3,y\n',
      {},
      'line 3, column 2 ("b")',
      'a quoted field starts here and is never closed',
    );
  });

  it('text after a closing quote', async () => {
    await expectParseError(
      'after-quote.csv',
      'a,b\n1,"x"y\n',
      {},
      'line 2, column 2 ("b")',
      "'y' follows a closing quote (expected a delimiter or the end of the line)",
    );
  });

  it('counts newlines inside quotes, blank lines and comments in line numbers', async () => {
    const text = '# comment\na,b\n1,"x\ny"\n\n# another\r\n2,3,4\n';
    await expectParseError('lines.csv', text, { comment: '#' }, 'line 7, column 3', 'the row has more than 2 fields');
  });

  it('gives the same error from worker threads, deep in the file', async () => {
    const lines = Array.from({ length: 60_000 }, (_, i) => `${i},"row ${i}\nsecond line"`);
    lines[45_000] = '45000,"bad" row';
    const text = `id,text\n${lines.join('\n')}\n`;
    const message = "' ' follows a closing quote (expected a delimiter or the end of the line)";
    const file = await expectParseError('deep.csv', text, { workers: 0 }, 'line 90002, column 2 ("text")', message);
    await expectError(
      file,
      { workers: 2, chunkBytes: 16 * 1024 },
      'ParseError',
      `${file}: line 90002, column 2 ("text"): ${message}`,
    );
  });

  it('an IOError with the system error as cause for a missing file or a directory', async () => {
    const missing = tempPath('missing.csv');
    await assert.rejects(readTable(missing), (error: unknown) => {
      assert.ok(isTrellisError(error, 'IOError'));
      assert.equal(error.message, `cannot read ${missing}: ENOENT: no such file or directory, open '${missing}'`);
      assert.equal((error.cause as NodeJS.ErrnoException).code, 'ENOENT');
      return true;
    });
    const directory = tempPath('dir.csv');
    fs.mkdirSync(directory);
    await expectError(directory, {}, 'IOError', `cannot read ${directory}: it is a directory`);
  });

  it('InvalidArgument for options that cannot work', async () => {
    const file = writeTemp('ok.csv', 'a,b\n1,2\n');
    await expectError(
      file,
      { delimiter: '::' },
      'InvalidArgument',
      'delimiter must be one single-byte character, got "::"',
    );
    await expectError(file, { delimiter: ',', quote: ',' }, 'InvalidArgument', 'delimiter and quote must differ');
    await expectError(
      file,
      { columnTypes: { c: 'int64' } },
      'InvalidArgument',
      'columnTypes names "c", but the columns are "a", "b"',
    );
    await expectError(
      file,
      { columnTypes: { a: 'integer' as never } },
      'InvalidArgument',
      'columnTypes gives "a" the type "integer"; expected one of int64, float64, bool, date, string',
    );
    await expectError(
      file,
      { columns: ['x'] },
      'InvalidArgument',
      `columns names 1 columns, but the header of ${file} has 2`,
    );
    await expectError(file, { workers: -1 }, 'InvalidArgument', 'workers must be a whole number >= 0, got -1');
  });
});
