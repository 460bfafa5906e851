/**
 * The RPC port: TCP, for clients on other machines (connectRpc) and for daemons that copy
 * objects from each other (migrate). It binds to loopback unless told otherwise, since anyone
 * who reaches it can read and write the store; `--rpc-token` adds a shared secret, compared in
 * constant time, that every connection must present in its handshake.
 *
 * With a certificate (--rpc-tls-cert) the port speaks TLS only: a plain client's hello fails the
 * TLS handshake and is dropped before any frame is read. With a CA (--rpc-tls-ca) a client must
 * also show a certificate that CA signed (mutual TLS); the token still applies on top.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { TrellisError } from '../../errors';
import { encodeFrame } from '../../protocol/framing';
import { RpcConnection, type SessionHost } from './rpc-connection';

export interface RpcServerOptions {
  /** 0 picks a free port. */
  port: number;
  host: string;
  token?: string;
  /** Serve TLS with these options (see daemon-tls.ts); default plain TCP. */
  tls?: tls.TlsOptions;
}

export class RpcServer {
  private readonly server: net.Server;
  private readonly connections = new Set<RpcConnection>();
  private readonly tokenDigest?: Buffer;

  private constructor(
    private readonly host: SessionHost,
    options: RpcServerOptions,
  ) {
    this.tokenDigest = options.token === undefined ? undefined : digest(options.token);
    const accept = (socket: net.Socket): void => {
      if (socket instanceof tls.TLSSocket && options.tls?.requestCert && !socket.authorized) {
        const presented = Object.keys(socket.getPeerCertificate()).length > 0;
        const why = presented ? `the one presented fails: ${String(socket.authorizationError)}` : 'none was presented';
        refuse(socket, `this daemon's RPC port requires a client certificate signed by its --rpc-tls-ca; ${why}`);
        return;
      }
      const connection = new RpcConnection(
        socket,
        this.host,
        (token) => this.tokenMatches(token),
        (closed) => this.connections.delete(closed),
      );
      this.connections.add(connection);
    };
    // A TLS server hands over a socket once its handshake passed. OpenSSL asks for the client
    // certificate but leaves the verdict to accept(), so a refused client hears why (a frame)
    // instead of a bare reset; nothing is read from it before that.
    const tlsOptions = options.tls && { ...options.tls, rejectUnauthorized: false };
    this.server = tlsOptions ? tls.createServer(tlsOptions, accept) : net.createServer(accept);
  }

  /** Listens; errors: Conflict (port taken), InvalidArgument (a host it cannot bind). */
  static async start(host: SessionHost, options: RpcServerOptions): Promise<RpcServer> {
    const rpc = new RpcServer(host, options);
    await new Promise<void>((resolve, reject) => {
      rpc.server.once('error', (error: NodeJS.ErrnoException) => {
        const code = error.code === 'EADDRINUSE' ? 'Conflict' : 'InvalidArgument';
        reject(
          new TrellisError(
            code,
            `cannot serve RPC on ${formatEndpoint(options.host, options.port)}: ${error.code ?? error.message}`,
            { cause: error },
          ),
        );
      });
      rpc.server.listen(options.port, options.host, () => resolve());
    });
    return rpc;
  }

  /** host:port as bound (the real port when 0 was asked for). */
  get endpoint(): string {
    const address = this.server.address() as net.AddressInfo;
    return formatEndpoint(address.address, address.port);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.close();
    await closed;
  }

  private tokenMatches(token: unknown): boolean {
    if (this.tokenDigest === undefined) return true;
    if (typeof token !== 'string') return false;
    // Digests have one length whatever the token's, so the comparison takes the same time.
    return timingSafeEqual(digest(token), this.tokenDigest);
  }
}

/** Answers the connection as a whole (seq 0) and closes it, before any of its frames is read. */
function refuse(socket: net.Socket, message: string): void {
  socket.on('error', () => socket.destroy());
  socket.end(encodeFrame({ seq: 0, error: { code: 'PermissionDenied', message } }));
  setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
}

/** How long a refused connection may take to read its answer. */
const REFUSED_LINGER_MS = 1000;

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/**
 * What an operator should know about who can reach the port, said once at start; undefined when
 * a token guards it and nothing crosses the network in the clear.
 */
export function exposureWarning(endpoint: string, options: Omit<RpcServerOptions, 'port'>): string | undefined {
  const loopback = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(options.host);
  if (options.token === undefined) {
    const who = loopback ? 'every local user' : 'every local user and every host that reaches it';
    return (
      `the RPC port ${endpoint} takes no token: ${who} can read, write and delete every object ` +
      '(set TRELLIS_RPC_TOKEN or --rpc-token)'
    );
  }
  if (!loopback && options.tls === undefined) {
    return (
      `the RPC port ${endpoint} is plain TCP beyond loopback: the token and every byte cross the network ` +
      'in the clear (add --rpc-tls-cert and --rpc-tls-key)'
    );
  }
  return undefined;
}

export function formatEndpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
