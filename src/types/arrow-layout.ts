/**
 * How an apache-arrow Table or RecordBatch is laid out in trellis: its buffers, stored as they
 * are, and a small msgpack-able description that puts them back together. This file is pure (no
 * client, no I/O) so that every arrow type can be round-tripped in a unit test.
 *
 * The description mirrors arrow JS's own `Data` tree, node for node, rather than an IPC record
 * batch: rebuilding is then one `new Data(...)` per node over views of the stored bytes, with no
 * per-row work and no copy, and whatever arrow JS can hold (slices, shared dictionaries, unions,
 * views) comes back exactly as it was.
 *
 *   ArrowLayout
 *     version      1; a reader refuses versions it does not know
 *     kind         'table' or 'batch': what rebuildArrow returns
 *     schema       base64 of an Arrow IPC Schema message (the flatbuffer, no framing): field
 *                  names, types, nullability, dictionary ids, and schema and field metadata,
 *                  in the one encoding every Arrow implementation already reads
 *     fields       optional, for a schema of flat fields of the plainest types (ints, floats,
 *                  bool, utf8, binary) and no metadata: [name, type, nullable] per field, from
 *                  which a reader builds the schema without decoding the flatbuffer (the first
 *                  decode in a process cost ~1 ms of a fresh reader's first get). `schema` is
 *                  still written and is what counts: a reader that finds `fields` malformed
 *                  decodes `schema`
 *     bufferTypes  the typed-array class of each stored buffer ('Int32Array', 'BigInt64Array',
 *                  ...), by index; the stored buffers are the `buffers` of planArrow, in order
 *     batches      one per record batch: { node, metadata? }, `node` being the batch's struct
 *                  node and `metadata` the batch's custom metadata as [key, value] pairs
 *     dictionaries the chunks of each dictionary, once however many nodes refer to it
 *     unsetTimezones  which Timestamp types (numbered depth-first through the schema) had an
 *                  undefined timezone, which IPC turns into null. Left as null, arrow's schema
 *                  comparison would tell the rebuilt table from the original, and concatenating
 *                  the two would throw
 *
 *   NodeLayout, one per arrow Data
 *     length, offset, nullCount   as in arrow JS (offset and nullCount are left out when 0).
 *                  As in arrow JS, `offset` indexes the validity bitmap and bool values; every
 *                  other buffer is stored already sliced, starting at the node's first element
 *     buffers      [valueOffsets, values, validity, typeIds]: a stored-buffer index, or null
 *                  when arrow JS has no such buffer for this node
 *     children     child nodes (struct fields, list values, union members), when any
 *     dictionary   index into `dictionaries`, for a dictionary-encoded node
 *     variadic     stored-buffer indexes of the data buffers of a Utf8View/BinaryView node
 *
 * Types come from the schema, not from the nodes: node i of a struct is read as field i's type.
 */
/*
 * What a get runs is imported from the apache-arrow modules that define it (through
 * arrow-modules.ts, which requires them by file), not from the package's index: each name read
 * from the index goes through two re-export getters (Arrow.dom.js, Arrow.js), which a process
 * that loaded apache-arrow itself compiles at their first call (~15 us a name, ~0.1 ms of a fresh
 * reader's first get). The modules are the index's own (the package exports them, "./*"), so the
 * classes are the same.
 */
import { Message, MessageHeader } from 'apache-arrow';
import type { DataType, Dictionary, Timestamp } from 'apache-arrow/type';
import {
  Binary,
  Bool,
  Data,
  Field,
  Float,
  Int,
  LargeBinary,
  LargeUtf8,
  MetadataVersion,
  Precision,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Type,
  Utf8,
  Vector,
} from './arrow-modules';
import { TrellisError } from '../errors';
import { isArrowRecordBatch, isArrowTable } from './arrow-brands';
import { checkArrowNode, checkBatchColumns, pathOf, type NodeShape, type Where } from './arrow-node-checks';

export const ARROW_LAYOUT_VERSION = 1;

export type ArrowKind = 'table' | 'batch';

export interface NodeLayout {
  length: number;
  offset?: number;
  nullCount?: number;
  buffers: Array<number | null>;
  children?: NodeLayout[];
  dictionary?: number;
  variadic?: number[];
}

export interface BatchLayout {
  node: NodeLayout;
  metadata?: Array<[string, string]>;
}

export interface ArrowLayout {
  version: number;
  kind: ArrowKind;
  schema: string;
  fields?: PlainField[];
  bufferTypes: string[];
  batches: BatchLayout[];
  dictionaries: NodeLayout[][];
  unsetTimezones?: number[];
}

/** [name, type, nullable]: a field of a plain schema (see `fields` above). */
export type PlainField = [string, PlainTypeName, boolean];

/**
 * The types a plain schema may hold, each made as arrow's IPC decoder makes it (decodeFieldType:
 * `new Int(true, 8)`, `new Float(Precision.DOUBLE)`, `new Utf8()`, ...), but without calling the
 * constructors (see "Assembly" below): the class and the fields its constructor sets, in order.
 */
const PLAIN_TYPES = {
  Int8: () => madeInt(true, 8),
  Int16: () => madeInt(true, 16),
  Int32: () => madeInt(true, 32),
  Int64: () => madeInt(true, 64),
  Uint8: () => madeInt(false, 8),
  Uint16: () => madeInt(false, 16),
  Uint32: () => madeInt(false, 32),
  Uint64: () => madeInt(false, 64),
  Float16: () => madeFloat(Precision.HALF),
  Float32: () => madeFloat(Precision.SINGLE),
  Float64: () => madeFloat(Precision.DOUBLE),
  Bool: () => madeType<Bool>(Bool.prototype, Type.Bool),
  Utf8: () => madeType<Utf8>(Utf8.prototype, Type.Utf8),
  Binary: () => madeType<Binary>(Binary.prototype, Type.Binary),
  LargeUtf8: () => madeType<LargeUtf8>(LargeUtf8.prototype, Type.LargeUtf8),
  LargeBinary: () => madeType<LargeBinary>(LargeBinary.prototype, Type.LargeBinary),
} as const satisfies Record<string, () => DataType>;

/** The name of every plain type (for tests: each is compared with what its constructor makes). */
export const PLAIN_TYPE_NAMES = Object.keys(PLAIN_TYPES) as PlainTypeName[];

/** A plain type by name, as schemaOfPlainFields makes it. */
export function plainType(name: PlainTypeName): DataType {
  return PLAIN_TYPES[name]();
}

export type PlainTypeName = keyof typeof PLAIN_TYPES;

export interface ArrowPlan {
  /** The bytes of every buffer to store, by stored-buffer index: views, not copies. */
  buffers: Uint8Array[];
  layout: ArrowLayout;
}

/** The classes a stored buffer may be viewed as; a layout naming anything else is refused. */
const TYPED_ARRAYS = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const;

type TypedArrayName = keyof typeof TYPED_ARRAYS;
type AnyTypedArray = InstanceType<(typeof TYPED_ARRAYS)[TypedArrayName]>;

/** The order of a node's `buffers`, which is arrow JS's BufferType order. */
const BUFFER_SLOTS = 4;

/** The buffers of a Table or RecordBatch and the layout that rebuilds it. Errors: InvalidArgument. */
export function planArrow(value: Table | RecordBatch): ArrowPlan {
  const planner = new ArrowPlanner();
  let kind: ArrowKind;
  let batches: RecordBatch[];
  if (isArrowTable(value)) {
    kind = 'table';
    batches = value.batches;
  } else if (isArrowRecordBatch(value)) {
    kind = 'batch';
    batches = [value];
  } else {
    throw new TrellisError(
      'InvalidArgument',
      `planArrow expects an apache-arrow Table or RecordBatch, got ${describe(value)}`,
    );
  }
  const layout: ArrowLayout = {
    version: ARROW_LAYOUT_VERSION,
    kind,
    schema: encodeSchema(value.schema),
    bufferTypes: planner.bufferTypes,
    batches: batches.map((batch) => planner.batch(batch)),
    dictionaries: planner.dictionaries,
  };
  const fields = plainFields(value.schema);
  if (fields) layout.fields = fields;
  const unsetTimezones = typesOf(value.schema).flatMap((type, index) =>
    type.typeId === Type.Timestamp && (type as Timestamp).timezone === undefined ? [index] : [],
  );
  if (unsetTimezones.length > 0) layout.unsetTimezones = unsetTimezones;
  return { buffers: planner.buffers, layout };
}

/** The schema as plain fields, or undefined when it holds anything else (see `fields` above). */
function plainFields(schema: Schema): PlainField[] | undefined {
  if (schema.metadata.size > 0) return undefined;
  const fields: PlainField[] = [];
  for (const field of schema.fields) {
    const name = plainTypeName(field.type);
    if (name === undefined || field.metadata.size > 0) return undefined;
    fields.push([field.name, name, field.nullable]);
  }
  return fields;
}

function plainTypeName(type: DataType): PlainTypeName | undefined {
  let name: string;
  if (type.typeId === Type.Int) {
    const int = type as Int;
    name = `${int.isSigned ? 'Int' : 'Uint'}${int.bitWidth}`;
  } else if (type.typeId === Type.Float) {
    name = `Float${{ [Precision.HALF]: 16, [Precision.SINGLE]: 32, [Precision.DOUBLE]: 64 }[(type as Float).precision]}`;
  } else {
    name = Type[type.typeId];
  }
  return Object.hasOwn(PLAIN_TYPES, name) ? (name as PlainTypeName) : undefined;
}

/** `fields` when they are well-formed plain fields, else undefined (the caller decodes `schema`). */
function validPlainFields(fields: unknown): PlainField[] | undefined {
  if (!Array.isArray(fields)) return undefined;
  const valid = fields.every(
    (field) =>
      Array.isArray(field) &&
      field.length === 3 &&
      typeof field[0] === 'string' &&
      typeof field[1] === 'string' &&
      Object.hasOwn(PLAIN_TYPES, field[1]) &&
      typeof field[2] === 'boolean',
  );
  return valid ? (fields as PlainField[]) : undefined;
}

/** The schema plain fields describe, made as arrow's IPC decoder makes it (see PLAIN_TYPES). */
function schemaOfPlainFields(fields: PlainField[]): Schema {
  const built = fields.map(([name, type, nullable]) => madeField(name, PLAIN_TYPES[type](), nullable, new Map()));
  return madeSchema(built, new Map(), new Map(), MetadataVersion.V5);
}

/** Walks arrow Data trees, numbering each distinct buffer and dictionary once. */
class ArrowPlanner {
  readonly buffers: Uint8Array[] = [];
  readonly bufferTypes: string[] = [];
  readonly dictionaries: NodeLayout[][] = [];
  /** Buffers already numbered, by their ArrayBuffer, then by class and byte range. */
  private readonly bufferIndex = new Map<ArrayBufferLike, Map<string, number>>();
  /** Empty buffers of each class share one index: they hold nothing to tell them apart. */
  private readonly emptyIndex = new Map<string, number>();
  private readonly dictionaryIndex = new Map<Vector, number>();

  batch(batch: RecordBatch): BatchLayout {
    const layout: BatchLayout = { node: this.node(batch.data) };
    if (batch.metadata.size > 0) layout.metadata = [...batch.metadata];
    return layout;
  }

  node(given: Data | Vector): NodeLayout {
    const data = asData(given);
    const node: NodeLayout = {
      length: data.length,
      buffers: [data.valueOffsets, data.values, data.nullBitmap, data.typeIds].map((buffer) => this.buffer(buffer)),
    };
    if (data.offset !== 0) node.offset = data.offset;
    const nullCount = data.nullCount;
    if (nullCount !== 0) node.nullCount = nullCount;
    if (data.children.length > 0) node.children = data.children.map((child) => this.node(child));
    if (data.dictionary) node.dictionary = this.dictionary(data.dictionary);
    if (data.variadicBuffers.length > 0) node.variadic = data.variadicBuffers.map((buffer) => this.buffer(buffer)!);
    return node;
  }

  private dictionary(vector: Vector): number {
    let index = this.dictionaryIndex.get(vector);
    if (index === undefined) {
      index = this.dictionaries.length;
      this.dictionaryIndex.set(vector, index);
      // Numbered before its chunks are walked, so the index is taken even if they nest.
      this.dictionaries.push([]);
      this.dictionaries[index] = vector.data.map((chunk) => this.node(chunk));
    }
    return index;
  }

  private buffer(view: unknown): number | null {
    if (view === undefined || view === null) return null;
    const type = typedArrayName(view);
    if (!type) throw new TrellisError('InvalidArgument', `an arrow buffer is ${describe(view)}, not a typed array`);
    const array = view as AnyTypedArray;
    if (array.byteLength === 0) return this.emptyBuffer(type);
    let ranges = this.bufferIndex.get(array.buffer);
    if (!ranges) this.bufferIndex.set(array.buffer, (ranges = new Map()));
    const key = `${type}:${array.byteOffset}:${array.byteLength}`;
    let index = ranges.get(key);
    if (index === undefined) {
      index = this.add(type, new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
      ranges.set(key, index);
    }
    return index;
  }

  private emptyBuffer(type: TypedArrayName): number {
    let index = this.emptyIndex.get(type);
    if (index === undefined) this.emptyIndex.set(type, (index = this.add(type, new Uint8Array(0))));
    return index;
  }

  private add(type: TypedArrayName, bytes: Uint8Array): number {
    this.buffers.push(bytes);
    this.bufferTypes.push(type);
    return this.buffers.length - 1;
  }
}

/**
 * `new Table({ name: vector })` over empty vectors puts the Vectors themselves where a batch's
 * Data children belong (an arrow quirk); a one-chunk Vector stands for its chunk.
 */
function asData(value: Data | Vector): Data {
  if (Data.isData(value)) return value;
  const chunks = (value as Vector | undefined)?.data;
  if (Array.isArray(chunks) && chunks.length === 1) return chunks[0];
  throw new TrellisError('InvalidArgument', `an arrow column holds ${describe(value)} where arrow Data belongs`);
}

/**
 * The Table or RecordBatch a layout describes, over `views` (one per stored buffer, in order).
 * Views are used as they are, never copied, when each starts at a multiple of its element size
 * (trellis blobs start 64-byte aligned); an unaligned view is copied, since a typed array cannot
 * be made over it. Errors: TypeMismatch (a layout or view that does not fit).
 */
export function rebuildArrow(layout: ArrowLayout, views: readonly Uint8Array[]): Table | RecordBatch {
  if (
    typeof layout !== 'object' ||
    layout === null ||
    typeof layout.schema !== 'string' ||
    !Array.isArray(layout.bufferTypes) ||
    !Array.isArray(layout.batches) ||
    !Array.isArray(layout.dictionaries)
  ) {
    throw mismatch('an arrow layout needs a schema string and bufferTypes, batches and dictionaries arrays');
  }
  if (layout.version !== ARROW_LAYOUT_VERSION) {
    throw mismatch(
      `arrow layout version ${shown(layout.version)} is not one this trellis reads (${ARROW_LAYOUT_VERSION})`,
    );
  }
  if (layout.kind !== 'table' && layout.kind !== 'batch')
    throw mismatch(`arrow layout kind ${shown(layout.kind)} is neither 'table' nor 'batch'`);
  if (views.length !== layout.bufferTypes.length) {
    throw mismatch(`arrow layout lists ${layout.bufferTypes.length} buffers but ${views.length} were given`);
  }
  if (layout.kind === 'batch' && layout.batches.length !== 1)
    throw mismatch(`a RecordBatch layout holds ${layout.batches.length} batches, not 1`);
  const schema = schemaOf(layout);
  const rebuilder = new ArrowRebuilder(
    layout,
    layout.bufferTypes.map((type, index) => typedView(type, views[index], index)),
  );
  const batchType = madeStruct(schema.fields);
  const batches = layout.batches.map((batch, i) => {
    const where = `batch ${i}`;
    if (typeof batch !== 'object' || batch === null)
      throw mismatch(`${where} of the arrow layout is ${describe(batch)}`);
    const data = rebuilder.node(batchType, batch.node, where) as Data<Struct>;
    checkBatchColumns(data.length, data.children, where);
    return assembleRecordBatch(schema, data, batchMetadata(batch.metadata, where));
  });
  return layout.kind === 'table' ? assembleTable(schema, batches) : batches[0];
}

/*
 * Assembly: a RecordBatch and a Table put together around their constructors, when the constructors
 * would change nothing. A fresh process that loaded apache-arrow before trellis (as a worker
 * handling Tables does) runs arrow's code uncompiled and uncached: its first `new RecordBatch`
 * cost ~0.75 ms and its first `new Table` ~0.45 ms of CPU, most of it compiling what they call
 * (makeData's visitor, Schema.assign, compareSchemas, the chunk helpers), about a quarter of a
 * fresh reader's first DataFrame get. For a batch trellis rebuilt itself, all of that re-makes
 * objects it already has:
 *
 * - `new RecordBatch(schema, data)` pads columns shorter than the batch with nulls, then copies
 *   the schema (Schema.assign) and re-makes the struct node with makeData, which keeps only its
 *   type, length and children (offset 0, no nulls, an empty validity bitmap). For a struct node
 *   already so, with every column as long as the batch (checkBatchColumns), the result is equal
 *   to the schema and node it was given: they are used as they are.
 * - `new Table(schema, batches)` checks every batch's schema against the table's
 *   (compareSchemas) and sums the batch lengths into `_offsets`. Batches that share the table's
 *   schema object pass the check; the offsets are summed here.
 *
 * What is set is what the constructors set, in their order (schema, data, _metadata; schema,
 * batches, _offsets); test/types/arrow-assembly.test.ts compares both ways field by field
 * for the apache-arrow version installed, so a version that sets more fails there. Anything not
 * plainly so goes through the constructors. (In this file rather than one of its own: connect()
 * loads this file when apache-arrow is loaded, and each module more cost it ~0.3 ms of CPU.)
 */

/** The fields `new RecordBatch` sets, in its order. */
interface BatchFields {
  schema: Schema;
  data: Data<Struct>;
  _metadata: Map<string, string>;
}

/** The fields `new Table` sets, in its order. */
interface TableFields {
  schema: Schema;
  batches: RecordBatch[];
  _offsets: Uint32Array;
}

/** The constructor-free objects are made only where this arrow reads them as its own instances. */
const ASSEMBLES =
  (RecordBatch.prototype as unknown as { _nullCount: number })._nullCount === -1 &&
  (Table.prototype as unknown as { _nullCount: number })._nullCount === -1;

/**
 * A struct node that `new RecordBatch` would re-make into one equal to it (see the top). Read
 * from the fields the Data constructor set: the nullCount getter is one more arrow function to
 * compile, and a count not known yet (-1) goes to the constructor anyway.
 */
function isPlainBatchNode(data: Data<Struct>): boolean {
  const nullCount = (data as unknown as { _nullCount: number })._nullCount;
  if (data.offset !== 0 || nullCount !== 0 || (data.nullBitmap !== undefined && data.nullBitmap.byteLength > 0))
    return false;
  for (const child of data.children) if (child.length !== data.length) return false;
  return true;
}

/** `new RecordBatch(schema, data, metadata)`, made without the constructor when it would change nothing. */
export function assembleRecordBatch(schema: Schema, data: Data<Struct>, metadata: Map<string, string>): RecordBatch {
  if (!ASSEMBLES || !isPlainBatchNode(data)) return new RecordBatch(schema, data, metadata);
  const batch = Object.create(RecordBatch.prototype) as BatchFields;
  batch.schema = schema;
  batch.data = data;
  batch._metadata = metadata;
  return batch as unknown as RecordBatch;
}

/** `new Table(schema, batches)`, made without the constructor when every batch shares the schema. */
export function assembleTable(schema: Schema, batches: RecordBatch[]): Table {
  if (!ASSEMBLES || !batches.every((batch) => batch.schema === schema)) return new Table(schema, batches);
  const offsets = new Uint32Array(batches.length + 1);
  for (let i = 0; i < batches.length; i++) offsets[i + 1] = offsets[i] + batches[i].data.length;
  const table = Object.create(Table.prototype) as TableFields;
  table.schema = schema;
  table.batches = batches;
  table._offsets = offsets;
  return table as unknown as Table;
}

/*
 * The same for the objects under a batch: Data, Field, Schema and the types. Their constructors
 * only store their arguments, but a process that loaded apache-arrow itself compiles each of them
 * (and what they call: strideForType, generateDictionaryMap) at their first call: with arrow's
 * re-export getters (see the imports), ~0.35 ms of a fresh reader's first get of a plain table. Each is made here as
 * its constructor makes it: its class's prototype, then the fields the constructor sets, in its
 * order, with the values it would compute (test/types/arrow-assembly.test.ts compares every one
 * with what the constructor makes). A Data whose stride is not 1 goes through the constructor.
 */

/** The fields `new Data` sets, in its order (the buffers only when given). */
interface DataFields {
  type: DataType;
  children: Data[];
  dictionary: Vector | undefined;
  offset: number;
  length: number;
  _nullCount: number;
  stride: number;
  valueOffsets?: ArrayBufferView;
  values?: ArrayBufferView;
  nullBitmap?: ArrayBufferView;
  typeIds?: ArrayBufferView;
  variadicBuffers: Uint8Array[];
}

/**
 * Type ids whose Data stride (arrow's strideForType) is 1: every type but those of fixed width
 * in units of their values (Decimal, Interval, FixedSizeBinary, FixedSizeList) and the view types.
 */
const STRIDE_ONE = new Set<Type>([
  Type.Null,
  Type.Int,
  Type.Float,
  Type.Binary,
  Type.LargeBinary,
  Type.Utf8,
  Type.LargeUtf8,
  Type.Bool,
  Type.Date,
  Type.Time,
  Type.Timestamp,
  Type.Duration,
  Type.List,
  Type.LargeList,
  Type.Struct,
  Type.Union,
  Type.Map,
  Type.Dictionary,
]);

/** `new Data(type, offset, length, nullCount, buffers, children, dictionary, variadic)`, without the constructor. */
function assembleData(
  type: DataType,
  shape: NodeShape,
  buffers: ReadonlyArray<ArrayBufferView | undefined>,
  children: Data[],
  dictionary: Vector | undefined,
  variadic: Uint8Array[],
): Data {
  if (!STRIDE_ONE.has(type.typeId)) {
    const given = buffers as unknown as Data['buffers'];
    return new Data(type, shape.offset, shape.length, shape.nullCount, given, children, dictionary, variadic);
  }
  const data = Object.create(Data.prototype) as DataFields;
  data.type = type;
  data.children = children;
  data.dictionary = dictionary;
  data.offset = Math.floor(Math.max(shape.offset || 0, 0));
  data.length = Math.floor(Math.max(shape.length || 0, 0));
  data._nullCount = Math.floor(Math.max(shape.nullCount || 0, -1));
  data.stride = 1;
  let buffer: ArrayBufferView | undefined;
  if ((buffer = buffers[0])) data.valueOffsets = buffer;
  if ((buffer = buffers[1])) data.values = buffer;
  if ((buffer = buffers[2])) data.nullBitmap = buffer;
  if ((buffer = buffers[3])) data.typeIds = buffer;
  data.variadicBuffers = variadic;
  return data as unknown as Data;
}

/** `new Field(name, type, nullable, metadata)`, without the constructor. */
function madeField(name: string, type: DataType, nullable: boolean, metadata: Map<string, string>): Field {
  const field = Object.create(Field.prototype) as { -readonly [K in keyof Field]: Field[K] };
  field.name = name;
  field.type = type;
  field.nullable = nullable;
  field.metadata = metadata;
  return field as Field;
}

/** `new Schema(fields, metadata, dictionaries, metadataVersion)`, without the constructor. */
function madeSchema(
  fields: Field[],
  metadata: Map<string, string>,
  dictionaries: Map<number, DataType>,
  metadataVersion: MetadataVersion,
): Schema {
  const schema = Object.create(Schema.prototype) as { -readonly [K in keyof Schema]: Schema[K] };
  schema.fields = fields;
  schema.metadata = metadata;
  schema.dictionaries = dictionaries;
  schema.metadataVersion = metadataVersion;
  return schema as Schema;
}

/** `new Struct(children)`, without the constructor. */
function madeStruct(children: Field[]): Struct {
  const type = madeType<Struct>(Struct.prototype, Type.Struct) as { children: Field[] };
  type.children = children;
  return type as unknown as Struct;
}

/** `new Int(isSigned, bitWidth)`, without the constructor. */
function madeInt(isSigned: boolean, bitWidth: number): Int {
  const type = madeType<Int>(Int.prototype, Type.Int) as { isSigned: boolean; bitWidth: number };
  type.isSigned = isSigned;
  type.bitWidth = bitWidth;
  return type as unknown as Int;
}

/** `new Float(precision)`, without the constructor. */
function madeFloat(precision: Precision): Float {
  const type = madeType<Float>(Float.prototype, Type.Float) as { precision: Precision };
  type.precision = precision;
  return type as unknown as Float;
}

/** A type of `prototype`'s class with its typeId set, as DataType's constructor sets it first. */
function madeType<T extends DataType>(prototype: object, typeId: Type): T {
  const type = Object.create(prototype) as { typeId: Type };
  type.typeId = typeId;
  return type as unknown as T;
}

class ArrowRebuilder {
  /** Each dictionary's Vector, made on first use and then shared, as it was when stored. */
  private readonly dictionaries: Array<Vector | undefined> = [];

  constructor(
    private readonly layout: ArrowLayout,
    private readonly arrays: AnyTypedArray[],
  ) {}

  /**
   * new Data rather than makeData: makeData fills in defaults for missing buffers and re-views
   * the ones given, where this must reproduce the stored node as it was, buffer for buffer.
   */
  node(type: DataType, node: NodeLayout, where: Where): Data {
    if (!node || typeof node !== 'object' || !Array.isArray(node.buffers) || node.buffers.length !== BUFFER_SLOTS) {
      throw mismatch(`${pathOf(where)} (${type}) is a malformed node`);
    }
    const shape = { length: node.length, offset: node.offset ?? 0, nullCount: node.nullCount ?? 0 };
    if (!isCount(shape.length) || !isCount(shape.offset) || !Number.isSafeInteger(shape.nullCount)) {
      throw mismatch(
        `${pathOf(where)} (${type}) has length ${shown(node.length)}, offset ${shown(node.offset)}, nullCount ${shown(node.nullCount)}`,
      );
    }
    const buffers = node.buffers.map((index) => (index === null ? undefined : this.array(index, where)));
    const isDictionary = type.typeId === Type.Dictionary;
    // A Dictionary type reports its value type's children; its own nodes have none.
    const childFields = isDictionary ? [] : (type.children ?? []);
    const children = node.children ?? [];
    if (!Array.isArray(children) || children.length !== childFields.length) {
      throw mismatch(
        `${pathOf(where)} (${type}) has ${describeCount(children)} children; its type has ${childFields.length}`,
      );
    }
    const childData = children.map((child, i) =>
      this.node(childFields[i].type, child, { parent: where, name: childFields[i].name }),
    );
    checkArrowNode(type, shape, buffers, childData, where);
    let dictionary: Vector | undefined;
    if (isDictionary) {
      if (node.dictionary === undefined) throw mismatch(`${pathOf(where)} (${type}) names no dictionary`);
      dictionary = this.dictionary((type as Dictionary).dictionary, node.dictionary, where);
      // Every index of a non-null row would be out of range: arrow JS reads an empty chunk's missing buffers.
      if (dictionary.length === 0 && shape.nullCount !== shape.length)
        throw mismatch(`${pathOf(where)} (${type}) has rows that are not null but its dictionary is empty`);
    }
    const variadic = node.variadic ?? [];
    if (!Array.isArray(variadic))
      throw mismatch(`${pathOf(where)} (${type}) has variadic buffers ${describe(variadic)}, not a list`);
    return assembleData(
      type,
      shape,
      buffers,
      childData,
      dictionary,
      variadic.map((index) => this.array(index, where) as Uint8Array),
    );
  }

  private dictionary(valueType: DataType, index: number, where: Where): Vector {
    const chunks = isIndex(index, this.layout.dictionaries.length) ? this.layout.dictionaries[index] : undefined;
    if (!Array.isArray(chunks))
      throw mismatch(`${pathOf(where)} refers to dictionary ${shown(index)} of ${this.layout.dictionaries.length}`);
    let vector = this.dictionaries[index];
    if (!vector) {
      // A Vector of no chunks would forget its type, so an empty dictionary gets one empty chunk.
      const data =
        chunks.length > 0
          ? chunks.map((chunk, i) => this.node(valueType, chunk, `dictionary ${index} chunk ${i}`))
          : [new Data(valueType, 0, 0, 0)];
      this.dictionaries[index] = vector = new Vector(data);
    } else if (vector.type.typeId !== valueType.typeId) {
      // Two columns may share a dictionary only if they agree on what it holds.
      throw mismatch(
        `${pathOf(where)} reads dictionary ${index} as ${valueType}; another column read it as ${vector.type}`,
      );
    }
    return vector;
  }

  private array(index: number, where: Where): AnyTypedArray {
    if (!isIndex(index, this.arrays.length))
      throw mismatch(`${pathOf(where)} refers to buffer ${shown(index)} of ${this.arrays.length}`);
    return this.arrays[index];
  }
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isIndex(value: unknown, length: number): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) < length;
}

function describeCount(value: unknown): string {
  return Array.isArray(value) ? String(value.length) : describe(value);
}

/** A batch's custom metadata: [key, value] string pairs. */
function batchMetadata(pairs: unknown, where: string): Map<string, string> {
  if (pairs === undefined) return new Map();
  const valid =
    Array.isArray(pairs) &&
    pairs.every((pair) => Array.isArray(pair) && pair.length === 2 && pair.every((part) => typeof part === 'string'));
  if (!valid) throw mismatch(`${where} has custom metadata that is not a list of [key, value] strings`);
  return new Map(pairs as Array<[string, string]>);
}

/** Every type in a schema, depth first, each before its children: the numbering of unsetTimezones. */
function typesOf(schema: Schema): DataType[] {
  const types: DataType[] = [];
  const visit = (type: DataType): void => {
    types.push(type);
    // A Dictionary type reports its value type's children as its own; visit the value type once.
    if (type.typeId === Type.Dictionary) visit((type as Dictionary).dictionary);
    else for (const child of type.children ?? []) visit(child.type);
  };
  for (const field of schema.fields) visit(field.type);
  return types;
}

function typedView(type: string, view: Uint8Array | undefined, index: number): AnyTypedArray {
  if (!Object.hasOwn(TYPED_ARRAYS, type))
    throw mismatch(`arrow layout gives buffer ${index} the unknown class ${shown(type)}`);
  if (!(view instanceof Uint8Array))
    throw mismatch(`buffer ${index} of the arrow layout is ${describe(view)}, not bytes`);
  const Class = TYPED_ARRAYS[type as TypedArrayName];
  const width = Class.BYTES_PER_ELEMENT;
  if (view.byteLength % width !== 0) {
    throw mismatch(
      `buffer ${index} of the arrow layout is a ${type} but holds ${view.byteLength} bytes, not a multiple of ${width}`,
    );
  }
  if (view.byteOffset % width === 0)
    return new Class(view.buffer as ArrayBuffer, view.byteOffset, view.byteLength / width);
  const copy = new Class(view.byteLength / width);
  new Uint8Array(copy.buffer).set(view);
  return copy;
}

function typedArrayName(view: unknown): TypedArrayName | undefined {
  if (!ArrayBuffer.isView(view)) return undefined;
  // A Buffer's tag is 'Uint8Array', as it should be here; a DataView's is not a typed array.
  const tag = (view as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag];
  return Object.hasOwn(TYPED_ARRAYS, tag) ? (tag as TypedArrayName) : undefined;
}

function encodeSchema(schema: Schema): string {
  // Message.from checks instanceof, so a schema from another copy of arrow is re-made with ours.
  const ours = schema instanceof Schema ? schema : new Schema((schema as Schema).fields, (schema as Schema).metadata);
  return Buffer.from(Message.encode(Message.from(ours))).toString('base64');
}

/**
 * Decoded schemas, by encoding: a process that gets the same table again, or many tables of one
 * shape, decodes the flatbuffer once. Sharing a Schema between tables is what arrow itself does
 * (every slice of a table shares its schema); each value gets its own copy of it (ownSchema).
 * Bounded, oldest out first.
 */
const decodedSchemas = new Map<string, Schema>();
const DECODED_SCHEMAS_KEPT = 64;

function schemaOf(layout: ArrowLayout): Schema {
  const unset = layout.unsetTimezones;
  if (unset !== undefined && !(Array.isArray(unset) && unset.every((index) => isCount(index)))) {
    throw mismatch(`arrow layout's unsetTimezones is ${describe(unset)}, not a list of type numbers`);
  }
  // Plain fields are never written beside unsetTimezones (they hold no timestamps). Their schema
  // is made anew, the value's own: no key to build, no cache, no copy (a first get runs less code).
  const plain = unset ? undefined : validPlainFields(layout.fields);
  if (plain) return schemaOfPlainFields(plain);
  const key = unset ? `${layout.schema}|${unset.join(',')}` : layout.schema;
  let schema = decodedSchemas.get(key);
  if (!schema) {
    schema = decodeSchema(layout.schema);
    if (layout.unsetTimezones) {
      const types = typesOf(schema);
      for (const index of layout.unsetTimezones)
        if (types[index]?.typeId === Type.Timestamp)
          (types[index] as { timezone?: string | null }).timezone = undefined;
    }
    if (decodedSchemas.size >= DECODED_SCHEMAS_KEPT) decodedSchemas.delete(decodedSchemas.keys().next().value!);
    decodedSchemas.set(key, schema);
  }
  return ownSchema(schema);
}

/**
 * A Schema and Fields of their own, with their own metadata Maps, over the decoded one's types:
 * a reader that changes a value's schema metadata (a Map) must not change what a later get of
 * another object of that schema returns, as the cache would otherwise. (`new RecordBatch` gave
 * each batch such a copy, Schema.assign; a Table's schema was the cached one itself.)
 */
function ownSchema(schema: Schema): Schema {
  const fields = schema.fields.map((field) =>
    madeField(field.name, field.type, field.nullable, new Map(field.metadata)),
  );
  return madeSchema(fields, new Map(schema.metadata), new Map(schema.dictionaries), schema.metadataVersion);
}

function decodeSchema(encoded: string): Schema {
  let message: Message;
  try {
    message = Message.decode(Buffer.from(encoded, 'base64'));
  } catch (error) {
    throw mismatch('the schema of an arrow layout is not an Arrow IPC message', error);
  }
  if (message.headerType !== MessageHeader.Schema)
    throw mismatch(
      `the schema of an arrow layout is an IPC ${MessageHeader[message.headerType]} message, not a Schema`,
    );
  return message.header() as Schema;
}

/** A value from a layout, for a message: primitives as they are, anything else described (never its toString). */
function shown(value: unknown): string {
  return typeof value === 'object' && value !== null ? describe(value) : String(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return `an object (${value.constructor?.name ?? 'null prototype'})`;
}

function mismatch(message: string, cause?: unknown): TrellisError {
  return new TrellisError('TypeMismatch', message, { cause });
}
