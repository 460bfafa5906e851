/**
 * Type inference beyond the first rows: in a large file, rows sampled from ten places spread over
 * it widen a column's type, so a column that changes only late in the file still parses.
 */
import * as assert from 'node:assert/strict';
import { inferCsvSchema } from '../../src/io/csv/parse-file';
import { readTable, writeTemp } from '../fixtures/csv/read-table';

describe('csv: inference from spread samples', () => {
  it('widens columns whose values change after the first rows', async () => {
    const rows: string[] = [];
    for (let i = 0; i < 600_000; i++) {
      const late = i > 300_000;
      rows.push(`${i},${late ? i + 0.5 : i},${late && i % 1000 === 0 ? 'text' : i},${late ? '2024-01-02' : ''}`);
    }
    const file = writeTemp('late-types.csv', `id,num,mixed,day\n${rows.join('\n')}\n`);
    const schema = await inferCsvSchema(file);
    assert.deepEqual(
      schema.fields.map((field) => `${field.name}: ${field.type}`),
      ['id: Int64', 'num: Float64', 'mixed: Utf8', 'day: Date32<DAY>'],
    );
    const { result } = await readTable(file);
    assert.equal(result.rows, 600_000);
  });

  it('samples only the first rows when told to, and the whole file with Infinity', async () => {
    const rows = Array.from({ length: 50_000 }, (_, i) => (i === 49_999 ? '1.5' : String(i)));
    const file = writeTemp('tail.csv', `n\n${rows.join('\n')}\n`);
    assert.equal(String((await inferCsvSchema(file)).fields[0].type), 'Int64', 'a small file has no spread samples');
    assert.equal(String((await inferCsvSchema(file, { sampleRows: Infinity })).fields[0].type), 'Float64');
  });
});
