/**
 * What a client makes of a reply whose seq has no request waiting, on the local socket
 * (client/ipc.ts) and the RPC port (rpc-socket.ts) alike. Neither end ever stops waiting for a
 * request on a live connection: the local socket has no deadlines, and an RPC request that misses
 * its deadline closes the whole connection (the peer is treated as gone), so no late reply can be
 * read after it. A reply with such a seq was therefore never asked for, or is a second answer.
 */
import { fromWireError, TrellisError } from '../errors';
import type { ReplyEnvelope } from './messages';

/**
 * The error that ends the connection: for an error with seq 0, the daemon's own (it refuses the
 * connection as a whole and closes it); for anything else, a ProtocolError naming `peer` and the
 * seq (a broken daemon, or something else at that address).
 */
export function replyNotWaiting(peer: string, envelope: ReplyEnvelope): TrellisError {
  if (envelope.error) {
    if (envelope.seq === 0) return fromWireError(envelope.error);
    const { code, message } = envelope.error;
    return new TrellisError(
      'ProtocolError',
      `${peer} sent an error for request ${envelope.seq}, which is not waiting (${code}: ${message})`,
    );
  }
  return new TrellisError('ProtocolError', `${peer} sent a reply to request ${envelope.seq}, which is not waiting`);
}
