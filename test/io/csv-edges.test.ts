/**
 * Edge lists (.e) and vertex lists (.v): whitespace-separated, no header, '#' comments, against
 * the reference reader.
 */
import * as assert from 'node:assert/strict';
import { expectedRows, rowsOf } from '../fixtures/csv/reference';
import { describeSchema, readTable, writeTemp } from '../fixtures/csv/read-table';

const EDGE_REFERENCE = { whitespace: true, quote: null, comment: '#', header: false } as const;

describe('csv: edge and vertex lists', () => {
  it('reads src dst pairs as int64 columns named src and dst', async () => {
    const text = '# a graph\n1 2\n2 3\n3 1\n';
    const { table } = await readTable(writeTemp('graph.e', text));
    assert.deepEqual(describeSchema(table), ['src: Int64', 'dst: Int64']);
    assert.deepEqual(rowsOf(table), expectedRows(text, ['int64', 'int64'], EDGE_REFERENCE));
  });

  it('reads weights, with runs of spaces and tabs, leading and trailing blanks, CRLF and blank lines', async () => {
    const text = '1 2 0.5\n  2\t\t3   1.25  \r\n\n   \n3 1 2\n';
    const { table } = await readTable(writeTemp('weighted.e', text));
    assert.deepEqual(describeSchema(table), ['src: Int64', 'dst: Int64', 'weight: Float64']);
    assert.deepEqual(rowsOf(table), expectedRows(text, ['int64', 'int64', 'float64'], EDGE_REFERENCE));
  });

  it('names more weight columns weight_2, weight_3', async () => {
    const { table } = await readTable(writeTemp('multi.e', '1 2 0.5 7 x\n'));
    assert.deepEqual(describeSchema(table), [
      'src: Int64',
      'dst: Int64',
      'weight: Float64',
      'weight_2: Int64',
      'weight_3: Utf8',
    ]);
  });

  it('reads vertex lists as id (and value) columns', async () => {
    const ids = await readTable(writeTemp('graph.v', '1\n2\n# skipped\n3\n'));
    assert.deepEqual(describeSchema(ids.table), ['id: Int64']);
    assert.deepEqual(rowsOf(ids.table), [[1n], [2n], [3n]]);
    const values = await readTable(writeTemp('labels.v', '1 red\n2 blue\n'));
    assert.deepEqual(describeSchema(values.table), ['id: Int64', 'value: Utf8']);
  });

  it('reads string vertex names and takes given names and types', async () => {
    const text = 'alice bob 3\nbob carol 4\n';
    const { table } = await readTable(writeTemp('names.e', text), {
      columns: ['from', 'to', 'w'],
      columnTypes: { w: 'float64' },
    });
    assert.deepEqual(describeSchema(table), ['from: Utf8', 'to: Utf8', 'w: Float64']);
    assert.deepEqual(rowsOf(table), expectedRows(text, ['string', 'string', 'float64'], EDGE_REFERENCE));
  });

  it('reads a whitespace-separated file of any extension when asked', async () => {
    const text = 'a  b\n1  2\n';
    const { table } = await readTable(writeTemp('spaces.txt', text), { delimiter: 'whitespace' });
    assert.deepEqual(describeSchema(table), ['a: Int64', 'b: Int64']);
  });
});
