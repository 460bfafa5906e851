/**
 * The daemon's TLS material (--rpc-tls-cert, --rpc-tls-key, --rpc-tls-ca), read once at start,
 * and the two ways it is used: serving the RPC port, and reaching peer daemons to copy objects.
 *
 * One CA decides both directions on purpose. With --rpc-tls-ca, the port accepts only clients
 * whose certificate the CA signed, and this daemon reaches its peers the same way: it checks
 * their certificates against that CA and shows its own. Without it, the port takes any TLS client
 * (the token, if set, still applies) and peers are checked against Node's trusted CAs.
 *
 * The files are read with the daemon's privileges, but they are the operator's command line,
 * never a client's request.
 */
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import { TrellisError } from '../../errors';
import type { RpcTlsOptions } from '../../protocol/rpc-tls';
import { HANDSHAKE_TIMEOUT_MS } from '../framed-connection';

export interface DaemonTls {
  /** For tls.createServer. */
  server: tls.TlsOptions;
  /** For this daemon's connections to its peers. */
  peers: RpcTlsOptions;
}

export interface TlsFiles {
  rpcTlsCert?: string;
  rpcTlsKey?: string;
  rpcTlsCa?: string;
}

/** Errors: IOError (a file that cannot be read), InvalidArgument (a certificate or key OpenSSL refuses). */
export function loadDaemonTls(files: TlsFiles): DaemonTls | undefined {
  if (files.rpcTlsCert === undefined || files.rpcTlsKey === undefined) return undefined;
  const cert = readPem('--rpc-tls-cert', files.rpcTlsCert);
  const key = readPem('--rpc-tls-key', files.rpcTlsKey);
  const ca = files.rpcTlsCa === undefined ? undefined : readPem('--rpc-tls-ca', files.rpcTlsCa);
  try {
    // Fails now, at start, rather than on the first connection.
    tls.createSecureContext({ cert, key, ca });
  } catch (error) {
    const which = [files.rpcTlsCert, files.rpcTlsKey, files.rpcTlsCa].filter((file) => file !== undefined).join(', ');
    const message = `cannot use the TLS files ${which}: ${(error as Error).message}`;
    throw new TrellisError('InvalidArgument', message, { cause: error });
  }
  const mutual = ca !== undefined;
  return {
    // The RPC server checks the client's certificate itself (rpc-server.ts), to say why it refuses one.
    server: { cert, key, ca, requestCert: mutual, handshakeTimeout: HANDSHAKE_TIMEOUT_MS },
    peers: mutual ? { ca, cert, key } : {},
  };
}

function readPem(flag: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new TrellisError('IOError', `${flag} ${file}: ${why}`, { cause: error });
  }
}
