/**
 * The daemon's one connection to etcd: an `etcd3` client namespaced under `<prefix>/`, tuned to
 * fail fast, and the one place where etcd and gRPC errors become TrellisErrors.
 *
 * Why fail fast: a cluster call made while etcd is unreachable must answer `Unavailable` in
 * bounded time (API.md, "Cluster"), never hang a client. So every unary call gets a deadline,
 * etcd3's hidden retries are turned off (three silent attempts triple the wait; callers that
 * want to retry do so with their own backoff), and `run` races each operation against a
 * timer, which also bounds calls that have no gRPC deadline of their own (creating a watch).
 *
 * Every failure is `Unavailable` to clients, but a caller that retries in the background tells
 * the two kinds apart (mayWorkLater): etcd did not answer, or it answered no.
 */
import {
  EtcdLeaseInvalidError,
  Etcd3,
  GRPCGenericError,
  isRecoverableError,
  type IOptions,
  type Namespace,
} from 'etcd3';
import { TrellisError, isTrellisError } from '../../errors';

export const DEFAULT_ETCD_PREFIX = 'trellis';
export const DEFAULT_CALL_TIMEOUT_MS = 2_000;
/** gRPC reconnects at most this far apart, so a restarted etcd is found again within a second. */
const MAX_RECONNECT_BACKOFF_MS = 1_000;
/** HTTP/2 pings find a silently dead link; etcd refuses pings closer than 5 s apart. */
const GRPC_KEEPALIVE_TIME_MS = 10_000;
const GRPC_KEEPALIVE_TIMEOUT_MS = 3_000;
/** How long etcd3's watch manager waits before reconnecting a broken watch stream. */
const WATCH_RECONNECT_MS = 500;

export interface EtcdConnectionOptions {
  /** Client URLs, such as 'http://127.0.0.1:2379' (a comma-separated string is split). */
  endpoints: string | readonly string[];
  /** Keys live under `<prefix>/`; daemons with the same endpoints and prefix are one cluster. */
  prefix?: string;
  /** Deadline for each etcd call, in milliseconds. */
  callTimeoutMs?: number;
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;

/**
 * A cockatiel policy that just calls through. etcd3 only ever calls `execute`; building the
 * object here keeps cockatiel (etcd3's dependency, not ours) out of our imports.
 */
const callThrough = {
  execute: async <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> =>
    fn({ signal: new AbortController().signal }),
} as unknown as NonNullable<FaultHandling['global']>;

const constantWatchBackoff = {
  duration: WATCH_RECONNECT_MS,
  next() {
    return this;
  },
} as unknown as NonNullable<FaultHandling['watchBackoff']>;

export class EtcdConnection {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly callTimeoutMs: number;
  /** The etcd3 API with every key under `<prefix>/`. Call it through `run`. */
  readonly kv: Namespace;
  private readonly client: Etcd3;
  private readonly closeHooks = new Set<() => void>();
  private closed = false;

  /** Errors: InvalidArgument. */
  constructor(options: EtcdConnectionOptions) {
    const endpoints = typeof options.endpoints === 'string' ? options.endpoints.split(',') : [...options.endpoints];
    this.endpoints = endpoints.map((endpoint) => endpoint.trim()).filter((endpoint) => endpoint !== '');
    if (this.endpoints.length === 0)
      throw new TrellisError('InvalidArgument', 'etcd needs at least one endpoint, such as http://127.0.0.1:2379');
    for (const endpoint of this.endpoints) {
      if (!/^https?:\/\/[^/\s]+\/?$/.test(endpoint)) {
        throw new TrellisError(
          'InvalidArgument',
          `etcd endpoint ${JSON.stringify(endpoint)} is not a URL such as http://127.0.0.1:2379`,
        );
      }
    }
    this.prefix = (options.prefix ?? DEFAULT_ETCD_PREFIX).replace(/\/+$/, '');
    if (this.prefix === '' || /\s/.test(this.prefix)) {
      throw new TrellisError(
        'InvalidArgument',
        `etcd prefix ${JSON.stringify(options.prefix)} must be a non-empty word such as "trellis"`,
      );
    }
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    if (!(this.callTimeoutMs > 0))
      throw new TrellisError('InvalidArgument', `etcd call timeout must be positive, got ${this.callTimeoutMs}`);

    this.client = new Etcd3({
      hosts: [...this.endpoints],
      // Streams (watches, lease keep-alives) live on; every other call gets a deadline.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + this.callTimeoutMs }),
      faultHandling: { global: callThrough, host: () => callThrough, watchBackoff: constantWatchBackoff },
      grpcOptions: {
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': MAX_RECONNECT_BACKOFF_MS,
        'grpc.keepalive_time_ms': GRPC_KEEPALIVE_TIME_MS,
        'grpc.keepalive_timeout_ms': GRPC_KEEPALIVE_TIMEOUT_MS,
      },
    });
    this.kv = this.client.namespace(`${this.prefix}/`);
  }

  /**
   * Runs one etcd operation under the call timeout. The chokepoint for errors: anything etcd,
   * gRPC or etcd3 throws becomes `Unavailable` (with the original as `cause`); a TrellisError
   * thrown by `operation` itself passes through. `what` completes "could not ..." in messages.
   * Errors: Unavailable, or whatever TrellisError `operation` throws.
   */
  async run<T>(what: string, operation: (kv: Namespace) => Promise<T>): Promise<T> {
    if (this.closed) throw new TrellisError('Unavailable', `could not ${what}: the etcd connection is closed`);
    let timer: NodeJS.Timeout | undefined;
    const attempt = Promise.resolve().then(() => operation(this.kv));
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TrellisError(
              'Unavailable',
              `could not ${what}: etcd at ${this.describe()} did not answer within ${this.callTimeoutMs} ms`,
            ),
          ),
        this.callTimeoutMs,
      );
    });
    try {
      return await Promise.race([attempt, timeout]);
    } catch (error) {
      // A late answer to an abandoned call must not surface as an unhandled rejection.
      attempt.catch(() => undefined);
      throw this.toTrellisError(what, error);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The conversion `run` applies, for errors that arrive through events (leases, watches). */
  toTrellisError(what: string, error: unknown): TrellisError {
    if (isTrellisError(error)) return error;
    const detail = error instanceof Error ? error.message : String(error);
    return new TrellisError('Unavailable', `could not ${what}: etcd at ${this.describe()} failed: ${detail}`, {
      cause: error,
    });
  }

  describe(): string {
    return this.endpoints.join(',');
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Runs `hook` when the connection closes, returning a function that unregisters it. etcd3
   * keeps retrying a lease keep-alive forever, even on a closed client, and that timer would
   * keep the process alive: whoever holds a lease releases it here.
   */
  onClose(hook: () => void): () => void {
    this.closeHooks.add(hook);
    return () => this.closeHooks.delete(hook);
  }

  /**
   * Closes the gRPC channels. Leases are released, not revoked: their keys stay until the TTL
   * runs out. Membership.leave() first removes them at once.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const hook of [...this.closeHooks]) {
      try {
        hook();
      } catch {
        // One holder failing to let go must not keep the others from it.
      }
    }
    this.closeHooks.clear();
    this.client.close();
  }
}

/**
 * Whether an etcd call that failed with `error` (from `run` or `toTrellisError`) may work if
 * made again: etcd did not answer (the call deadline, no connection, a server without a leader
 * or overloaded: what etcd3 marks recoverable, and failures it could not name). An answer that
 * will not change ("requested lease not found", "permission denied", a request etcd refuses) is
 * not worth retrying, nor is an error thrown by the operation itself.
 */
export function mayWorkLater(error: unknown): boolean {
  if (!isTrellisError(error, 'Unavailable')) return false;
  const cause = error.cause;
  // No cause: this connection's own deadline, or the connection was closed.
  if (cause === undefined) return true;
  if (!(cause instanceof Error)) return false;
  return isRecoverableError(cause) || cause.constructor === GRPCGenericError;
}

/** Whether etcd answered that the lease a call named is gone (expired or revoked). */
export function isLeaseNotFound(error: unknown): boolean {
  return isTrellisError(error, 'Unavailable') && error.cause instanceof EtcdLeaseInvalidError;
}
