/**
 * trellis::DataFrame (an apache-arrow Table) and trellis::RecordBatch: one blob per arrow
 * buffer, and a metadata object whose `layout` field (arrow-layout.ts) puts them back together.
 *
 * A put is three steps whatever the table's size: one createBlobs for every buffer, one copy
 * into each, and one createMetadata that seals them all, creates the object and names it. A get
 * is one getObject, then a few allocations per buffer and per column: no pass over the rows, so
 * a gigabyte-sized table resolves about as fast as a small value.
 *
 * Caveat: the resolved Table's buffers are read-only shared memory. Reading is free; writing
 * through it (vector.set, data.setValid) faults the process, as any write to a sealed object does.
 */
import type { RecordBatch, Table } from 'apache-arrow';
import type { BlobWriter } from '../client/blobs';
import type { Client } from '../client/client';
import type { ObjectHandle } from '../client/object-handle';
import { TrellisError } from '../errors';
import { guardResolve, type NamedObject } from './malformed';
import { isArrowRecordBatch, isArrowTable } from './arrow-brands';
import type * as ArrowLayoutModule from './arrow-layout';
import { publishOptions, registerBuiltinBuilder, registerResolver, type PutOptions } from './registry';

export const DATAFRAME_TYPENAME = 'trellis::DataFrame';
export const RECORD_BATCH_TYPENAME = 'trellis::RecordBatch';

const KIND_OF_TYPENAME = new Map<string, ArrowLayoutModule.ArrowKind>([
  [DATAFRAME_TYPENAME, 'table'],
  [RECORD_BATCH_TYPENAME, 'batch'],
]);

/** The member key of stored buffer i. */
function bufferKey(index: number): string {
  return `b${index}`;
}

let arrowLayoutModule: typeof ArrowLayoutModule | undefined;

/** arrow-layout.ts loads apache-arrow, so it is loaded on first use rather than with trellis. */
function arrowLayout(): typeof ArrowLayoutModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy load needs require
  return (arrowLayoutModule ??= require('./arrow-layout') as typeof ArrowLayoutModule);
}

/**
 * Loads the arrow layout now when this process has loaded apache-arrow already (a process that
 * handles Tables), so that the first DataFrame get does not: loading it there cost ~1-2 ms of a
 * fresh reader's first get (resolving apache-arrow from a new folder, reading and compiling two
 * modules). connect() calls this; a process without apache-arrow pays one module resolution.
 */
export function preloadArrowLayout(): void {
  if (arrowLayoutModule) return;
  let resolved: string;
  try {
    resolved = require.resolve('apache-arrow');
  } catch {
    return;
  }
  if (require.cache[resolved]) arrowLayout();
}

export function isArrowValue(value: unknown): value is Table | RecordBatch {
  return isArrowTable(value) || isArrowRecordBatch(value);
}

/** Errors: InvalidArgument, OutOfMemory, NameExists. */
export async function buildArrow(client: Client, value: Table | RecordBatch, options: PutOptions): Promise<string> {
  const { buffers, layout } = arrowLayout().planArrow(value);
  // A table of no columns has no buffers, and createBlobs wants at least one size.
  const writers = buffers.length > 0 ? await client.createBlobs(buffers.map((buffer) => buffer.byteLength)) : [];
  const members: Record<string, string> = {};
  writers.forEach((writer, i) => {
    writer.buffer.set(buffers[i]);
    members[bufferKey(i)] = writer.id;
  });
  const typename = layout.kind === 'table' ? DATAFRAME_TYPENAME : RECORD_BATCH_TYPENAME;
  try {
    return await client.createMetadata(
      { typename, members, labels: options.labels, layout, numRows: value.numRows, numColumns: value.numCols },
      { seal: writers, ...publishOptions(options) },
    );
  } catch (error) {
    // A table can be most of the store: give its blobs back now rather than at disconnect.
    await abortAll(writers);
    throw error;
  }
}

async function abortAll(writers: BlobWriter[]): Promise<void> {
  await Promise.all(writers.map((writer) => (writer.sealed ? undefined : writer.abort().catch(() => undefined))));
}

/** The Table or RecordBatch over the object's blobs, no copy. Errors: TypeMismatch. */
export function resolveArrow(object: ObjectHandle): Table | RecordBatch {
  return arrowOf(object, object.fields, (key) => object.member(key).buffer);
}

/**
 * resolveArrow for an object from the read index: its record's typename, fields and members
 * (key -> blob id), and a view of each member blob by id. The same checks and errors, without
 * an ObjectHandle and member handles to make (a fresh process's first get runs less code).
 */
export function resolveIndexedArrow(
  id: string,
  record: { typename: string; fields: Record<string, unknown>; members: Record<string, string> },
  views: ReadonlyMap<string, Uint8Array>,
): Table | RecordBatch {
  const object = { id, typename: record.typename };
  return arrowOf(object, record.fields, (key) => {
    const view = Object.hasOwn(record.members, key) ? views.get(record.members[key]) : undefined;
    // As ObjectHandle.member says it (resolveError makes it a TypeMismatch).
    if (!view)
      throw new TrellisError(
        'ObjectNotFound',
        `object ${id} (${object.typename}) has no member ${JSON.stringify(key)}`,
      );
    return view;
  });
}

/** The arrow value of an object of this typename and fields, over each member's bytes by key. */
function arrowOf(
  object: NamedObject,
  fields: Record<string, unknown>,
  member: (key: string) => Uint8Array,
): Table | RecordBatch {
  const expectedKind = KIND_OF_TYPENAME.get(object.typename);
  if (!expectedKind)
    throw new TrellisError(
      'TypeMismatch',
      `object ${object.id} is a ${object.typename}, not a ${DATAFRAME_TYPENAME} or ${RECORD_BATCH_TYPENAME}`,
    );
  const layout = fields.layout as ArrowLayoutModule.ArrowLayout | undefined;
  if (typeof layout !== 'object' || layout === null || !Array.isArray(layout.bufferTypes)) {
    throw new TrellisError('TypeMismatch', `object ${object.id} (${object.typename}) has no arrow layout field`);
  }
  if (layout.kind !== expectedKind) {
    throw new TrellisError(
      'TypeMismatch',
      `object ${object.id} is a ${object.typename} but its arrow layout holds a ${layout.kind}`,
    );
  }
  return guardResolve(object, () => {
    const views = layout.bufferTypes.map((_, i) => member(bufferKey(i)));
    return arrowLayout().rebuildArrow(layout, views);
  });
}

let registered = false;

/** Registers the arrow builder and both resolvers; the registry's built-ins call this once. */
export function registerArrowTypes(): void {
  if (registered) return;
  registered = true;
  registerBuiltinBuilder(isArrowValue, buildArrow);
  registerResolver(DATAFRAME_TYPENAME, resolveArrow);
  registerResolver(RECORD_BATCH_TYPENAME, resolveArrow);
}
