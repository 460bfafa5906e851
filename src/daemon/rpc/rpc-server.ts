/**
 * The RPC port: TCP, for clients on other machines (connectRpc) and for daemons that copy
 * objects from each other (migrate). It binds to loopback unless told otherwise, since anyone
 * who reaches it can read and write the store; `--rpc-token` adds a shared secret, compared in
 * constant time, that every connection must present in its handshake.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import { TrellisError } from '../../errors';
import { RpcConnection, type SessionHost } from './rpc-connection';


export interface RpcServerOptions {
  /** 0 picks a free port. */
  port: number;
  host: string;
  token?: string;
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
    this.server = net.createServer((socket) => {
      const connection = new RpcConnection(socket, this.host, (token) => this.tokenMatches(token), (closed) => this.connections.delete(closed));
      this.connections.add(connection);
    });
  }

  /** Listens; errors: Conflict (port taken), InvalidArgument (a host it cannot bind). */
  static async start(host: SessionHost, options: RpcServerOptions): Promise<RpcServer> {
    const rpc = new RpcServer(host, options);
    await new Promise<void>((resolve, reject) => {
      rpc.server.once('error', (error: NodeJS.ErrnoException) => {
        const code = error.code === 'EADDRINUSE' ? 'Conflict' : 'InvalidArgument';
        reject(new TrellisError(code, `cannot serve RPC on ${formatEndpoint(options.host, options.port)}: ${error.code ?? error.message}`, { cause: error }));
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

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function formatEndpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
