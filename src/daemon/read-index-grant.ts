/**
 * openReadIndex: grants the read index's fd (as segment READ_INDEX_SEGMENT) to a local client,
 * and with `holds`, the client's own hold counters (READ_INDEX_HOLDS_SEGMENT, index-holds.ts),
 * so that it may hand out views of indexed blobs. An RPC session maps nothing, so it gets size 0
 * and reads through the daemon as before.
 */
import { isTrellisError } from '../errors';
import type { ReplyOf, RequestOf } from '../protocol/messages';
import { READ_INDEX_HOLDS_SEGMENT, READ_INDEX_SEGMENT } from '../protocol/read-index-layout';
import { daemonLog } from './log';
import type { RequestContext } from './request-context';

export function openReadIndex(ctx: RequestContext, body: RequestOf<'openReadIndex'>): ReplyOf<'openReadIndex'> {
  const index = ctx.state.readIndex;
  if (!index || !ctx.mapsSegments) return { size: 0 };
  ctx.grant(READ_INDEX_SEGMENT);
  const reply: ReplyOf<'openReadIndex'> = { size: index.segment.size };
  if (body.holds !== true) return reply;
  try {
    ctx.grant(READ_INDEX_HOLDS_SEGMENT);
    reply.holds = index.slots * 4;
  } catch (error) {
    // No memory for the counters: the client copies, or gets views through the daemon, as before.
    if (!isTrellisError(error, 'OutOfMemory')) throw error;
    daemonLog().warn(`no read index holds for client ${ctx.session.clientId}: ${error.message}`);
  }
  return reply;
}
