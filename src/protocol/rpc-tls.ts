/**
 * TLS on the RPC port, as seen by the calling end (remote clients and daemons that copy from
 * each other): which options a connection takes, and what a failed handshake means.
 *
 * A TLS failure says who refused whom, because "ECONNRESET" does not tell an operator which
 * certificate to fix: the daemon's certificate not trusted here, this end's certificate refused
 * there, or one side speaking TLS and the other not. Refusals of credentials are
 * `PermissionDenied`, as a wrong token is; a daemon that does not speak TLS is `Unavailable`.
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
    throw new TrellisError('InvalidArgument', `tls.${options.cert === undefined ? 'key' : 'cert'} was given without tls.${options.cert === undefined ? 'cert' : 'key'}`);
  }
  // rejectUnauthorized stays true: there is no option to talk to a daemon whose certificate fails.
  return { ca: options.ca, cert: options.cert, key: options.key, servername: options.servername, rejectUnauthorized: true };
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

/** A TLS alert the daemon sent: it refused this end's certificate (or the lack of one). */
const REFUSED_BY_PEER = /^ERR_SSL_(TLSV13_ALERT_CERTIFICATE_REQUIRED|SSLV3_ALERT_BAD_CERTIFICATE|TLSV1_ALERT_UNKNOWN_CA|SSLV3_ALERT_CERTIFICATE_\w+|TLSV1_ALERT_(ACCESS_DENIED|DECRYPT_ERROR))$/;

/** What a server that speaks no TLS answers to a ClientHello, as OpenSSL reads it. */
const NOT_TLS = /^ERR_SSL_(WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE|UNKNOWN_PROTOCOL|HTTP_REQUEST)$/;

/** A TLS error as a TrellisError naming the endpoint and the fix; undefined for any other error. */
export function tlsFailure(endpoint: string, error: Error): TrellisError | undefined {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (UNTRUSTED_PEER.has(code)) {
    return new TrellisError(
      'PermissionDenied',
      `the TLS certificate of trellisd at ${endpoint} is not trusted here (${code}: ${error.message}); check tls.ca and tls.servername`,
      { cause: error },
    );
  }
  if (REFUSED_BY_PEER.test(code)) {
    return new TrellisError(
      'PermissionDenied',
      `trellisd at ${endpoint} refused this end's TLS client certificate (${code}); it requires one signed by its --rpc-tls-ca: pass tls.cert and tls.key`,
      { cause: error },
    );
  }
  if (NOT_TLS.test(code)) {
    return new TrellisError('Unavailable', `trellisd at ${endpoint} does not speak TLS on that port (${code}); it serves plain RPC: connect without tls`, {
      cause: error,
    });
  }
  return undefined;
}

/** The first bytes of a TLS record (handshake or alert, TLS 1.x) where a plain client expected a frame. */
export function looksLikeTls(chunk: Buffer): boolean {
  return chunk.length >= 2 && (chunk[0] === 0x15 || chunk[0] === 0x16) && chunk[1] === 0x03;
}

export function tlsRequired(endpoint: string): TrellisError {
  return new TrellisError('PermissionDenied', `trellisd at ${endpoint} requires TLS on its RPC port (--rpc-tls-cert): connect with { tls: { ca } }`);
}
