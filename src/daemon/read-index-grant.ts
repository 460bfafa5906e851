/**
 * openReadIndex: grants the read index's fd (as segment READ_INDEX_SEGMENT) to a local client,
 * and with `holds`, the client's own hold counters (READ_INDEX_HOLDS_SEGMENT, index-holds.ts),
 * so that it may hand out views of indexed blobs, and with `segments`, the fds of the pool's
 * segments: a new process's first get of a blob is then answered from the index with no request
 * at all (docs/read-index.md, "Segments at connect"). An RPC session maps nothing, so it gets
 * size 0 and reads through the daemon as before.
 */
import { isTrellisError, TrellisError } from '../errors';
import type { ReplyOf, RequestOf } from '../protocol/messages';
import {
  READ_INDEX_CONNECT_SEGMENTS,
  READ_INDEX_HOLDS_SEGMENT,
  READ_INDEX_SEGMENT,
} from '../protocol/read-index-layout';
import { daemonLog } from './log';
import type { RequestContext } from './request-context';

export function openReadIndex(ctx: RequestContext, body: RequestOf<'openReadIndex'>): ReplyOf<'openReadIndex'> {
  const index = ctx.state.readIndex;
  if (!index || !ctx.mapsSegments) return { size: 0 };
  ctx.grant(READ_INDEX_SEGMENT);
  const reply: ReplyOf<'openReadIndex'> = { size: index.segment.size };
  if (body.segments === true) reply.segments = grantPoolSegments(ctx);
  if (body.holds !== true) return reply;
  try {
    ctx.grant(READ_INDEX_HOLDS_SEGMENT);
    reply.holds = index.holdsBytes;
  } catch (error) {
    // No memory for the counters: the client copies, or gets views through the daemon, as before.
    if (!isTrellisError(error, 'OutOfMemory')) throw error;
    daemonLog().warn(`no read index holds for client ${ctx.session.clientId}: ${error.message}`);
  }
  return reply;
}

/**
 * Sends the fds of the pool's first READ_INDEX_CONNECT_SEGMENTS segments; returns how many this
 * client now has. A send that fails ends it: the rest come with the gets that need them, as
 * they did before this grant existed.
 */
function grantPoolSegments(ctx: RequestContext): number {
  const ids = ctx.state.pool.segmentIds.slice(0, READ_INDEX_CONNECT_SEGMENTS);
  let granted = 0;
  for (const segment of ids) {
    try {
      ctx.grant(segment);
    } catch (error) {
      if (!(error instanceof TrellisError)) throw error;
      daemonLog().warn(`client ${ctx.session.clientId}: segment ${segment} not granted at connect: ${error.message}`);
      break;
    }
    granted++;
  }
  return granted;
}
