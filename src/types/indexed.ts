/**
 * Turns what the read index gave (client/read-index.ts: a copy of a small object's bytes) into
 * the value get answers, as the built-in resolvers would. Only while the built-in resolver is the
 * one registered for the typename: a user's resolver may want more of the object (labels,
 * fields) than the index keeps, so it gets the object from the daemon as before.
 */
import type { Client } from '../client/client';
import type { IndexedObject, MemberViews } from '../client/read-index';
import { ObjectHandle } from '../client/object-handle';
import type { ObjectMeta } from '../protocol/messages';
import { BLOB_TYPENAME, resolveBlob } from './blob';
import { resolveArrow, resolveIndexedArrow } from './dataframe';
import { resolverFor } from './registry';
import { resolveShareableList, SHAREABLE_LIST_TYPENAME } from './shareable-list';
import { resolveTensor } from './tensor';
import { resolveValue, VALUE_TYPENAME } from './value';

/** Returned when the hit cannot be resolved here: get asks the daemon. */
export const NOT_RESOLVED: unique symbol = Symbol('not resolved');

const NO_VIEWS: ReadonlyMap<string, Buffer> = new Map();

/**
 * The built-in resolver for a metadata object of this typename from the index (the arrow types,
 * Tensors), or undefined when another is registered for it: then the get asks the daemon.
 */
function indexedObjectResolver(typename: string): ((object: ObjectHandle) => unknown) | undefined {
  const resolve = resolverFor(typename);
  if (resolve === resolveArrow) return resolveArrow;
  return resolve === resolveTensor ? resolveTensor : undefined;
}

/**
 * How a metadata object of this typename from the index wants its member views, or undefined
 * when it does not resolve here (ReadIndexReader.objectViews): plain Uint8Arrays for the arrow
 * types, which only make typed arrays over them; Buffers for a Tensor, read through an
 * ObjectHandle, whose member views are Buffers.
 */
export function indexedObjectViews(typename: string): MemberViews | undefined {
  const resolve = indexedObjectResolver(typename);
  if (resolve === undefined) return undefined;
  return resolve === resolveArrow ? 'plain' : 'buffer';
}

/** `client`: the one that got it (a ShareableList reads through it). */
export function resolveIndexed(id: string, hit: IndexedObject, client: Client): unknown {
  if (hit.kind === 'object') return resolveIndexedObject(id, hit);
  if (hit.kind === 'list') {
    if (resolverFor(SHAREABLE_LIST_TYPENAME) !== resolveShareableList) return NOT_RESOLVED;
    const meta = indexedMeta(id, SHAREABLE_LIST_TYPENAME, hit.bytes.byteLength, NO_FIELDS, NO_MEMBERS);
    return resolveShareableList(new ObjectHandle(meta, new Map([[id, hit.bytes]])), client);
  }
  if (hit.kind === 'blob') return resolverFor(BLOB_TYPENAME) === resolveBlob ? hit.bytes : NOT_RESOLVED;
  if (resolverFor(VALUE_TYPENAME) !== resolveValue) return NOT_RESOLVED;
  const meta = {
    id,
    typename: VALUE_TYPENAME,
    nbytes: hit.bytes.byteLength,
    instanceId: 0,
    createdAt: 0,
    labels: {},
    fields: { data: hit.bytes },
    members: {},
  };
  return resolveValue(new ObjectHandle(meta, NO_VIEWS));
}

/** A DataFrame, RecordBatch or Tensor over its members' pinned views, as from getObject's answer. */
function resolveIndexedObject(id: string, hit: IndexedObject): unknown {
  const record = hit.object;
  const views = hit.views;
  const resolve = record && indexedObjectResolver(record.typename);
  if (!record || !views || !resolve) return NOT_RESOLVED;
  if (resolve === resolveArrow) return resolveIndexedArrow(id, record, views);
  // Buffers: indexedObjectViews asks for plain views only for the arrow types.
  const members: Record<string, ObjectMeta> = {};
  for (const key in record.members) {
    const memberId = record.members[key];
    const nbytes = views.get(memberId)?.byteLength ?? 0;
    members[key] = indexedMeta(memberId, BLOB_TYPENAME, nbytes, NO_FIELDS, NO_MEMBERS);
  }
  const meta = indexedMeta(id, record.typename, record.nbytes, record.fields, members);
  return resolve(new ObjectHandle(meta, views));
}

const NO_LABELS: Record<string, string> = {};
const NO_FIELDS: Record<string, unknown> = {};
const NO_MEMBERS: Record<string, ObjectMeta> = {};

/**
 * An ObjectMeta of what the index keeps, written out as one literal: `{ ...EMPTY, id, ... }`
 * cost 1-7 µs a get in Node 20 (a spread with properties after it leaves V8's fast clone path),
 * most of a small Tensor's get from the index.
 */
function indexedMeta(
  id: string,
  typename: string,
  nbytes: number,
  fields: Record<string, unknown>,
  members: Record<string, ObjectMeta>,
): ObjectMeta {
  return { id, typename, nbytes, instanceId: 0, createdAt: 0, labels: NO_LABELS, fields, members };
}
