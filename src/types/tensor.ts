/**
 * trellis::Tensor<dtype>: any TypedArray but Uint8Array (which is a Blob), with a shape. The
 * data is one blob; the resolver returns the same TypedArray class over shared memory.
 */
import type { Client } from '../client/client';
import type { CreateMetadataOptions, MetadataSpec } from '../client/objects';
import { MAX_INLINE_BLOB_BYTES } from '../protocol/messages';
import type { ObjectHandle } from '../client/object-handle';
import { TrellisError } from '../errors';
import { guardResolve, malformed } from './malformed';
import { publishOptions, type PutOptions } from './registry';

export const TENSOR_TYPENAME = 'trellis::Tensor';

type TypedArrayClass =
  | Int8ArrayConstructor
  | Uint8ClampedArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;

const DTYPES: Record<string, TypedArrayClass> = {
  int8: Int8Array,
  uint8clamped: Uint8ClampedArray,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
};

/** By constructor: put tests every value with isTensor, so the lookup allocates nothing. */
const DTYPE_OF = new Map<unknown, string>(Object.entries(DTYPES).map(([dtype, constructor]) => [constructor, dtype]));

/** The tensor dtype of a TypedArray of a class put stores as a Tensor; undefined for any other. */
export function dtypeOf(value: ArrayBufferView): string | undefined {
  return DTYPE_OF.get(value.constructor);
}

export function isTensor(value: unknown): value is ArrayBufferView {
  return ArrayBuffer.isView(value) && dtypeOf(value) !== undefined;
}

/**
 * A small tensor's metadata with its bytes going in the request itself (createMetadata's
 * inlineMembers): one round trip. Undefined for anything else. Errors: InvalidArgument (shape).
 */
export function inlineTensorSpec(
  value: unknown,
  options: PutOptions,
): { spec: MetadataSpec; options: CreateMetadataOptions } | undefined {
  if (!isTensor(value) || value.byteLength > MAX_INLINE_BLOB_BYTES) return undefined;
  const tensor = value as ArrayBufferView & { length: number };
  const dtype = dtypeOf(tensor)!;
  const shape = checkShape(tensor, dtype, options);
  return {
    spec: { typename: `${TENSOR_TYPENAME}<${dtype}>`, labels: options.labels, dtype, shape },
    options: {
      ...publishOptions(options),
      inlineMembers: { data: new Uint8Array(tensor.buffer, tensor.byteOffset, tensor.byteLength) },
    },
  };
}

function checkShape(value: ArrayBufferView & { length: number }, dtype: string, options: PutOptions): number[] {
  const shape = options.shape ?? [value.length];
  if (
    !Array.isArray(shape) ||
    !shape.every((d) => Number.isSafeInteger(d) && d >= 0) ||
    shape.reduce((a, b) => a * b, 1) !== value.length
  ) {
    throw new TrellisError(
      'InvalidArgument',
      `shape ${JSON.stringify(shape)} does not hold the ${value.length} elements of a ${dtype} tensor`,
    );
  }
  return shape;
}

export async function buildTensor(
  client: Client,
  value: ArrayBufferView & { length: number },
  options: PutOptions,
): Promise<string> {
  const inline = inlineTensorSpec(value, options);
  if (inline) return client.createMetadata(inline.spec, inline.options);
  const dtype = dtypeOf(value)!;
  const shape = checkShape(value, dtype, options);
  const [writer] = await client.createBlobs([value.byteLength]);
  writer.buffer.set(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  return client.createMetadata(
    { typename: `${TENSOR_TYPENAME}<${dtype}>`, members: { data: writer.id }, labels: options.labels, dtype, shape },
    { seal: [writer], ...publishOptions(options) },
  );
}

/**
 * The tensor's TypedArray over its blob. The dtype must be the one the typename names, and the
 * shape must account for exactly the blob's elements, since callers index by it.
 * Errors: TypeMismatch naming the object and the field that does not fit.
 */
export function resolveTensor(object: ObjectHandle): ArrayBufferView {
  const dtype = object.fields.dtype;
  const constructor = typeof dtype === 'string' && Object.hasOwn(DTYPES, dtype) ? DTYPES[dtype] : undefined;
  if (!constructor) throw malformed(object, `unknown tensor dtype ${JSON.stringify(dtype) ?? String(dtype)}`);
  if (object.typename !== `${TENSOR_TYPENAME}<${dtype}>`)
    throw malformed(object, `dtype ${dtype} is not the one its typename names`);
  const bytes = guardResolve(object, () => object.member('data').buffer);
  const width = constructor.BYTES_PER_ELEMENT;
  if (bytes.byteLength % width !== 0)
    throw malformed(object, `its data holds ${bytes.byteLength} bytes, not a whole number of ${dtype}s`);
  const length = bytes.byteLength / width;
  const shape = object.fields.shape;
  if (
    !Array.isArray(shape) ||
    !shape.every((d) => Number.isSafeInteger(d) && d >= 0) ||
    shape.reduce((a, b) => a * b, 1) !== length
  ) {
    throw malformed(
      object,
      `shape ${JSON.stringify(shape) ?? String(shape)} does not hold the ${length} ${dtype}s of its data`,
    );
  }
  return new constructor(bytes.buffer as ArrayBuffer, bytes.byteOffset, length);
}
