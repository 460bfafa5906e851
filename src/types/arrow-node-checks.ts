/**
 * What one stored arrow node must hold for its type, checked before arrow JS is handed it.
 *
 * The layout of a trellis::DataFrame is written by whichever client made the object, and any
 * client may write one (createMetadata takes any fields). arrow JS trusts its Data: a node whose
 * length outruns its buffers reads garbage or undefined, a missing validity bitmap throws a
 * TypeError on the first null check, and a batch whose columns are shorter than it is padded
 * with a freshly allocated bitmap of the claimed length. So every node is checked against the
 * real sizes of the buffers it was given, in O(1) per node: lengths and classes of buffers, the
 * first and last entry of an offsets buffer (the range of child or data it may reach), child
 * counts and lengths, null counts, dictionary references.
 *
 * Left unchecked, because each would cost a pass over the rows on every get: that offsets are
 * monotonic inside, union type ids, dense-union offsets, dictionary indices and view-type views.
 * A lie there gives wrong values or a TypeError when that row is read, never a read outside the
 * stored bytes: typed-array reads and subarray() are bounds-checked by the language.
 */
// From the modules that define them, not the package's index (see arrow-layout.ts, arrow-modules.ts).
import type { Data } from 'apache-arrow/data';
import { Type, UnionMode } from './arrow-modules';
import type { DataType, Dictionary, FixedSizeBinary, FixedSizeList, Float, Int, Union } from 'apache-arrow/type';
import { TrellisError } from '../errors';

/** A node's buffers, in arrow JS's BufferType order: valueOffsets, values, validity, typeIds. */
export type NodeBuffers = ReadonlyArray<ArrayBufferView | undefined>;

/** The facts of a node that arrow JS will use, read from the layout and checked to be numbers. */
export interface NodeShape {
  length: number;
  offset: number;
  nullCount: number;
}

const OFFSETS = 0;
const VALUES = 1;
const VALIDITY = 2;
const TYPE_IDS = 3;

/** Bytes of one Utf8View/BinaryView view struct. */
const VIEW_BYTES = 16;

/**
 * Refuses a node whose buffers or children cannot hold what its type and length say.
 * `where` names the node (batch, column path) for the message. Errors: TypeMismatch.
 */
export function checkArrowNode(
  type: DataType,
  shape: NodeShape,
  buffers: NodeBuffers,
  children: readonly Data[],
  where: Where,
): void {
  try {
    checkNode(type, shape, buffers, children);
  } catch (error) {
    // The node's name is made only now: building it for every node would cost more than the checks.
    throw mismatch(`${pathOf(where)} (${type}, ${shape.length} rows) ${(error as Error).message}`);
  }
}

/**
 * Where a node is, for messages: a batch or dictionary chunk, then field names. Kept as a chain
 * of small objects and made into a string only when a node is refused.
 */
export type Where = string | { readonly parent: Where; readonly name: string };

export function pathOf(where: Where): string {
  return typeof where === 'string' ? where : `${pathOf(where.parent)}.${where.name}`;
}

function checkNode(type: DataType, shape: NodeShape, buffers: NodeBuffers, children: readonly Data[]): void {
  const { length, offset, nullCount } = shape;
  if (type.typeId !== Type.Null && type.typeId !== Type.Union) {
    if (nullCount < -1 || nullCount > length) throw mismatch(`claims ${nullCount} nulls`);
    const validity = buffers[VALIDITY];
    // An empty bitmap with no nulls is how arrow JS says "all valid"; anything else must cover every row.
    if (nullCount !== 0 && !validity) throw mismatch(`claims ${nullCount} nulls but has no validity bitmap`);
    if (validity && (validity.byteLength > 0 || nullCount !== 0))
      needBits(validity, offset + length, 'validity bitmap');
    // A column arrow padded with nulls (a table's shorter column) has a bitmap and nothing else;
    // its values are never read, and if a lying bitmap says otherwise, reads come back undefined.
    if (nullCount === length && length > 0) return;
  }
  switch (type.typeId) {
    case Type.Null:
      return;
    case Type.Bool:
      needBits(need(buffers[VALUES], 'values'), offset + length, 'values bitmap');
      return;
    case Type.Int:
    case Type.Float:
      needElements(buffers[VALUES], numberArrayType(type), length, 'values');
      return;
    case Type.Decimal:
    case Type.Date:
    case Type.Time:
    case Type.Timestamp:
    case Type.Interval:
    case Type.Duration:
      needElements(buffers[VALUES], type.ArrayType, length * strideOf(type), 'values');
      return;
    case Type.FixedSizeBinary:
      needElements(buffers[VALUES], Uint8Array, length * (type as FixedSizeBinary).byteWidth, 'values');
      return;
    case Type.Dictionary:
      needElements(buffers[VALUES], (type as Dictionary).indices.ArrayType, length, 'indices');
      return;
    case Type.Utf8:
    case Type.Binary:
    case Type.LargeUtf8:
    case Type.LargeBinary: {
      const values = needElements(need(buffers[VALUES], 'values'), Uint8Array, 0, 'values');
      checkOffsets(buffers[OFFSETS], type, length, values.byteLength, 'data bytes');
      return;
    }
    case Type.Utf8View:
    case Type.BinaryView:
      needElements(buffers[VALUES], Uint8Array, length * VIEW_BYTES, 'views');
      return;
    case Type.List:
    case Type.LargeList:
    case Type.Map:
      checkOffsets(buffers[OFFSETS], type, length, children[0].length, 'child rows');
      return;
    case Type.FixedSizeList:
      needChildRows(children, length * (type as FixedSizeList).listSize);
      return;
    case Type.Struct:
      needChildRows(children, length);
      return;
    case Type.Union: {
      // Sparse children may be shorter than the union (arrow's builders leave them so).
      needElements(buffers[TYPE_IDS], Int8Array, length, 'type ids');
      if ((type as Union).mode === UnionMode.Dense) needElements(buffers[OFFSETS], Int32Array, length, 'value offsets');
      return;
    }
    default:
      // A type this trellis does not know the buffers of was refused when its schema decoded.
      return;
  }
}

/**
 * A batch's columns must be exactly as long as the batch: arrow's RecordBatch pads a shorter
 * one with a new bitmap of the batch's length, which a lying length would make any size.
 */
export function checkBatchColumns(length: number, columns: readonly Data[], where: string): void {
  for (let i = 0; i < columns.length; i++) {
    if (columns[i].length !== length)
      throw mismatch(`${where}: column ${i} has ${columns[i].length} rows; the batch has ${length}`);
  }
}

/** An Int's typed-array class by bit width, signed then unsigned, as arrow's ArrayType getter gives it. */
const INT_ARRAY_TYPES: Record<number, [TypedArrayClass, TypedArrayClass] | undefined> = {
  8: [Int8Array, Uint8Array],
  16: [Int16Array, Uint16Array],
  32: [Int32Array, Uint32Array],
  64: [BigInt64Array, BigUint64Array],
};
/** A Float's, by Precision (HALF, SINGLE, DOUBLE). */
const FLOAT_ARRAY_TYPES: TypedArrayClass[] = [Uint16Array, Float32Array, Float64Array];

/**
 * type.ArrayType of an Int or Float, read from the tables above: arrow's getter is arrow's code,
 * which a process that loaded apache-arrow itself compiles at its first call (tens of µs of a
 * fresh reader's first get of a numeric table). A width arrow does not know goes to the getter,
 * which throws as before. test/types/arrow-node-checks.test.ts compares both for every width.
 */
export function numberArrayType(type: DataType): TypedArrayClass {
  const found =
    type.typeId === Type.Float
      ? FLOAT_ARRAY_TYPES[(type as Float).precision]
      : INT_ARRAY_TYPES[(type as Int).bitWidth]?.[(type as Int).isSigned ? 0 : 1];
  return found ?? type.ArrayType;
}

/**
 * Elements of type.ArrayType per row, as arrow JS's strideForType (not exported) counts them for
 * the fixed-width types: Decimal is bitWidth/32 Uint32s, an Interval one, two or four Int32s
 * (IntervalUnit YEAR_MONTH 0, DAY_TIME 1, MONTH_DAY_NANO 2), everything else one element.
 */
function strideOf(type: DataType): number {
  if (type.typeId === Type.Decimal) return (type as DataType & { bitWidth: number }).bitWidth / 32;
  if (type.typeId === Type.Interval) return [1, 2, 4][(type as DataType & { unit: number }).unit] ?? 4;
  return 1;
}

function checkOffsets(
  offsets: ArrayBufferView | undefined,
  type: DataType,
  length: number,
  reach: number,
  what: string,
): void {
  const OffsetClass = (type as DataType & { OffsetArrayType: TypedArrayClass }).OffsetArrayType;
  if (length === 0 && (!offsets || offsets.byteLength === 0)) return;
  const array = needElements(offsets, OffsetClass, length + 1, 'offsets') as unknown as ArrayLike<number | bigint>;
  const first = Number(array[0]);
  const last = Number(array[length]);
  if (first < 0 || last < first || last > reach) {
    throw mismatch(`has offsets from ${first} to ${last}, outside its ${reach} ${what}`);
  }
}

function needChildRows(children: readonly Data[], rows: number): void {
  for (let i = 0; i < children.length; i++) {
    if (children[i].length < rows) throw mismatch(`needs ${rows} rows of child ${i}, which has ${children[i].length}`);
  }
}

export type TypedArrayClass = { new (...args: never[]): ArrayBufferView; BYTES_PER_ELEMENT: number; name: string };

function need(buffer: ArrayBufferView | undefined, what: string): ArrayBufferView {
  if (!buffer) throw mismatch(`has no ${what} buffer`);
  return buffer;
}

/** The buffer, checked to be of `Class` (so its elements are read as stored) and to hold `count` of them. */
function needElements(
  buffer: ArrayBufferView | undefined,
  Class: TypedArrayClass,
  count: number,
  what: string,
): ArrayBufferView {
  if (!buffer) {
    if (count === 0) return new Uint8Array(0);
    throw mismatch(`has no ${what} buffer`);
  }
  if (!(buffer instanceof Class))
    throw mismatch(`has a ${(buffer as ArrayBufferView).constructor.name} ${what} buffer, not a ${Class.name}`);
  const held = buffer.byteLength / Class.BYTES_PER_ELEMENT;
  if (held < count)
    throw mismatch(`needs ${count} ${what} elements; its buffer holds ${held} (${buffer.byteLength} bytes)`);
  return buffer;
}

/** A bitmap: bytes (arrow JS reads its bits with number shifts, which a BigInt64Array breaks), enough of them. */
function needBits(buffer: ArrayBufferView, bits: number, what: string): void {
  if (!(buffer instanceof Uint8Array)) throw mismatch(`has a ${buffer.constructor.name} ${what}, not a Uint8Array`);
  if (buffer.byteLength * 8 < bits)
    throw mismatch(`needs ${bits} bits of ${what}; it holds ${buffer.byteLength} bytes`);
}

function mismatch(message: string): TrellisError {
  return new TrellisError('TypeMismatch', message);
}
