/**
 * A RecordBatch and a Table put together around their constructors (src/types/arrow-layout.ts, rebuildArrow)
 * must be what the constructors make of the same schema and Data, for the apache-arrow version
 * installed: the same fields in the same order, equal schemas, Data and offsets, the same IPC
 * bytes and the same answers to arrow's own operations. Anything else goes through the
 * constructors.
 */
import * as assert from 'node:assert/strict';
import {
  Data,
  Field,
  Float64,
  Int32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableFromArrays,
  tableToIPC,
  util,
  vectorFromArray,
} from 'apache-arrow';
import { assembleRecordBatch, assembleTable, rebuildArrow } from '../../src/types/arrow-layout';
import { storeArrow } from '../fixtures/arrow-store';
import { assertSameData, assertSchemasEqual, assertValuesEqual } from '../fixtures/arrow-compare';
import { generatedTable } from '../fixtures/arrow-tables';

/** What the constructors make of an assembled table's own schema and batch Data. */
function constructed(table: Table): Table {
  const batches = table.batches.map((batch) => new RecordBatch(batch.schema, batch.data, batch.metadata));
  return new Table(table.schema, batches);
}

/** Field by field: the same own fields, in order, with equal values. */
function assertSameBatch(actual: RecordBatch, expected: RecordBatch, where: string): void {
  assert.equal(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected), `${where}: prototype`);
  assert.deepEqual(Object.keys(actual), Object.keys(expected), `${where}: fields`);
  assert.ok(RecordBatch.isRecordBatch(actual) && actual instanceof RecordBatch, `${where}: is a RecordBatch`);
  assertSchemasEqual(actual.schema, expected.schema);
  assert.deepEqual(Object.keys(actual.data), Object.keys(expected.data), `${where}: the batch node's fields`);
  assertSameData(actual.data, expected.data, where);
  assert.ok(util.compareTypes(actual.data.type, expected.data.type), `${where}: the batch node's type`);
  assert.deepEqual([...actual.metadata], [...expected.metadata], `${where}: metadata`);
  assert.equal(actual.numRows, expected.numRows, `${where}: numRows`);
  assert.equal(actual.nullCount, expected.nullCount, `${where}: nullCount`);
}

function assertSameTable(actual: Table, expected: Table): void {
  assert.equal(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected), 'prototype');
  assert.deepEqual(Object.keys(actual), Object.keys(expected), 'fields');
  assert.ok(Table.isTable(actual) && actual instanceof Table, 'is a Table');
  assertSchemasEqual(actual.schema, expected.schema);
  const offsets = (table: Table) => [...(table as unknown as { _offsets: Uint32Array })._offsets];
  assert.deepEqual(offsets(actual), offsets(expected), '_offsets');
  assert.equal(actual.batches.length, expected.batches.length, 'batches');
  actual.batches.forEach((batch, i) => assertSameBatch(batch, expected.batches[i], `batch ${i}`));
  assertValuesEqual(actual, expected);
  // arrow's own operations, which read the fields the constructors set.
  assert.deepEqual(Buffer.from(tableToIPC(actual)), Buffer.from(tableToIPC(expected)), 'IPC bytes');
  const rows = expected.numRows;
  assert.deepEqual(actual.slice(1, rows - 1).toArray(), expected.slice(1, rows - 1).toArray(), 'slice');
  assert.deepEqual(actual.concat(actual).toArray(), expected.concat(expected).toArray(), 'concat');
  assert.equal(actual.get(rows - 1)?.toString(), expected.get(rows - 1)?.toString(), 'last row');
  assert.equal(actual.nullCount, expected.nullCount, 'nullCount');
  const first = expected.schema.fields[0].name;
  assert.deepEqual(actual.select([first]).toArray(), expected.select([first]).toArray(), 'select');
}

describe('types/arrow-assembly', () => {
  it('rebuilds a plain table (two float64 columns) as the constructors would', () => {
    const rows = 1000;
    const price = Float64Array.from({ length: rows }, (_, i) => 100 + i / 8);
    const score = Float64Array.from({ length: rows }, (_, i) => i / rows);
    const source = tableFromArrays({ price, score });
    const { layout, views } = storeArrow(source);
    assert.ok(layout.fields, 'a plain schema is stored as fields too');
    const table = rebuildArrow(layout, views) as Table;
    assert.equal(table.batches[0].schema, table.schema, 'assembled: the batch shares the table schema');
    assert.deepEqual(
      table.schema.fields.map((field) => field.nullable),
      source.schema.fields.map((field) => field.nullable),
      'nullability kept',
    );
    assertValuesEqual(table, source);
    assertSameTable(table, constructed(table));
  });

  it('rebuilds tables of many batches, nulls, a shared dictionary and metadata as the constructors would', () => {
    const { layout, views } = storeArrow(generatedTable(300, 7, 4));
    const table = rebuildArrow(layout, views) as Table;
    assert.equal(table.batches.length, 4);
    assert.ok(
      table.batches.every((batch) => batch.schema === table.schema),
      'assembled: every batch shares the table schema',
    );
    assertSameTable(table, constructed(table));
    assert.ok(table.getChild('category')!.data[0].dictionary, 'the dictionary column keeps its dictionary');
  });

  it('rebuilds a RecordBatch with metadata as the constructor would', () => {
    const source = tableFromArrays({ id: Int32Array.from([1, 2, 3]) }).batches[0];
    const withMetadata = new RecordBatch(source.schema, source.data, new Map([['origin', 'test']]));
    const { layout, views } = storeArrow(withMetadata);
    const batch = rebuildArrow(layout, views) as RecordBatch;
    assertSameBatch(batch, new RecordBatch(batch.schema, batch.data, batch.metadata), 'batch');
    assert.deepEqual([...batch.metadata], [['origin', 'test']]);
  });

  it('rebuilds a table of no batches as the constructor would', () => {
    const schema = new Schema([new Field('x', new Int32(), true)]);
    const { layout, views } = storeArrow(new Table(schema));
    const table = rebuildArrow(layout, views) as Table;
    const expected = new Table(table.schema, []);
    assert.deepEqual(Object.keys(table), Object.keys(expected));
    assert.deepEqual([...(table as unknown as { _offsets: Uint32Array })._offsets], [0]);
    assert.equal(table.numRows, 0);
  });

  it('leaves to the constructor a batch node it would re-make: nulls, an offset, a short column, an unknown null count', () => {
    const x = vectorFromArray([1, 2, 3, 4], new Float64()).data[0];
    const fields = [new Field('x', new Float64(), true)];
    const schema = new Schema(fields);
    const withNulls = new Data(new Struct(fields), 0, 4, 1, [undefined, undefined, Uint8Array.of(0b1110)], [x]);
    const withOffset = new Data(new Struct(fields), 1, 3, 0, [undefined, undefined, undefined], [x.slice(1, 3)]);
    const unknownNulls = new Data(new Struct(fields), 0, 4, -1, [undefined, undefined, undefined], [x]);
    const short = makeData({ type: new Struct(fields), length: 6, children: [x], nullCount: 0 });
    for (const [what, data] of [
      ['nulls', withNulls],
      ['an offset', withOffset],
      ['a short column', short],
      ['a null count not known yet', unknownNulls],
    ] as const) {
      const batch = assembleRecordBatch(schema, data, new Map());
      assert.notEqual(batch.data, data, `${what}: the constructor re-made the node`);
      assertSameBatch(batch, new RecordBatch(schema, data, new Map()), what);
    }
  });

  it('gives each rebuilt value a schema of its own: changing one changes no later one (as new RecordBatch did)', () => {
    const schema = new Schema(
      [new Field('id', new Int32(), true, new Map([['unit', 'none']]))],
      new Map([['origin', 'test']]),
    );
    const source = new Table(schema, [
      new RecordBatch(schema, tableFromArrays({ id: Int32Array.from([1, 2, 3]) }).batches[0].data),
    ]);
    for (const value of [source, source.batches[0]]) {
      const { layout, views } = storeArrow(value);
      const first = rebuildArrow(layout, views);
      first.schema.metadata.set('changed', 'by the first reader');
      first.schema.fields[0].metadata.set('changed', 'too');
      const second = rebuildArrow(layout, views);
      assert.deepEqual([...second.schema.metadata], [['origin', 'test']], 'schema metadata');
      assert.deepEqual([...second.schema.fields[0].metadata], [['unit', 'none']], 'field metadata');
      assertValuesEqual(second, value);
    }
  });

  it('leaves to the constructor batches that do not share the table schema', () => {
    const source = tableFromArrays({ id: Int32Array.from([1, 2, 3]) });
    const schema = new Schema(source.schema.fields);
    const table = assembleTable(schema, source.batches);
    assertSameTable(table, new Table(schema, source.batches));
  });
});
