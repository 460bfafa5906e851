/**
 * A request kind the daemon does not know. Daemons of every version answer it with ProtocolError
 * and this message, and keep the connection: a newer client tells an older daemon apart by it and
 * falls back to the kinds that daemon has (abortBlobs -> one abort each).
 */
import { TrellisError } from '../errors';

const UNKNOWN_KIND = 'unknown request kind';

/** The message for `kind` (already described: quoted, or its type), with where it came in. */
export function unknownKindMessage(describedKind: string, where = ''): string {
  return `${UNKNOWN_KIND} ${describedKind}${where}`;
}

/** The daemon did not know the request's kind (an older version). */
export function isUnknownKind(error: unknown): boolean {
  return error instanceof TrellisError && error.code === 'ProtocolError' && error.message.startsWith(UNKNOWN_KIND);
}
