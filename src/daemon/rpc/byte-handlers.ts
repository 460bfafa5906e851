/**
 * The kinds only the RPC port serves: reading and writing blob bytes, which a remote session
 * cannot map. Typed against protocol/messages.ts like dispatch.ts, so a byte kind added there and
 * not handled here fails to compile. Every other kind goes through dispatch.ts unchanged.
 */
import { TrellisError } from '../../errors';
import type { BlobLocation, ReplyOf, RpcOnlyKind } from '../../protocol/messages';
import type { RequestContext } from '../request-context';
import * as check from '../validate';

export type ByteKind = Exclude<RpcOnlyKind, 'registerRpc'>;

/** A reply whose bytes are written to the socket from where they lie, not copied into a frame. */
export class BytesReply {
  constructor(readonly parts: Uint8Array[]) {}
}

type ByteHandler<K extends ByteKind> = (
  ctx: RequestContext,
  body: check.Body,
  maxBytes: number,
) => ReplyOf<K> | BytesReply;

/** Ranges in one readBlobs request; their bytes are bounded by the frame limit as well. */
export const MAX_RANGES_PER_READ = 10_000;

export const byteHandlers: { [K in ByteKind]: ByteHandler<K> } = {
  /**
   * The bytes of blobs this session holds (getBlobs or getObject first), at most `maxBytes` in
   * all, so that no reply is larger than a frame the daemon itself accepts. The views are of
   * shared memory: the session's references keep them valid while they are written out.
   * Errors: InvalidArgument, ObjectNotFound, PermissionDenied, TypeMismatch.
   */
  readBlobs({ state, session }, body, maxBytes) {
    const ranges = body.ranges;
    if (!Array.isArray(ranges) || ranges.length > MAX_RANGES_PER_READ) {
      throw new TrellisError(
        'InvalidArgument',
        `readBlobs: ranges must be a list of at most ${MAX_RANGES_PER_READ}, got ${check.describe(ranges)}`,
      );
    }
    const checked = ranges.map((range) => {
      const fields = check.expectBody('readBlobs', range);
      const id = check.objectId('readBlobs', fields);
      const offset = check.nonNegativeInteger('readBlobs', fields, 'offset');
      const length = check.nonNegativeInteger('readBlobs', fields, 'length');
      const location = state.table.locate(session, id, 'read');
      checkBounds('readBlobs', location, offset, length);
      return { location, offset, length };
    });
    const total = checked.reduce((sum, range) => sum + range.length, 0);
    if (total > maxBytes) {
      throw new TrellisError(
        'InvalidArgument',
        `readBlobs: ${total} bytes asked for at once; at most ${maxBytes} per request`,
      );
    }
    return new BytesReply(
      checked.map(({ location, offset, length }) => state.pool.memory.read(location, offset, length)),
    );
  },

  /**
   * Copies a chunk into this session's unsealed blob.
   * Errors: InvalidArgument, ObjectNotFound, AlreadySealed, PermissionDenied.
   */
  writeBlob({ state, session }, body) {
    const id = check.objectId('writeBlob', body);
    const offset = check.nonNegativeInteger('writeBlob', body, 'offset');
    const data = check.bytes('writeBlob', body, 'data');
    const location = state.table.locate(session, id, 'write');
    checkBounds('writeBlob', location, offset, data.byteLength);
    state.pool.memory.write(location, offset, data);
    return {};
  },
};

function checkBounds(kind: string, location: BlobLocation, offset: number, length: number): void {
  if (offset + length > location.size) {
    throw new TrellisError(
      'InvalidArgument',
      `${kind}: bytes [${offset}, ${offset + length}) are outside blob ${location.id} of ${location.size} bytes`,
    );
  }
}

export function isByteKind(kind: unknown): kind is ByteKind {
  return typeof kind === 'string' && Object.prototype.hasOwnProperty.call(byteHandlers, kind);
}
