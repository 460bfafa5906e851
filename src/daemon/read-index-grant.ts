/**
 * openReadIndex: grants the read index's fd (as segment READ_INDEX_SEGMENT) to a local client.
 * An RPC session maps nothing, so it gets size 0 and reads through the daemon as before.
 */
import type { ReplyOf } from '../protocol/messages';
import { READ_INDEX_SEGMENT } from '../protocol/read-index-layout';
import type { RequestContext } from './request-context';

export function openReadIndex(ctx: RequestContext): ReplyOf<'openReadIndex'> {
  const index = ctx.state.readIndex;
  if (!index || !ctx.mapsSegments) return { size: 0 };
  ctx.grant(READ_INDEX_SEGMENT);
  return { size: index.segment.size };
}
