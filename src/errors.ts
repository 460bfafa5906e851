/**
 * TrellisError and the one list of error codes. The same strings travel on the wire, come out
 * of the native addon and reach users: there is no second code set to map between.
 */

export const ERROR_CODES = [
  'ObjectNotFound',
  'NameNotFound',
  'NameExists',
  'NotSealed',
  'AlreadySealed',
  'OutOfMemory',
  'InvalidArgument',
  'TypeMismatch',
  'StreamOpened',
  'StreamFailed',
  'ConnectionClosed',
  'ProtocolError',
  'PermissionDenied',
  'RemoteObject',
  'Expired',
  'HashMismatch',
  'Conflict',
  'Unavailable',
  'ParseError',
  'IOError',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

export class TrellisError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TrellisError';
    this.code = KNOWN_CODES.has(code) ? code : 'ProtocolError';
  }
}

export function isTrellisError(error: unknown, code?: ErrorCode): error is TrellisError {
  return error instanceof TrellisError && (code === undefined || error.code === code);
}

/** An error as it crosses the wire. */
export interface WireError {
  code: string;
  message: string;
}

export function toWireError(error: unknown): WireError {
  if (error instanceof TrellisError) return { code: error.code, message: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'ProtocolError', message: `internal error: ${message}` };
}

/** The one place a wire error becomes a TrellisError; an unknown code is a ProtocolError. */
export function fromWireError(wire: WireError): TrellisError {
  const code = KNOWN_CODES.has(wire.code) ? (wire.code as ErrorCode) : 'ProtocolError';
  const message = code === wire.code ? wire.message : `${wire.code}: ${wire.message}`;
  return new TrellisError(code, message);
}
