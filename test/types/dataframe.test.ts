/**
 * The arrow layout, in process: every type arrow JS supports goes through planArrow, a msgpack
 * round trip of its layout, a copy of its buffers into one 64-byte-aligned "segment" (as the
 * store lays out blobs) and rebuildArrow, and must come back equal and built over that segment.
 */
import * as assert from 'node:assert/strict';
import {
  Binary,
  BinaryView,
  Bool,
  DateDay,
  DateMillisecond,
  Decimal,
  DenseUnion,
  Dictionary,
  DurationMicrosecond,
  DurationSecond,
  Field,
  FixedSizeBinary,
  FixedSizeList,
  Float16,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  Int8,
  IntervalDayTime,
  IntervalYearMonth,
  LargeBinary,
  LargeList,
  LargeUtf8,
  List,
  makeBuilder,
  makeData,
  Map_,
  Null,
  RecordBatch,
  Schema,
  SparseUnion,
  Struct,
  Table,
  TimeMillisecond,
  TimeNanosecond,
  TimestampMicrosecond,
  TimestampMillisecond,
  TimestampNanosecond,
  TimestampSecond,
  Uint16,
  Uint32,
  Uint64,
  Uint8,
  Utf8,
  Utf8View,
  Vector,
  vectorFromArray,
  type DataType,
} from 'apache-arrow';
import { planArrow, rebuildArrow, type ArrowLayout } from '../../src/types/arrow-layout';
import { storeArrow as store } from '../fixtures/arrow-store';
import { allBuffers, assertSameStructure, assertValuesEqual } from '../fixtures/arrow-compare';
import { generatedTable } from '../fixtures/arrow-tables';
import { expectThrows } from '../fixtures/trellis-errors';

function roundTrip<T extends Table | RecordBatch>(value: T): T {
  const { layout, views, segment } = store(value);
  const rebuilt = rebuildArrow(layout, views) as T;
  for (const buffer of allBuffers(rebuilt))
    assert.equal(buffer.buffer, segment, 'every buffer of the result is a view of the stored bytes');
  return rebuilt;
}

function assertRoundTrips(value: Table | RecordBatch): void {
  const rebuilt = roundTrip(value);
  assert.equal(rebuilt.constructor, value.constructor);
  assertValuesEqual(rebuilt, value);
  assertSameStructure(rebuilt, value);
}

/** A one-batch table of vectors of the given types. */
function tableOf(columns: Record<string, [DataType, unknown[]]>): Table {
  const vectors: Record<string, Vector> = {};
  for (const [name, [type, values]] of Object.entries(columns)) vectors[name] = vectorFromArray(values, type);
  return new Table(vectors);
}

function unionOf(type: DenseUnion | SparseUnion, values: unknown[]): Vector {
  // valueToChildTypeId is an option of union builders that the options type does not list.
  const options = {
    type,
    nullValues: [null],
    valueToChildTypeId: (_: unknown, value: unknown) => (typeof value === 'number' ? 0 : 1),
  };
  const builder = makeBuilder(options as Parameters<typeof makeBuilder>[0]);
  for (const value of values) builder.append(value);
  return builder.finish().toVector();
}

const ints = [1, null, -3, 0, 100, null, 7, 8, 9, 10];
const int64s = [1n, null, -(2n ** 63n), 2n ** 63n - 1n, 0n, null, 5n, 6n, 7n, 8n];
const uint64s = [1n, null, 2n ** 64n - 1n, 0n, 4n, null, 5n, 6n, 7n, 8n];
const strings = ['a', null, '', 'ünïcödé 漢字 🎉', 'a longer string of text', null, 'x', 'y', 'z', 'w'];
const bytes = [new Uint8Array([1, 2]), null, new Uint8Array(0), new Uint8Array([255]), new Uint8Array(20).fill(9)];
const item = (type: DataType) => new Field('item', type, true);

describe('arrow layout: planArrow and rebuildArrow', () => {
  it('round-trips integers of every width, signed and unsigned, with nulls', () => {
    assertRoundTrips(
      tableOf({
        i8: [new Int8(), ints],
        i16: [new Int16(), ints],
        i32: [new Int32(), ints],
        i64: [new Int64(), int64s],
        u8: [new Uint8(), ints.map((v) => (v === null ? null : Math.abs(v)))],
        u16: [new Uint16(), ints.map((v) => (v === null ? null : Math.abs(v)))],
        u32: [new Uint32(), [0, null, 2 ** 32 - 1, 3, 4, 5, 6, 7, 8, 9]],
        u64: [new Uint64(), uint64s],
      }),
    );
  });

  it('round-trips floats of every precision, including NaN, -0 and infinities', () => {
    const floats = [1.5, null, NaN, -0, Infinity, -Infinity, 1e-300, 3.25];
    assertRoundTrips(
      tableOf({
        f16: [new Float16(), [1.5, null, -2, 0.25]],
        f32: [new Float32(), floats],
        f64: [new Float64(), floats],
      }),
    );
  });

  it('round-trips utf8, large utf8, binary, large binary and fixed-size binary', () => {
    assertRoundTrips(tableOf({ utf8: [new Utf8(), strings], large: [new LargeUtf8(), strings] }));
    assertRoundTrips(
      tableOf({
        binary: [new Binary(), bytes],
        large: [new LargeBinary(), bytes],
        fixed: [
          new FixedSizeBinary(3),
          [new Uint8Array([1, 2, 3]), null, new Uint8Array([4, 5, 6]), new Uint8Array(3), null],
        ],
      }),
    );
  });

  it('round-trips bools, with nulls', () => {
    const bools = Array.from({ length: 37 }, (_, i) => (i % 5 === 0 ? null : i % 3 === 0));
    assertRoundTrips(tableOf({ flag: [new Bool(), bools], dense: [new Bool(), bools.map((b) => b ?? true)] }));
  });

  it('describes a schema of plain fields, which a reader builds without decoding, as decoding would', () => {
    const plain = tableOf({
      count: [new Uint32(), [1, null, 3]],
      price: [new Float64(), [1.5, 2, null]],
      big: [new Int64(), [1n, null, -1n]],
      flag: [new Bool(), [true, null, false]],
      name: [new Utf8(), ['a', null, 'c']],
      blob: [new LargeBinary(), [new Uint8Array([1]), null, new Uint8Array()]],
    });
    const { layout, views } = store(plain);
    assert.deepEqual(layout.fields, [
      ['count', 'Uint32', true],
      ['price', 'Float64', true],
      ['big', 'Int64', true],
      ['flag', 'Bool', true],
      ['name', 'Utf8', true],
      ['blob', 'LargeBinary', true],
    ]);
    const decoded = rebuildArrow({ ...layout, fields: undefined }, views);
    const built = rebuildArrow(layout, views);
    assert.deepStrictEqual(built.schema, decoded.schema, 'the same classes, nullability and (empty) metadata');
    assertValuesEqual(built, plain);
    // Malformed fields are not trusted: the schema is decoded instead.
    for (const fields of [{}, 'fields', [['count', 'Uint31', true]], [['count', 'Uint32']], [[1, 'Uint32', true]]]) {
      const rebuilt = rebuildArrow({ ...layout, fields } as unknown as ArrowLayout, views);
      assert.deepStrictEqual(rebuilt.schema, decoded.schema, JSON.stringify(fields));
    }
    // A schema holding anything more is only encoded.
    const withMetadata = new Table(new Schema(plain.schema.fields, new Map([['k', 'v']])), plain.batches);
    const timestamps = tableOf({ at: [new TimestampMillisecond(), [1, 2]] });
    const dictionaries = tableOf({ kind: [new Dictionary(new Utf8(), new Int32()), ['a', 'b']] });
    for (const table of [withMetadata, timestamps, dictionaries]) assert.equal(store(table).layout.fields, undefined);
  });

  it('keeps an undefined timezone undefined, so the rebuilt table concatenates with the original', () => {
    const table = tableOf({
      plain: [new TimestampMillisecond(), [1, 2]],
      zoned: [new TimestampMillisecond('UTC'), [3, 4]],
      nested: [new List(item(new TimestampSecond())), [[1000], []]],
    });
    const rebuilt = roundTrip(table);
    assert.equal((rebuilt.schema.fields[0].type as TimestampMillisecond).timezone, undefined);
    assert.equal((rebuilt.schema.fields[1].type as TimestampMillisecond).timezone, 'UTC');
    assert.equal(table.concat(rebuilt).numRows, 4);
  });

  it('round-trips dates, timestamps (every unit, with a timezone), times, durations, intervals and decimals', () => {
    const days = [new Date(0), null, new Date(Date.UTC(2024, 1, 29)), new Date(Date.UTC(1969, 6, 20))];
    assertRoundTrips(
      tableOf({
        day: [new DateDay(), days],
        ms: [new DateMillisecond(), [new Date(0), null, new Date(1_700_000_000_123), new Date(-5)]],
        tsS: [new TimestampSecond(), [1_700_000_000_000, null, 0, 5000]],
        tsMs: [new TimestampMillisecond('Europe/Paris'), [1_700_000_000_123, null, 0, -1]],
        tsUs: [new TimestampMicrosecond(), [1_700_000_000_123, null, 0, 1]],
        tsNs: [new TimestampNanosecond('UTC'), [1_700_000_000_123, null, 0, 2]],
        time: [new TimeMillisecond(), [1000, null, 86_399_999, 0]],
        timeNs: [new TimeNanosecond(), [1000n, null, 86_399_999_999_999n, 0n]],
        durS: [new DurationSecond(), [1n, null, -5n, 0n]],
        durUs: [new DurationMicrosecond(), [1000n, null, 2n ** 62n, 0n]],
        dayTime: [new IntervalDayTime(), [new Int32Array([1, 2]), null, new Int32Array([-3, 4]), new Int32Array(2)]],
        yearMonth: [new IntervalYearMonth(), [new Int32Array([14]), null, new Int32Array([-1]), new Int32Array([0])]],
        decimal: [
          new Decimal(2, 12, 128),
          [
            new Uint32Array([12345, 0, 0, 0]),
            null,
            new Uint32Array([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]),
            new Uint32Array(4),
          ],
        ],
      }),
    );
  });

  it('round-trips lists, large lists, fixed-size lists, structs and maps, nested and with nulls', () => {
    const struct = new Struct([
      new Field('a', new Int32(), true),
      new Field('b', new Utf8(), true),
      new Field('inner', new Struct([new Field('x', new Float64(), true)]), true),
    ]);
    const entries = new Field(
      'entries',
      new Struct([new Field('key', new Utf8(), false), new Field('value', new Int64(), true)]),
      false,
    );
    assertRoundTrips(
      tableOf({
        list: [new List(item(new Int32())), [[1, 2], null, [], [3, null, 4], [5]]],
        strings: [new List(item(new Utf8())), [['a', 'bb'], null, [], [null, 'ü'], ['z']]],
        large: [new LargeList(item(new Float64())), [[1.5], null, [], [2, 3, null], [4]]],
        fixed: [new FixedSizeList(2, item(new Int32())), [[1, 2], null, [3, null], [5, 6], [7, 8]]],
        nested: [new List(item(new List(item(new Int32())))), [[[1], [2, 3]], null, [[]], [null, [4]], []]],
        struct: [
          struct,
          [
            { a: 1, b: 'x', inner: { x: 1.5 } },
            null,
            { a: null, b: null, inner: null },
            { a: 4, b: 'y', inner: { x: null } },
            { a: 5, b: '', inner: { x: 2 } },
          ],
        ],
        map: [
          new Map_(entries),
          [
            new Map([['a', 1n]]),
            null,
            new Map(),
            new Map([
              ['b', null],
              ['c', 3n],
            ]),
            new Map([['d', 4n]]),
          ],
        ],
      }),
    );
  });

  it('round-trips dense and sparse unions', () => {
    const children = () => [new Field('i', new Int32(), true), new Field('s', new Utf8(), true)];
    const values = [1, 'a', null, 3, 'bcd', 'e', 7];
    assertRoundTrips(
      new Table({
        dense: unionOf(new DenseUnion([0, 1], children()), values),
        sparse: unionOf(new SparseUnion([0, 1], children()), values),
      }),
    );
  });

  it('round-trips the null type', () => {
    assertRoundTrips(tableOf({ nothing: [new Null(), [null, null, null]], i: [new Int32(), [1, 2, 3]] }));
  });

  it('round-trips Utf8View and BinaryView, variadic data buffers included', () => {
    const longBytes = new Uint8Array(40).fill(3);
    const table = tableOf({
      utf8: [
        new Utf8View(),
        ['short', null, 'a string longer than twelve bytes', '', 'another long string, also stored out of line'],
      ],
      binary: [new BinaryView(), [new Uint8Array([1]), null, longBytes, new Uint8Array(0), longBytes]],
    });
    assert.ok(table.getChild('utf8')!.data[0].variadicBuffers.length > 0, 'the test needs strings stored out of line');
    assertRoundTrips(table);
  });

  it('stores a dictionary once however many batches share it, and shares it again when rebuilt', () => {
    const table = generatedTable(1000, 5, 4);
    const { plan } = store(table);
    const dictionaryData = table.getChild('category')!.data[0].dictionary!.data[0];
    const dictionaryBytes = new Uint8Array(
      dictionaryData.values.buffer,
      dictionaryData.values.byteOffset,
      dictionaryData.values.byteLength,
    );
    assert.equal(plan.layout.dictionaries.length, 1);
    assert.equal(plan.buffers.filter((buffer) => Buffer.from(buffer).equals(dictionaryBytes)).length, 1);
    const rebuilt = roundTrip(table);
    const dictionaries = new Set(rebuilt.getChild('category')!.data.map((data) => data.dictionary));
    assert.equal(dictionaries.size, 1, 'all four batches share one dictionary Vector');
    assertValuesEqual(rebuilt, table);
    assertSameStructure(rebuilt, table);
  });

  it('round-trips dictionaries of every index width, nested in lists and structs, and with null indices', () => {
    const colours = ['red', 'green', null, 'red', 'blue', 'green', null];
    assertRoundTrips(
      tableOf({
        i8: [new Dictionary(new Utf8(), new Int8()), colours],
        u16: [new Dictionary(new Utf8(), new Uint16(), 42, true), colours],
        u32: [new Dictionary(new Float64(), new Uint32()), [1.5, 2.5, 1.5, null, 3, 3, 1.5]],
        listed: [
          new List(item(new Dictionary(new Utf8(), new Int32()))),
          [['a', 'b'], null, [], ['a'], ['c', null], ['b'], ['a']],
        ],
      }),
    );
  });

  it('round-trips sliced tables: every kind of column at offsets that do not start on a byte', () => {
    const base = tableOf({
      i64: [new Int64(), Array.from({ length: 40 }, (_, i) => (i % 7 === 0 ? null : BigInt(i) * 1000n))],
      s: [new Utf8(), Array.from({ length: 40 }, (_, i) => (i % 6 === 0 ? null : `s${i}`))],
      b: [new Bool(), Array.from({ length: 40 }, (_, i) => (i % 5 === 0 ? null : i % 2 === 0))],
      list: [new List(item(new Int32())), Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? null : [i, i + 1]))],
      fixed: [
        new FixedSizeList(2, item(new Int16())),
        Array.from({ length: 40 }, (_, i) => (i % 9 === 0 ? null : [i, -i])),
      ],
      struct: [
        new Struct([new Field('x', new Int32(), true)]),
        Array.from({ length: 40 }, (_, i) => (i % 8 === 3 ? null : { x: i })),
      ],
      dict: [
        new Dictionary(new Utf8(), new Int32()),
        Array.from({ length: 40 }, (_, i) => (i % 10 === 1 ? null : ['p', 'q', 'r'][i % 3])),
      ],
    });
    for (const [begin, end] of [
      [3, 17],
      [9, 40],
      [13, 13],
      [0, 1],
    ]) {
      const slice = base.slice(begin, end);
      assertRoundTrips(slice);
    }
    const { plan } = store(base.slice(9, 17));
    assert.ok(
      plan.layout.batches[0].node.children!.some((column) => (column.offset ?? 0) > 0),
      'the slice keeps a non-zero offset',
    );
  });

  it('round-trips several batches, each with its own length and custom metadata', () => {
    const first = tableOf({ n: [new Int32(), [1, 2, null]], s: [new Utf8(), ['a', null, 'c']] });
    const second = tableOf({ n: [new Int32(), [4]], s: [new Utf8(), ['d']] });
    const withMetadata = new RecordBatch(second.schema, second.batches[0].data, new Map([['part', '2']]));
    const table = new Table(first.schema, [...first.batches, withMetadata, ...first.batches]);
    const rebuilt = roundTrip(table);
    assert.deepEqual(
      rebuilt.batches.map((batch) => batch.numRows),
      [3, 1, 3],
    );
    assert.deepEqual([...rebuilt.batches[1].metadata], [['part', '2']]);
    assertValuesEqual(rebuilt, table);
    assertSameStructure(rebuilt, table);
  });

  it('round-trips schema metadata, field metadata (nested fields too) and dictionary ids', () => {
    const inner = new Field('x', new Int32(), true, new Map([['unit', 'metres']]));
    const schema = new Schema(
      [
        new Field(
          'id',
          new Int32(),
          false,
          new Map([
            ['role', 'key'],
            ['empty', ''],
          ]),
        ),
        new Field('point', new Struct([inner]), true, new Map([['kind', 'struct']])),
        new Field('tag', new Dictionary(new Utf8(), new Int32(), 1234), true),
      ],
      new Map([
        ['source', 'test'],
        ['ünïcödé', '漢字'],
      ]),
    );
    const table = new Table(schema, [
      new RecordBatch(
        schema,
        makeData({
          type: new Struct(schema.fields),
          length: 2,
          children: tableOf({
            id: [new Int32(), [1, 2]],
            point: [schema.fields[1].type, [{ x: 1 }, null]],
            tag: [schema.fields[2].type, ['a', null]],
          }).batches[0].data.children,
        }),
      ),
    ]);
    assertRoundTrips(table);
  });

  it('round-trips empty tables, tables with no batches and zero-length columns', () => {
    assertRoundTrips(new Table());
    const columns = {
      i: [new Int32(), []],
      s: [new Utf8(), []],
      l: [new List(item(new Int32())), []],
      d: [new Dictionary(new Utf8(), new Int32()), []],
    } as const;
    const vectors = Object.values(columns).map(([type, values]) => vectorFromArray([...values], type as DataType));
    const schema = new Schema(Object.keys(columns).map((name, i) => new Field(name, vectors[i].type, true)));
    const empty = new Table(schema, [
      new RecordBatch(
        schema,
        makeData({ type: new Struct(schema.fields), length: 0, children: vectors.map((v) => v.data[0]) }),
      ),
    ]);
    assert.equal(empty.numRows, 0);
    assertRoundTrips(empty);
    // Made this way, arrow puts the Vectors themselves where the batch's Data belong.
    const quirky = tableOf(columns as unknown as Record<string, [DataType, unknown[]]>);
    assertValuesEqual(roundTrip(quirky), quirky);
    const noBatches = new Table(empty.schema, []);
    const rebuilt = roundTrip(noBatches);
    assert.equal(rebuilt.batches.length, 0);
    assertValuesEqual(rebuilt, noBatches);
  });

  it('round-trips a RecordBatch as a RecordBatch, with its metadata', () => {
    const table = tableOf({ n: [new Int64(), [1n, null, 3n]], s: [new Utf8(), ['x', 'y', null]] });
    const batch = new RecordBatch(table.schema, table.batches[0].data, new Map([['batch', 'meta']]));
    const rebuilt = roundTrip(batch);
    assert.ok(rebuilt instanceof RecordBatch);
    assert.deepEqual([...rebuilt.metadata], [['batch', 'meta']]);
    assertValuesEqual(rebuilt, batch);
    assertSameStructure(rebuilt, batch);
    assertRoundTrips(table.batches[0].slice(1, 3));
  });

  it('stores a buffer that several columns share once', () => {
    const column = vectorFromArray([1.5, 2.5, null], new Float64());
    const table = new Table({ a: column, b: column });
    assert.equal(store(table).plan.buffers.length, store(new Table({ a: column })).plan.buffers.length);
    assertRoundTrips(table);
  });

  it('stores every empty buffer of a class once, as 0 bytes', () => {
    const { plan } = store(tableOf({ a: [new Int32(), [1, 2]], b: [new Float64(), [1, 2]], c: [new Int32(), []] }));
    const empty = plan.buffers
      .map((buffer, i) => [buffer.byteLength, plan.layout.bufferTypes[i]])
      .filter(([size]) => size === 0);
    assert.deepEqual(empty, [
      [0, 'Uint8Array'],
      [0, 'Int32Array'],
    ]);
  });

  it('copies a view that does not start on its element size, and still rebuilds the same table', () => {
    const table = tableOf({ big: [new Int64(), [1n, 2n, null]], f: [new Float64(), [0.5, null, 2]] });
    const { layout, views } = store(table);
    const shifted = views.map((view) => {
      const misaligned = Buffer.alloc(view.byteLength + 1).subarray(1);
      view.copy(misaligned);
      return misaligned;
    });
    assertValuesEqual(rebuildArrow(layout, shifted), table);
  });

  it('rebuilds a large table over its stored bytes, copying none of them (its speed is in bench/)', () => {
    // Rebuilding is O(1) per node only if no buffer is copied or scanned: every buffer of the
    // result must be a view of the segment. How long it takes is measured by the bench.
    const { layout, views, segment } = store(generatedTable(200_000, 1));
    const rebuilt = rebuildArrow(layout, views);
    assert.equal(rebuilt.numRows, 200_000);
    for (const buffer of allBuffers(rebuilt)) assert.equal(buffer.buffer, segment);
  });

  describe('errors', () => {
    const table = tableOf({ n: [new Int32(), [1, 2, 3]], l: [new List(item(new Int32())), [[1], [], null]] });

    it('planArrow refuses what is not an arrow Table or RecordBatch (InvalidArgument)', () => {
      expectThrows(
        () => planArrow({ schema: {} } as unknown as Table),
        'InvalidArgument',
        /expects an apache-arrow Table or RecordBatch, got an object \(Object\)/,
      );
    });

    it('rebuildArrow refuses layouts that do not fit their buffers (TypeMismatch)', () => {
      const { layout, views } = store(table);
      const edited = (edit: (copy: ArrowLayout) => void): ArrowLayout => {
        const copy = structuredClone(layout);
        edit(copy);
        return copy;
      };
      expectThrows(
        () =>
          rebuildArrow(
            edited((l) => delete (l as Partial<ArrowLayout>).batches),
            views,
          ),
        'TypeMismatch',
        /needs a schema string and bufferTypes, batches and dictionaries arrays/,
      );
      // Found by the dataframe-layout fuzz target: a bool column pointed at an int64 column's
      // values read them as a BigInt64Array bitmap, a bare TypeError on the first row.
      const mixed = store(tableOf({ flag: [new Bool(), [true, false]], big: [new Int64(), [1n, 2n]] }));
      const [flag, big] = mixed.layout.batches[0].node.children!;
      const pointed = structuredClone(mixed.layout);
      pointed.batches[0].node.children![0].buffers[1] = big.buffers[1];
      assert.notEqual(flag.buffers[1], big.buffers[1]);
      expectThrows(
        () => rebuildArrow(pointed, mixed.views),
        'TypeMismatch',
        /batch 0\.flag \(Bool, 2 rows\) has a BigInt64Array values bitmap, not a Uint8Array/,
      );
      // Found by the fuzz target too: a dictionary column over an empty dictionary read missing buffers.
      const coded = store(generatedTable(10, 1, 1));
      const emptied = structuredClone(coded.layout);
      emptied.dictionaries = emptied.dictionaries.map(() => []);
      expectThrows(
        () => rebuildArrow(emptied, coded.views),
        'TypeMismatch',
        /batch 0\.category .* has rows that are not null but its dictionary is empty/,
      );
      // Found by the dataframe-layout fuzz target: a non-list here was a bare TypeError (join).
      expectThrows(
        () =>
          rebuildArrow(
            edited((l) => (l.unsetTimezones = {} as unknown as number[])),
            views,
          ),
        'TypeMismatch',
        /unsetTimezones is .* not a list of type numbers/,
      );
      expectThrows(
        () =>
          rebuildArrow(
            edited((l) => (l.version = 99)),
            views,
          ),
        'TypeMismatch',
        /arrow layout version 99/,
      );
      expectThrows(
        () =>
          rebuildArrow(
            edited((l) => (l.kind = 'frame' as 'table')),
            views,
          ),
        'TypeMismatch',
        /kind frame/,
      );
      expectThrows(
        () => rebuildArrow(layout, views.slice(1)),
        'TypeMismatch',
        new RegExp(`lists ${views.length} buffers but ${views.length - 1} were given`),
      );
      expectThrows(
        () =>
          rebuildArrow(
            edited((l) => (l.bufferTypes[0] = 'Function')),
            views,
          ),
        'TypeMismatch',
        /buffer 0 the unknown class Function/,
      );
      const int32 = layout.bufferTypes.indexOf('Int32Array');
      const oddViews = views.map((view, i) => (i === int32 ? Buffer.alloc(view.byteLength + 1) : view));
      expectThrows(
        () => rebuildArrow(layout, oddViews),
        'TypeMismatch',
        new RegExp(`buffer ${int32} of the arrow layout is a Int32Array but holds \\d+ bytes, not a multiple of 4`),
      );
      expectThrows(
        () =>
          rebuildArrow(
            edited((l) => (l.schema = Buffer.from('not a schema').toString('base64'))),
            views,
          ),
        'TypeMismatch',
        /schema of an arrow layout/,
      );
      expectThrows(
        () =>
          rebuildArrow(
            edited((l) => l.batches[0].node.children![1].children!.pop()),
            views,
          ),
        'TypeMismatch',
        /batch 0\.\w+ \(List<Int32>\) has 0 children; its type has 1/,
      );
      expectThrows(
        () =>
          rebuildArrow(
            edited((l) => (l.batches[0].node.children![0].buffers[1] = 99)),
            views,
          ),
        'TypeMismatch',
        /refers to buffer 99 of/,
      );
      expectThrows(
        () =>
          rebuildArrow(
            edited((l) => (l.batches[0].node.children![0].buffers = [null])),
            views,
          ),
        'TypeMismatch',
        /batch 0\.\w+ \(Int32\) is a malformed node/,
      );
      expectThrows(
        () =>
          rebuildArrow(
            edited((l) => ((l.kind = 'batch'), l.batches.push(l.batches[0]))),
            views,
          ),
        'TypeMismatch',
        /a RecordBatch layout holds 2 batches, not 1/,
      );
    });
  });
});
