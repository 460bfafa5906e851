/**
 * Other daemons, as this one reaches them to copy objects: where each instance serves RPC (the
 * directory) and one connection per peer, reused while it stays up (the pool).
 *
 * The directory asks the cluster view (etcd membership) when the daemon is in a cluster; peers
 * given on the command line (`--rpc-peer ID=HOST:PORT`) answer for daemons without etcd, and
 * for tests.
 */
import { TrellisError } from '../../errors';
import { RpcSocket, type RpcSocketOptions } from '../../protocol/rpc-socket';

/** What the directory needs from a cluster view: InstanceView and Membership both fit. */
export interface ClusterDirectory {
  instance(instanceId: number): { rpcEndpoint: string | null; alive: boolean } | undefined;
}

/** A peer connection unused for this long is closed, so the peer can let go of its session. */
export const PEER_IDLE_MS = 30_000;

export class PeerDirectory {
  /** `cluster`, when the daemon is in one, is asked before the static peers. */
  constructor(
    private readonly staticPeers: ReadonlyMap<number, string> = new Map(),
    private readonly cluster?: ClusterDirectory,
  ) {}

  /** Errors: Unavailable (unknown instance, no longer alive, or serving no RPC). */
  endpointOf(instanceId: number): string {
    const member = this.cluster?.instance(instanceId);
    if (member) {
      if (!member.alive)
        throw new TrellisError(
          'Unavailable',
          `instance ${instanceId} has left the cluster; its objects cannot be copied`,
        );
      if (member.rpcEndpoint) return member.rpcEndpoint;
      throw new TrellisError('Unavailable', `instance ${instanceId} serves no RPC port (start it with --rpc-port)`);
    }
    const endpoint = this.staticPeers.get(instanceId);
    if (endpoint) return endpoint;
    throw new TrellisError(
      'Unavailable',
      `instance ${instanceId} is unknown here: join the same cluster (--etcd) or name its RPC endpoint with --rpc-peer ${instanceId}=HOST:PORT`,
    );
  }
}

interface PooledPeer {
  socket: Promise<RpcSocket>;
  idle?: NodeJS.Timeout;
  users: number;
}

export class PeerPool {
  private readonly peers = new Map<string, PooledPeer>();

  constructor(private readonly options: RpcSocketOptions) {}

  /**
   * Runs `use` with a connection to the peer at `endpoint`, connecting first if needed. A
   * connection that fails is dropped, so the next call connects afresh.
   * Errors: Unavailable, PermissionDenied, and whatever `use` throws.
   */
  async with<T>(endpoint: string, use: (peer: RpcSocket) => Promise<T>): Promise<T> {
    const pooled = this.peer(endpoint);
    pooled.users++;
    clearTimeout(pooled.idle);
    try {
      return await use(await pooled.socket);
    } finally {
      if (--pooled.users === 0 && this.peers.get(endpoint) === pooled) {
        pooled.idle = setTimeout(() => this.drop(endpoint, pooled), PEER_IDLE_MS);
        pooled.idle.unref();
      }
    }
  }

  close(): void {
    for (const [endpoint, pooled] of [...this.peers]) this.drop(endpoint, pooled);
  }

  private peer(endpoint: string): PooledPeer {
    const known = this.peers.get(endpoint);
    if (known) return known;
    const pooled: PooledPeer = { socket: RpcSocket.connect(endpoint, this.options), users: 0 };
    this.peers.set(endpoint, pooled);
    pooled.socket.then(
      (socket) => socket.onClose(() => this.forget(endpoint, pooled)),
      () => this.forget(endpoint, pooled),
    );
    return pooled;
  }

  private forget(endpoint: string, pooled: PooledPeer): void {
    clearTimeout(pooled.idle);
    if (this.peers.get(endpoint) === pooled) this.peers.delete(endpoint);
  }

  private drop(endpoint: string, pooled: PooledPeer): void {
    this.forget(endpoint, pooled);
    pooled.socket.then(
      (socket) => socket.close(),
      () => undefined,
    );
  }
}
