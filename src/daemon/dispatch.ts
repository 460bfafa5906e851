/**
 * One handler per request kind. The mapped type makes this table exhaustive: a kind added to
 * protocol/messages.ts and not handled here fails to compile.
 */
import type { ClientKind, ReplyOf } from '../protocol/messages';
import type { DaemonStatus } from '../protocol/messages';
import type { ObjectTable } from './object-table';
import type { SegmentPool } from './segment-pool';
import type { ClientSession } from './session';
import * as check from './validate';

export interface DaemonState {
  readonly table: ObjectTable;
  readonly pool: SegmentPool;
  readonly instanceId: number;
  readonly socketPath: string;
  readonly version: string;
  clientCount(): number;
}

export interface RequestContext {
  readonly state: DaemonState;
  readonly session: ClientSession;
  /** Sends the segment's fd to this client unless it already has it. */
  grant(segment: number): void;
  /**
   * Undefined once the client's fd channel is attached; until then a promise for it. The first
   * request that needs fds can overtake the channel's attach frame, which comes on another socket.
   */
  untilFdChannel(): Promise<void> | undefined;
}

type Handler<K extends ClientKind> = (ctx: RequestContext, body: check.Body) => ReplyOf<K> | Promise<ReplyOf<K>>;

export const DEFAULT_LIST_LIMIT = 1000;

export const handlers: { [K in ClientKind]: Handler<K> } = {
  createBlob(ctx, body) {
    const { state, session, grant } = ctx;
    const size = check.nonNegativeInteger('createBlob', body, 'size');
    const typename = check.optionalTypename('createBlob', body);
    const attaching = ctx.untilFdChannel();
    if (attaching) return attaching.then(() => handlers.createBlob(ctx, body));
    const blob = state.table.createBlob(session, size, typename);
    try {
      grant(blob.segment);
    } catch (error) {
      state.table.abort(session, blob.id);
      throw error;
    }
    return blob;
  },

  seal({ state, session }, body) {
    const id = check.objectId('seal', body);
    state.table.seal(session, id);
    return { id };
  },

  abort({ state, session }, body) {
    state.table.abort(session, check.objectId('abort', body));
    return {};
  },

  getBlobs(ctx, body) {
    const { state, session, grant } = ctx;
    const ids = check.objectIds('getBlobs', body);
    const attaching = ctx.untilFdChannel();
    if (attaching) return attaching.then(() => handlers.getBlobs(ctx, body));
    const blobs = state.table.getBlobs(session, ids);
    for (const blob of blobs) grant(blob.segment);
    return { blobs };
  },

  release({ state, session }, body) {
    state.table.release(session, check.objectIds('release', body));
    return {};
  },

  delete({ state, session }, body) {
    const ids = check.objectIds('delete', body);
    return { deleted: state.table.delete(session, ids) };
  },

  exists({ state }, body) {
    return { exists: state.table.exists(check.objectId('exists', body)) };
  },

  listObjects({ state }, body) {
    const pattern = check.optionalString('listObjects', body, 'pattern');
    const limit = check.nonNegativeInteger('listObjects', body, 'limit', DEFAULT_LIST_LIMIT);
    return { objects: state.table.list(pattern, limit) };
  },

  status({ state }): DaemonStatus {
    return {
      instanceId: state.instanceId,
      pid: process.pid,
      socket: state.socketPath,
      version: state.version,
      memoryUsage: state.pool.used,
      memoryLimit: state.pool.policy.limit,
      memoryReserved: state.pool.reserved,
      segments: state.pool.count,
      objects: state.table.size,
      clients: state.clientCount(),
      deferredFrees: state.table.deferredCount,
    };
  },
};

export function isClientKind(kind: unknown): kind is ClientKind {
  return typeof kind === 'string' && Object.prototype.hasOwnProperty.call(handlers, kind);
}
