/** Checks on request bodies from clients: wrong types become InvalidArgument, never a crash. */
import { TrellisError } from '../errors';
import { isObjectId } from '../protocol/ids';
import { MAX_INLINE_BLOB_BYTES } from '../protocol/messages';

export type Body = Record<string, unknown>;

export function expectBody(kind: string, body: unknown): Body {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new TrellisError('InvalidArgument', `${kind}: the request body must be a map, got ${describe(body)}`);
  }
  return body as Body;
}

export function objectId(kind: string, body: Body, field = 'id'): string {
  const value = body[field];
  if (!isObjectId(value)) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: ${field} must be an object id such as o0000000000000001, got ${describe(value)}`,
    );
  }
  return value;
}

export const MAX_IDS_PER_REQUEST = 100_000;

/** A list of at most MAX_IDS_PER_REQUEST non-negative integers (read-index slots). Errors: InvalidArgument. */
export function slotList(kind: string, body: Body, field: string): number[] {
  const value = body[field];
  if (
    !Array.isArray(value) ||
    value.length > MAX_IDS_PER_REQUEST ||
    !value.every((slot) => Number.isSafeInteger(slot) && slot >= 0)
  ) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: ${field} must be a list of at most ${MAX_IDS_PER_REQUEST} slot numbers, got ${describe(value)}`,
    );
  }
  return value as number[];
}

export function objectIds(kind: string, body: Body, field = 'ids'): string[] {
  const value = body[field];
  if (!Array.isArray(value) || value.length > MAX_IDS_PER_REQUEST) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: ${field} must be a list of at most ${MAX_IDS_PER_REQUEST} object ids, got ${describe(value)}`,
    );
  }
  for (const id of value) {
    if (!isObjectId(id)) throw new TrellisError('InvalidArgument', `${kind}: ${describe(id)} is not an object id`);
  }
  return value as string[];
}

export function nonNegativeInteger(kind: string, body: Body, field: string, fallback?: number): number {
  const value = body[field] ?? fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: ${field} must be a non-negative integer, got ${describe(value)}`,
    );
  }
  return value;
}

export function optionalString(kind: string, body: Body, field: string, maxLength = 4096): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length > maxLength) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: ${field} must be a string of at most ${maxLength} characters, got ${describe(value)}`,
    );
  }
  return value;
}

export function flag(kind: string, body: Body, field: string, fallback: boolean): boolean {
  const value = body[field] ?? fallback;
  if (typeof value !== 'boolean') {
    throw new TrellisError('InvalidArgument', `${kind}: ${field} must be a boolean, got ${describe(value)}`);
  }
  return value;
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 60) + '...' : value);
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (value === null) return 'null';
  return typeof value === 'object' ? 'a map' : `${typeof value} ${String(value)}`;
}

/** Typenames look like `trellis::DataFrame` or `my::Tensor<float64>`. */
export const TYPENAME_PATTERN = /^[A-Za-z_][\w]*(::[A-Za-z_][\w]*)*(<[\w:<>, ]*>)?$/;
export const MAX_TYPENAME_LENGTH = 256;

export function optionalTypename(kind: string, body: Body, field = 'typename'): string | undefined {
  const value = optionalString(kind, body, field, MAX_TYPENAME_LENGTH);
  if (value !== undefined && !TYPENAME_PATTERN.test(value)) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: ${describe(value)} is not a typename (such as trellis::Blob or my::Type<int64>)`,
    );
  }
  return value;
}

/** Keys an object's metadata has of its own; user fields may not use them. */
export const RESERVED_KEYS = new Set([
  'id',
  'typename',
  'nbytes',
  'instanceId',
  'createdAt',
  'labels',
  'members',
  'fields',
]);

export function typename(kind: string, body: Body): string {
  const value = optionalTypename(kind, body);
  if (value === undefined)
    throw new TrellisError('InvalidArgument', `${kind}: a typename is required (such as trellis::Value)`);
  return value;
}

export function map(kind: string, body: Body, field: string): Record<string, unknown> {
  return plainMap(kind, body, field);
}

export function bytes(kind: string, body: Body, field: string): Uint8Array {
  const value = body[field];
  if (!(value instanceof Uint8Array))
    throw new TrellisError('InvalidArgument', `${kind}: ${field} must be bytes, got ${describe(value)}`);
  return value;
}

/** Bytes that ride in a request: at most MAX_INLINE_BLOB_BYTES. `what` names them in the error. */
export function inlineBytes(kind: string, value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array))
    throw new TrellisError('InvalidArgument', `${kind}: ${what} must be bytes, got ${describe(value)}`);
  if (value.byteLength > MAX_INLINE_BLOB_BYTES) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: ${what} is ${value.byteLength} bytes, over the ${MAX_INLINE_BLOB_BYTES}-byte limit for bytes ` +
        'inside a request (write larger blobs into shared memory with createBlobs)',
    );
  }
  return value;
}

/** createMetadata's inlineMembers: member key -> inline bytes. */
export function inlineMembers(kind: string, body: Body): Record<string, Uint8Array> {
  const map = plainMap(kind, body, 'inlineMembers');
  for (const [key, data] of Object.entries(map)) {
    if (key.length === 0 || key.length > 256)
      throw new TrellisError('InvalidArgument', `${kind}: member keys must be 1 to 256 characters`);
    inlineBytes(kind, data, `inline member ${JSON.stringify(key)}`);
  }
  return map as Record<string, Uint8Array>;
}

/** A list of 1 to MAX_IDS_PER_REQUEST object ids or names. */
/**
 * putBlobs' compact form: `sizes` (1 to MAX_IDS_PER_REQUEST byte counts, each at most
 * MAX_INLINE_BLOB_BYTES) and `data`, exactly their total. Errors: InvalidArgument naming the
 * size, the count or the byte total that is wrong.
 */
export function inlineBatch(kind: string, sizes: unknown, data: unknown): { sizes: number[]; data: Uint8Array } {
  if (!Array.isArray(sizes) || sizes.length === 0 || sizes.length > MAX_IDS_PER_REQUEST) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: sizes must be a list of 1 to ${MAX_IDS_PER_REQUEST}, got ${describe(sizes)}`,
    );
  }
  if (!(data instanceof Uint8Array)) {
    throw new TrellisError('InvalidArgument', `${kind}: data must be bytes, got ${describe(data)}`);
  }
  let total = 0;
  for (let i = 0; i < sizes.length; i++) {
    const size: unknown = sizes[i];
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || size > MAX_INLINE_BLOB_BYTES) {
      throw new TrellisError(
        'InvalidArgument',
        `${kind}: sizes[${i}] must be a byte count of 0 to ${MAX_INLINE_BLOB_BYTES} (the limit for bytes inside ` +
          `a request), got ${describe(size)}`,
      );
    }
    total += size;
  }
  if (total !== data.byteLength) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: sizes add up to ${total} bytes but data holds ${data.byteLength}`,
    );
  }
  return { sizes: sizes as number[], data };
}

export function refs(kind: string, body: Body, field = 'refs'): string[] {
  const value = body[field];
  if (!Array.isArray(value) || value.length > MAX_IDS_PER_REQUEST) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: ${field} must be a list of at most ${MAX_IDS_PER_REQUEST} object ids or names, got ${describe(value)}`,
    );
  }
  for (const ref of value) {
    if (typeof ref !== 'string' || ref.length === 0 || ref.length > 256)
      throw new TrellisError('InvalidArgument', `${kind}: ${describe(ref)} is not an object id or a name`);
  }
  return value as string[];
}

function plainMap(kind: string, body: Body, field: string): Record<string, unknown> {
  const value = body[field];
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
    throw new TrellisError('InvalidArgument', `${kind}: ${field} must be a map, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

/** member key -> object id */
export function members(kind: string, body: Body): Record<string, string> {
  const map = plainMap(kind, body, 'members');
  for (const [key, id] of Object.entries(map)) {
    if (key.length === 0 || key.length > 256)
      throw new TrellisError('InvalidArgument', `${kind}: member keys must be 1 to 256 characters`);
    if (!isObjectId(id))
      throw new TrellisError(
        'InvalidArgument',
        `${kind}: member ${JSON.stringify(key)} must be an object id, got ${describe(id)}`,
      );
  }
  return map as Record<string, string>;
}

/** Labels an object may carry, and the longest key and value. */
export const MAX_LABELS = 64;
export const MAX_LABEL_KEY_LENGTH = 256;
export const MAX_LABEL_VALUE_LENGTH = 4096;

export function labels(kind: string, body: Body, field = 'labels'): Record<string, string> {
  return labelMap(kind, plainMap(kind, body, field), false) as Record<string, string>;
}

/** label's changes: a map of label to a string, or to null (remove it). */
export function labelChanges(kind: string, body: Body): Record<string, string | null> {
  const map = plainMap(kind, body, 'labels');
  if (Object.keys(map).length === 0)
    throw new TrellisError('InvalidArgument', `${kind}: labels must name at least one label`);
  return labelMap(kind, map, true);
}

function labelMap(kind: string, map: Record<string, unknown>, nullable: boolean): Record<string, string | null> {
  const entries = Object.entries(map);
  if (entries.length > MAX_LABELS) {
    throw new TrellisError('InvalidArgument', `${kind}: at most ${MAX_LABELS} labels, got ${entries.length}`);
  }
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > MAX_LABEL_KEY_LENGTH) {
      throw new TrellisError(
        'InvalidArgument',
        `${kind}: label ${describe(key)}: a key is 1 to ${MAX_LABEL_KEY_LENGTH} characters`,
      );
    }
    if (value === null && nullable) continue;
    if (typeof value !== 'string' || value.length > MAX_LABEL_VALUE_LENGTH) {
      const what = nullable ? 'a string (or null to remove it)' : 'a string';
      throw new TrellisError(
        'InvalidArgument',
        `${kind}: label ${JSON.stringify(key)} must map to ${what} of at most ${MAX_LABEL_VALUE_LENGTH} characters, got ${describe(value)}`,
      );
    }
  }
  return map as Record<string, string | null>;
}

/** Parents a lineage may record per object. */
export const MAX_PARENTS = 1024;

/** Lineage parents: a list of object ids or names (resolved by the caller). */
export function parentRefs(kind: string, body: Body): string[] {
  const value = body.parents;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.length > MAX_PARENTS) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: parents must be a list of at most ${MAX_PARENTS} ids or names, got ${describe(value)}`,
    );
  }
  for (const ref of value) {
    if (typeof ref !== 'string' || ref.length === 0 || ref.length > 1024) {
      throw new TrellisError(
        'InvalidArgument',
        `${kind}: a parent must be an object id or a name, got ${describe(ref)}`,
      );
    }
  }
  return value as string[];
}

export function fields(kind: string, body: Body): Record<string, unknown> {
  const map = plainMap(kind, body, 'fields');
  for (const key of Object.keys(map)) {
    if (RESERVED_KEYS.has(key))
      throw new TrellisError(
        'InvalidArgument',
        `${kind}: ${JSON.stringify(key)} is reserved and cannot be set as a field`,
      );
  }
  return map;
}

export function nameRefs(kind: string, body: Body): Record<string, string> {
  const map = plainMap(kind, body, 'names');
  for (const [name, id] of Object.entries(map)) {
    if (!isObjectId(id))
      throw new TrellisError(
        'InvalidArgument',
        `${kind}: name ${JSON.stringify(name)} must map to an object id, got ${describe(id)}`,
      );
  }
  return map as Record<string, string>;
}

export function string(kind: string, body: Body, field: string, maxLength = 4096): string {
  const value = optionalString(kind, body, field, maxLength);
  if (value === undefined) throw new TrellisError('InvalidArgument', `${kind}: ${field} is required`);
  return value;
}

export function optionalIds(kind: string, body: Body, field: string): string[] {
  return body[field] === undefined || body[field] === null ? [] : objectIds(kind, body, field);
}

/** Refuses a batch that gives one name to two of its objects. Errors: InvalidArgument. */
export function distinctNames(kind: string, names: ReadonlyArray<string | undefined>): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (name === undefined) continue;
    if (seen.has(name))
      throw new TrellisError('InvalidArgument', `${kind}: name ${JSON.stringify(name)} appears twice`);
    seen.add(name);
  }
}
