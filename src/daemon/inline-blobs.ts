/**
 * Small blobs whose bytes ride in the request (putBlobs, and createMetadata's inlineMembers).
 * For a few hundred bytes, the two round trips of createBlobs + seal, and a segment mapped in the
 * client, cost far more than copying the bytes through the socket once: so the daemon copies
 * them into new blobs in shared memory itself. Once sealed they are blobs like any other: read
 * as views of shared memory, spilled, persisted and exported the same way. These bytes are the
 * one deliberate exception to "bytes never travel through the socket" (DESIGN.md, invariant 4),
 * bounded by MAX_INLINE_BLOB_BYTES.
 */
import { toWireError, TrellisError, type WireError } from '../errors';
import type { PutBlobsReply } from '../protocol/messages';
import { checkName } from '../protocol/names';
import { resolveParents } from './lineage';
import { whenDone, type NewObject } from './metadata/meta-service';
import type { DaemonState } from './request-context';
import type { ClientSession } from './session';
import * as check from './validate';

/**
 * New unsealed blobs of this session holding `datas`, all or none; their ids in order.
 * Errors: OutOfMemory.
 */
export function storeInline(
  state: DaemonState,
  session: ClientSession,
  datas: readonly Uint8Array[],
): string[] | Promise<string[]> {
  if (datas.length === 0) return [];
  const sizes = new Array<number>(datas.length);
  for (let i = 0; i < datas.length; i++) sizes[i] = datas[i].byteLength;
  const created = state.residency.createBlobs(session, sizes);
  return whenDone(created, (blobs) => {
    const ids = new Array<string>(blobs.length);
    for (let i = 0; i < blobs.length; i++) ids[i] = blobs[i].id;
    try {
      for (let i = 0; i < blobs.length; i++) if (blobs[i].size > 0) state.pool.memory.write(blobs[i], 0, datas[i]);
    } catch (error) {
      abortInline(state, session, ids);
      throw error;
    }
    return ids;
  });
}

/** Takes back blobs from storeInline that are still unsealed (a later step of the request failed). */
export function abortInline(state: DaemonState, session: ClientSession, ids: readonly string[]): void {
  for (const id of ids) if (session.unsealed.has(id)) state.table.abort(session, id);
}

interface InlineBlobRequest {
  data: Uint8Array;
  labels: Record<string, string>;
  derivedFrom: ReturnType<typeof resolveParents>;
  name?: string;
  override: boolean;
  persist: boolean;
}

/** putBlobs: checks every entry first (the batch is all or none), then stores, seals and publishes. */
export function putBlobs(
  state: DaemonState,
  session: ClientSession,
  body: check.Body,
): PutBlobsReply | Promise<PutBlobsReply> {
  const kind = 'putBlobs';
  if (body.sizes !== undefined || body.data !== undefined) {
    if (body.blobs !== undefined) {
      throw new TrellisError('InvalidArgument', `${kind}: give either blobs or sizes and data, not both`);
    }
    if (check.flag(kind, body, 'each', false)) return storeEach(state, session, bytesOnly(kind, body.sizes, body.data));
    return storeBytes(state, session, check.inlineBatch(kind, body.sizes, body.data));
  }
  const entries = body.blobs;
  if (!Array.isArray(entries) || entries.length === 0 || entries.length > check.MAX_IDS_PER_REQUEST) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: blobs must be a list of 1 to ${check.MAX_IDS_PER_REQUEST}, got ${check.describe(entries)}`,
    );
  }
  // Parents may be other instances' objects: their records are loaded first (view).
  const parsed = state.meta.view(() => {
    const requests = entries.map((entry, i): InlineBlobRequest => {
      const fields = check.expectBody(kind, entry);
      const name = fields.name === undefined || fields.name === null ? undefined : checkName(fields.name);
      const request: InlineBlobRequest = {
        data: check.inlineBytes(kind, fields.data, `blobs[${i}].data`),
        labels: check.labels(kind, fields),
        derivedFrom: resolveParents(kind, check.parentRefs(kind, fields), state.names, state.meta),
        name,
        override: check.flag(kind, fields, 'override', false),
        persist: check.flag(kind, fields, 'persist', false),
      };
      if (name !== undefined && !request.override) state.names.refuseTaken(name);
      return request;
    });
    check.distinctNames(
      kind,
      requests.map((request) => request.name),
    );
    return requests;
  });
  return whenDone(parsed, (requests) => storeAndPublish(state, session, requests)) as
    PutBlobsReply | Promise<PutBlobsReply>;
}

/**
 * The compact form, all or none: bytes alone, so there is nothing to publish or record. Every
 * put of a small Buffer that is a request comes here: it allocates no more than it must.
 */
function storeBytes(
  state: DaemonState,
  session: ClientSession,
  { sizes, data }: { sizes: number[]; data: Uint8Array },
): PutBlobsReply | Promise<PutBlobsReply> {
  const datas: Uint8Array[] = sizes.length === 1 ? [data] : new Array<Uint8Array>(sizes.length);
  if (sizes.length > 1)
    for (let i = 0, offset = 0; i < sizes.length; i++) datas[i] = data.subarray(offset, (offset += sizes[i]));
  return whenDone(state.residency.createSealedBlobs(session, datas), (ids) => ({ ids })) as
    PutBlobsReply | Promise<PutBlobsReply>;
}

/** The compact form's blobs: views of the request's bytes, copied into shared memory by createSealedBlobs. */
function bytesOnly(kind: string, sizes: unknown, data: unknown): InlineBlobRequest[] {
  const batch = check.inlineBatch(kind, sizes, data);
  let offset = 0;
  return batch.sizes.map((size): InlineBlobRequest => {
    const bytes = batch.data.subarray(offset, (offset += size));
    return { data: bytes, labels: {}, derivedFrom: [], override: false, persist: false };
  });
}

/**
 * `each`: the blobs are separate puts (a client's puts in flight, coalesced), so one that does
 * not fit must not take the others with it. The batch is tried whole (the usual case, one
 * allocation pass); when the store is full, each blob is tried alone, in order, and the ones
 * that failed are answered in `errors`.
 */
function storeEach(
  state: DaemonState,
  session: ClientSession,
  requests: InlineBlobRequest[],
): PutBlobsReply | Promise<PutBlobsReply> {
  let whole: PutBlobsReply | Promise<PutBlobsReply>;
  try {
    whole = storeAndPublish(state, session, requests);
  } catch (error) {
    if (!isOutOfMemory(error)) throw error;
    return oneByOne(state, session, requests);
  }
  return whole instanceof Promise
    ? whole.catch((error: unknown) => {
        if (!isOutOfMemory(error)) throw error;
        return oneByOne(state, session, requests);
      })
    : whole;
}

function isOutOfMemory(error: unknown): boolean {
  return error instanceof TrellisError && error.code === 'OutOfMemory';
}

async function oneByOne(
  state: DaemonState,
  session: ClientSession,
  requests: InlineBlobRequest[],
): Promise<PutBlobsReply> {
  const ids: string[] = [];
  const errors = { at: [] as number[], errors: [] as WireError[] };
  for (let i = 0; i < requests.length; i++) {
    try {
      ids.push(...(await storeAndPublish(state, session, [requests[i]])).ids);
    } catch (error) {
      errors.at.push(i);
      errors.errors.push(toWireError(error));
    }
  }
  return errors.at.length === 0 ? { ids } : { ids, errors };
}

function storeAndPublish(
  state: DaemonState,
  session: ClientSession,
  requests: InlineBlobRequest[],
): PutBlobsReply | Promise<PutBlobsReply> {
  const published = requests.filter((request) => request.persist || request.name !== undefined).length;
  if (published > 0) state.meta.requireWritable(published === 1 ? 'publish a blob' : `publish ${published} blobs`);
  // Each request carries its labels and lineage: it is its blob's SealExtras as it is.
  const datas = new Array<Uint8Array>(requests.length);
  for (let i = 0; i < requests.length; i++) datas[i] = requests[i].data;
  return whenDone(state.residency.createSealedBlobs(session, datas, requests), (ids) => {
    if (published === 0) return { ids };
    const created: NewObject[] = requests.map((request, i) => ({
      id: ids[i],
      name: request.name,
      override: request.override,
      persist: request.persist,
    }));
    // All of them, so that a failure takes back the whole batch.
    return whenDone(state.meta.publishNew(session, created), () => ({ ids }));
  }) as PutBlobsReply | Promise<PutBlobsReply>;
}
