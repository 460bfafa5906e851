/**
 * TLS on the RPC port, as seen by the calling end (remote clients and daemons that copy from
 * each other): which options a connection takes, and what a failed handshake means.
 *
 * A TLS failure says who refused whom, because "ECONNRESET" does not tell an operator which
 * certificate to fix: the daemon's certificate not trusted here, or a daemon that speaks no TLS.
 * A distrusted certificate is `PermissionDenied`, as a wrong token is; a daemon that speaks no TLS
 * is `Unavailable`. (The daemon refuses a client certificate itself, with a frame that says why:
 * rpc-server.ts; and a TLS port drops a plain client unanswered: rpc-socket.ts says so.)
 */
import type * as tls from 'node:tls';
import { TrellisError } from '../errors';

export type Pem = string | Buffer;

export interface RpcTlsOptions {
  /** CA certificate(s), PEM, that sign the daemon's certificate. Default: Node's trusted CAs. */
  ca?: Pem | Pem[];
  /** This end's certificate and key, PEM: needed by a daemon started with --rpc-tls-ca (mutual TLS). */
  cert?: Pem;
  key?: Pem;
  /** The name the daemon's certificate must carry, when it is not the endpoint's host. */
  servername?: string;
}

/** Options for tls.connect. Errors: InvalidArgument (a cert without its key, or the reverse). */
export function tlsConnectOptions(options: RpcTlsOptions): tls.ConnectionOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TrellisError('InvalidArgument', `tls must be an object such as { ca }, got ${String(options)}`);
  }
  if ((options.cert === undefined) !== (options.key === undefined)) {
    const [given, missing] = options.cert === undefined ? ['key', 'cert'] : ['cert', 'key'];
    throw new TrellisError('InvalidArgument', `tls.${given} was given without tls.${missing}`);
  }
  // rejectUnauthorized stays true: there is no option to talk to a daemon whose certificate fails.
  const { ca, cert, key, servername } = options;
  return { ca, cert, key, servername, rejectUnauthorized: true };
}

/** OpenSSL's verdicts on the daemon's certificate, as Node names them. */
const UNTRUSTED_PEER = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** What a server that speaks no TLS answers to a ClientHello, as OpenSSL reads it. */
const NOT_TLS = /^ERR_SSL_(WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE|UNKNOWN_PROTOCOL)$/;

/** A TLS error as a TrellisError naming the endpoint and the fix; undefined for any other error. */
export function tlsFailure(endpoint: string, error: Error): TrellisError | undefined {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (UNTRUSTED_PEER.has(code)) {
    return new TrellisError(
      'PermissionDenied',
      `the TLS certificate of trellisd at ${endpoint} is not trusted here (${code}: ${error.message}); ` +
        'check tls.ca and tls.servername',
      { cause: error },
    );
  }
  if (NOT_TLS.test(code)) {
    const message =
      `trellisd at ${endpoint} does not speak TLS on that port (${code}); it serves plain RPC: ` +
      'connect without tls';
    return new TrellisError('Unavailable', message, { cause: error });
  }
  return undefined;
}
