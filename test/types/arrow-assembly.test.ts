/**
 * A RecordBatch and a Table put together around their constructors (src/types/arrow-layout.ts, rebuildArrow)
 * must be what the constructors make of the same schema and Data, for the apache-arrow version
 * installed: the same fields in the same order, equal schemas, Data and offsets, the same IPC
 * bytes and the same answers to arrow's own operations. Anything else goes through the
 * constructors.
 */
import * as assert from 'node:assert/strict';
import {
  Binary,
  Bool,
  Data,
  Field,
  FixedSizeBinary,
  Float,
  Float64,
  Int,
  Int32,
  LargeBinary,
  LargeUtf8,
  List,
  makeData,
  Message,
  Null,
  Precision,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableFromArrays,
  tableToIPC,
  Utf8,
  util,
  vectorFromArray,
  type DataType,
} from 'apache-arrow';
import {
  assembleRecordBatch,
  assembleTable,
  PLAIN_TYPE_NAMES,
  plainType,
  rebuildArrow,
  type PlainTypeName,
} from '../../src/types/arrow-layout';
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

/** Each plain type as arrow's IPC decoder makes it (decodeFieldType). */
const CONSTRUCTED_PLAIN_TYPES: Record<PlainTypeName, () => DataType> = {
  Int8: () => new Int(true, 8),
  Int16: () => new Int(true, 16),
  Int32: () => new Int(true, 32),
  Int64: () => new Int(true, 64),
  Uint8: () => new Int(false, 8),
  Uint16: () => new Int(false, 16),
  Uint32: () => new Int(false, 32),
  Uint64: () => new Int(false, 64),
  Float16: () => new Float(Precision.HALF),
  Float32: () => new Float(Precision.SINGLE),
  Float64: () => new Float(Precision.DOUBLE),
  Bool: () => new Bool(),
  Utf8: () => new Utf8(),
  Binary: () => new Binary(),
  LargeUtf8: () => new LargeUtf8(),
  LargeBinary: () => new LargeBinary(),
};

/** The same class and the same own fields, in the same order, each the same value (===). */
function assertSameObject(actual: object, expected: object, where: string): void {
  assert.equal(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected), `${where}: class`);
  assert.deepEqual(Object.keys(actual), Object.keys(expected), `${where}: fields`);
  for (const key of Object.keys(expected))
    assert.equal(
      (actual as Record<string, unknown>)[key],
      (expected as Record<string, unknown>)[key],
      `${where}: ${key}`,
    );
}

/**
 * Every Schema, Field, Struct type and Data of a rebuilt value against what the constructors make
 * of the same arguments (rebuildArrow makes them without the constructors where it can).
 */
function assertMadeAsConstructed(value: Table | RecordBatch): void {
  const { schema } = value;
  assertSameObject(
    schema,
    new Schema(schema.fields, schema.metadata, schema.dictionaries, schema.metadataVersion),
    'schema',
  );
  for (const field of schema.fields)
    assertSameObject(field, new Field(field.name, field.type, field.nullable, field.metadata), `field ${field.name}`);
  const batches = value instanceof Table ? value.batches : [value];
  const visit = (data: Data, where: string): void => {
    const nullCount = (data as unknown as { _nullCount: number })._nullCount;
    const given = [data.valueOffsets, data.values, data.nullBitmap, data.typeIds] as unknown as Data['buffers'];
    const expected = new Data(
      data.type,
      data.offset,
      data.length,
      nullCount,
      given,
      data.children,
      data.dictionary,
      data.variadicBuffers,
    );
    assertSameObject(data, expected, where);
    data.children.forEach((child, i) => visit(child, `${where}.${i}`));
  };
  batches.forEach((batch, i) => {
    assertSameObject(batch.data.type, new Struct(batch.data.type.children), `batch ${i} type`);
    visit(batch.data, `batch ${i}`);
  });
}

/** The same class and fields in the same order, all the way down (Maps and arrays by their entries). */
function assertSameTree(actual: unknown, expected: unknown, where: string): void {
  if (typeof expected !== 'object' || expected === null || ArrayBuffer.isView(expected)) {
    assert.equal(actual, expected, where);
    return;
  }
  assert.ok(typeof actual === 'object' && actual !== null, `${where}: an object`);
  assert.equal(Object.getPrototypeOf(actual), Object.getPrototypeOf(expected), `${where}: class`);
  if (expected instanceof Map || Array.isArray(expected)) {
    const entries = (value: object) => [...(value as Map<unknown, unknown> | unknown[]).entries()];
    assert.equal(entries(actual).length, entries(expected).length, `${where}: entries`);
    entries(expected).forEach(([key, value], i) => {
      assert.equal(entries(actual)[i][0], key, `${where}: key ${i}`);
      assertSameTree(entries(actual)[i][1], value, `${where}[${String(key)}]`);
    });
    return;
  }
  assert.deepEqual(Object.keys(actual), Object.keys(expected), `${where}: fields`);
  for (const [key, value] of Object.entries(expected))
    assertSameTree((actual as Record<string, unknown>)[key], value, `${where}.${key}`);
}

describe('types/arrow-assembly', () => {
  it('makes every plain type as arrow makes it: the same class and fields', () => {
    for (const name of PLAIN_TYPE_NAMES) assertSameObject(plainType(name), CONSTRUCTED_PLAIN_TYPES[name](), name);
  });

  it('makes a plain schema from its fields as arrow decodes it from IPC', () => {
    const source = new Table({
      price: vectorFromArray(new Float64Array(4)),
      id: vectorFromArray(Int32Array.from([1, 2, 3, 4])),
      name: vectorFromArray(['a', 'b', 'c', 'd'], new Utf8()),
    });
    const { layout, views } = storeArrow(source);
    assert.ok(layout.fields, 'stored as plain fields too');
    const decoded = Message.decode(Buffer.from(layout.schema, 'base64')).header() as Schema;
    const table = rebuildArrow(layout, views) as Table;
    assertSameTree(table.schema, decoded, 'schema');
  });

  it('makes Schema, Field, Struct and Data as their constructors would, for every kind of node', () => {
    const plain = tableFromArrays({ price: new Float64Array(8), score: new Float64Array(8) });
    const listType = new List(new Field('item', new Int32(), true));
    const wide = new Table({
      fixed: vectorFromArray([Uint8Array.of(1, 2, 3), null, Uint8Array.of(4, 5, 6)], new FixedSizeBinary(3)),
      list: vectorFromArray([[1, 2], null, [3]], listType),
      nothing: vectorFromArray([null, null, null], new Null()),
      nested: vectorFromArray([{ a: 1 }, null, { a: 3 }], new Struct([new Field('a', new Int32(), true)])),
    });
    for (const source of [plain, generatedTable(50, 3, 2), wide]) {
      const { layout, views } = storeArrow(source);
      const table = rebuildArrow(layout, views) as Table;
      assertMadeAsConstructed(table);
      assertValuesEqual(table, source);
    }
    const batch = tableFromArrays({ id: Int32Array.from([1, 2]) }).batches[0];
    const stored = storeArrow(batch);
    assertMadeAsConstructed(rebuildArrow(stored.layout, stored.views) as RecordBatch);
  });

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
