/**
 * Parallel parsing equals sequential parsing: the same batches over the same bytes, for a large
 * generated file (200 MiB by default, 1 GiB with TRELLIS_BIG_TESTS=1) and for files whose quoted
 * fields hold newlines, so that chunk cuts land inside quotes and chunks must be reparsed.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { assertSameStructure } from '../fixtures/arrow-compare';
import { generateCsv } from '../fixtures/csv/generate';
import { expectedRows, rowsOf } from '../fixtures/csv/reference';
import { readTable, writeTemp } from '../fixtures/csv/read-table';
import { tempPath } from '../fixtures/setup';

const MiB = 1024 * 1024;
const BIG_BYTES = process.env.TRELLIS_BIG_TESTS === '1' ? 1024 * MiB : 200 * MiB;

describe('csv: parallel parsing', () => {
  it(`parses a generated ${BIG_BYTES / MiB} MiB file on worker threads exactly as on one thread`, async function () {
    this.timeout((BIG_BYTES / MiB) * 1000);
    const file = tempPath('big.csv');
    const rows = generateCsv(file, { bytes: BIG_BYTES, quoting: true, nullEvery: 40 });
    try {
      const parallel = await readTable(file, { workers: 2 });
      const sequential = await readTable(file, { workers: 0 });
      assert.equal(parallel.result.rows, rows);
      assert.ok(parallel.result.batches > 10, `${parallel.result.batches} batches`);
      assert.equal(parallel.result.reparsedChunks, 0, 'no quoted newlines: no speculative chunk is wrong');
      assert.deepEqual(
        parallel.table.schema.fields.map((field) => `${field.name}: ${field.type}`),
        [
          'id: Int64',
          'user: Int64',
          'price: Float64',
          'score: Float64',
          'active: Bool',
          'day: Date32<DAY>',
          'name: Utf8',
          'note: Utf8',
        ],
      );
      assertSameStructure(parallel.table, sequential.table);
      const ids = parallel.table.getChild('id')!;
      assert.equal(ids.get(0), 0n);
      assert.equal(ids.get(rows - 1), BigInt(rows - 1), 'rows arrive in file order');
    } finally {
      fs.rmSync(file, { force: true });
    }
  });

  it('reparses chunks whose cut lands inside a quoted field, and still equals the reference', async () => {
    const file = tempPath('quoted-newlines.csv');
    generateCsv(file, { bytes: 2 * MiB, quoting: true, newlinesInQuotes: true, nullEvery: 10 });
    const parallel = await readTable(file, { workers: 2, chunkBytes: 16 * 1024 });
    const sequential = await readTable(file, { workers: 0, chunkBytes: 16 * 1024 });
    assert.ok(parallel.result.reparsedChunks > 0, 'some cuts landed inside quoted fields');
    assertSameStructure(parallel.table, sequential.table);
    const whole = await readTable(file, { workers: 0 });
    assert.deepEqual(rowsOf(parallel.table), rowsOf(whole.table));
    const text = fs.readFileSync(file, 'utf8');
    assert.deepEqual(
      rowsOf(whole.table),
      expectedRows(text, ['int64', 'int64', 'float64', 'float64', 'bool', 'date', 'string', 'string']),
    );
  });

  it('handles rows longer than a chunk, and quoted fields spanning several chunks', async () => {
    const long = 'x'.repeat(50_000);
    const lines = [
      'a,b',
      `1,${long}`,
      `2,"${long}\n${long},""${long}"""`,
      '3,short',
      `4,"${'\n'.repeat(20_000)}"`,
      '5,end',
    ];
    const text = `${lines.join('\n')}\n`;
    const file = writeTemp('long-rows.csv', text);
    for (const workers of [0, 2]) {
      const { table } = await readTable(file, { workers, chunkBytes: 4096 });
      assert.deepEqual(rowsOf(table), expectedRows(text, ['int64', 'string']), `workers: ${workers}`);
    }
  });

  it('cuts anywhere: every chunk size from 4 KiB gives the same rows', async () => {
    const lines = Array.from({ length: 3000 }, (_, i) =>
      i % 7 === 0 ? `${i},"multi\r\nline, ${i}"` : `${i},plain ${i}`,
    );
    const text = `id,text\r\n${lines.join('\r\n')}\r\n`;
    const file = writeTemp('cuts.csv', text);
    const expected = expectedRows(text, ['int64', 'string']);
    for (const chunkBytes of [4096, 4097, 5000, 8191]) {
      const { table } = await readTable(file, { workers: 2, chunkBytes });
      assert.deepEqual(rowsOf(table), expected, `chunkBytes ${chunkBytes}`);
    }
  });
});
