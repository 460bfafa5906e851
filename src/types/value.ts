/**
 * trellis::Value: plain JS data (strings, numbers, booleans, null, bigint, Date, plain objects
 * and arrays of those), encoded with msgpack. Small values travel inline in the metadata, so a
 * put is one round trip; larger ones go into a blob member.
 */
import { Packr } from 'msgpackr';
import type { Client } from '../client/client';
import type { ObjectHandle } from '../client/object-handle';
import type { MetadataSpec } from '../client/objects';
import { TrellisError } from '../errors';
import { guardResolve, malformed } from './malformed';
import { publishOptions, type PutOptions } from './registry';

export const VALUE_TYPENAME = 'trellis::Value';
/** Encoded values up to this size ride inline in the metadata. */
export const INLINE_VALUE_BYTES = 64 * 1024;

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** Loops rather than every()/Object.values(): put tests every value, so this walk is hot. */
export function isPlainValue(value: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  if (value === null) return true;
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
      return true;
    case 'object': {
      if (value instanceof Date) return true;
      if (Array.isArray(value)) {
        for (const item of value) if (!isPlainValue(item, depth + 1)) return false;
        return true;
      }
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) return false;
      for (const key in value) {
        if (
          Object.prototype.hasOwnProperty.call(value, key) &&
          !isPlainValue((value as Record<string, unknown>)[key], depth + 1)
        )
          return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/**
 * A plain value's msgpack bytes (what a trellis::Value holds). Errors: TypeMismatch when msgpack
 * cannot encode it (a bigint past 64 bits), naming msgpackr's reason.
 */
export function packValue(value: unknown): Buffer {
  try {
    return packr.pack(value);
  } catch (error) {
    throw new TrellisError('TypeMismatch', `cannot store this value: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The metadata of a value small enough to travel inline, or undefined. `encoded`: the value's
 * packValue bytes, when the caller has them (it found the value plain already).
 */
export function inlineValueSpec(value: unknown, options: PutOptions, encoded?: Buffer): MetadataSpec | undefined {
  if (encoded === undefined) {
    if (!isPlainValue(value)) return undefined;
    encoded = packValue(value);
  }
  return encoded.length <= INLINE_VALUE_BYTES
    ? { typename: VALUE_TYPENAME, labels: options.labels, data: encoded }
    : undefined;
}

export function buildValue(client: Client, value: unknown, options: PutOptions): Promise<string> {
  // A builder rejects, never throws: a list's items are put by a map whose throw would leave the
  // promises of the items before it rejecting unheard (sequence.ts). Encoding can fail (a bigint
  // past 64 bits).
  let encoded: Buffer;
  try {
    encoded = packValue(value);
  } catch (error) {
    return Promise.reject(error as Error);
  }
  return buildEncodedValue(client, encoded, options);
}

/** buildValue for a value already encoded by packValue (put encodes it once to try the put ring). */
export async function buildEncodedValue(client: Client, encoded: Buffer, options: PutOptions): Promise<string> {
  if (encoded.length <= INLINE_VALUE_BYTES) {
    return client.createMetadata(
      { typename: VALUE_TYPENAME, labels: options.labels, data: encoded },
      publishOptions(options),
    );
  }
  const [writer] = await client.createBlobs([encoded.length]);
  encoded.copy(writer.buffer);
  return client.createMetadata(
    { typename: VALUE_TYPENAME, labels: options.labels, members: { data: writer.id } },
    { ...publishOptions(options), seal: [writer] },
  );
}

/** Errors: TypeMismatch naming the object when its bytes are not msgpack of a value. */
export function resolveValue(object: ObjectHandle): unknown {
  const inline = object.fields.data;
  if (inline !== undefined && !(inline instanceof Uint8Array))
    throw malformed(object, `its inline data is ${typeof inline}, not bytes`);
  return guardResolve(object, () => packr.unpack(inline ?? object.member('data').buffer));
}
