/**
 * The daemon: listens on a UNIX socket, checks who connects, and owns the object table and the
 * shared memory. `startDaemon` is the programmatic entry (tests, embedding); bin/trellisd wraps it.
 *
 * This is the one place that builds the daemon's parts and hands each its collaborators in its
 * constructor; it also picks the metadata backend, once (local, or etcd with --etcd), and puts
 * the durable layer over it with --data-dir.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { TrellisError } from '../errors';
import { VERSION } from '../version';
import { native, type PeerCredentials } from '../native';
import { IdGenerator } from '../protocol/ids';
import { defaultSocketDir } from '../protocol/socket-path';
import type { ClusterLink, ClusterMetadata } from './cluster/cluster-metadata';
import { ArchiveIndex } from './archive-index';
import { Connection, type ConnectionHost } from './connection';
import { DurableMetadata } from './durable/durable-metadata';
import { DurableStore } from './durable/durable-store';
import type { HttpServer } from './http/http-server';
import { configureDaemonLog } from './log';
import { MachineCapacity } from './machine-capacity';
import { LocalMetadata } from './metadata/local-metadata';
import { logMembership } from './metadata/membership-log';
import type { MetaService } from './metadata/meta-service';
import { MemoryPolicy } from './memory-policy';
import { NameTable } from './names';
import { ObjectTable } from './object-table';
import type { DaemonState } from './request-context';
import { RequestStats, type KindStats } from './request-stats';
import { resolveOptions, type DaemonOptions, type ResolvedOptions } from './options';
import { SegmentPool } from './segment-pool';
import { Residency } from './residency';
import { RemoteObjects } from './rpc/remote-objects';
import { SpillDir } from './spill/spill-dir';
import type { SessionHost } from './rpc/rpc-connection';
import { exposureWarning, RpcServer } from './rpc/rpc-server';
import { loadDaemonTls, type DaemonTls } from './rpc/daemon-tls';
import { openReadIndex, type ReadIndex } from './read-index';
import { KeptUntilExit } from './kept-until-exit';
import { processStartTime } from './process-instance';
import { PutRings } from './put-rings';
import { StreamTable } from './streams';
import { newSession, type ClientSession } from './session';

export interface Daemon {
  readonly socket: string;
  readonly instanceId: number;
  /** host:port of the RPC port, when it serves one. */
  readonly rpcEndpoint?: string;
  /** host:port of the HTTP port (dashboard, /metrics, /api), when it serves one. */
  readonly httpEndpoint?: string;
  stop(): Promise<void>;
}

class DaemonServer implements ConnectionHost, DaemonState, SessionHost {
  readonly table: ObjectTable;
  readonly names: NameTable;
  readonly streams: StreamTable;
  readonly pool: SegmentPool;
  readonly residency: Residency;
  readonly remote: RemoteObjects;
  readonly meta: MetaService;
  readonly archives: ArchiveIndex;
  readonly readIndex?: ReadIndex;
  readonly putRings: PutRings;
  /** What thrown-off clients may still write, kept until their processes exit. */
  private readonly keptUntilExit: KeptUntilExit;
  readonly instanceId: number;
  readonly socketPath: string;
  readonly version = VERSION;
  readonly maxFrameBytes: number;
  readonly state: DaemonState = this;
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly clients = new Map<number, Connection>();
  /** Sessions of RPC connections and of the daemon's own jobs (migrate). */
  private readonly remoteSessions = new Set<ClientSession>();
  private rpc?: RpcServer;
  /** --rpc-tls-*: read before anything else is built, so bad files fail the start with nothing to undo. */
  private readonly tls?: DaemonTls;
  private http?: HttpServer;
  /** Per-kind counts and durations, for /metrics. */
  readonly requestStats = new RequestStats();
  private nextClientId = 1;
  private requests = 0;
  private readonly uid = process.getuid?.() ?? 0;

  /**
   * `cluster`: the daemon's seat in a cluster, joined before (its instance id is in every object
   * id); `store`: the data dir, opened before (--data-dir).
   */
  constructor(
    private readonly options: ResolvedOptions,
    cluster?: ClusterLink,
    store?: DurableStore,
  ) {
    this.tls = loadDaemonTls(options);
    this.instanceId = cluster?.membership.instanceId ?? options.instanceId;
    this.socketPath = options.socket;
    this.maxFrameBytes = options.maxFrameBytes;
    const policy = new MemoryPolicy(
      options.size,
      options.idleReleaseMs,
      new MachineCapacity(options.shmDir),
      undefined,
      options.spareSegmentBytes,
    );
    this.pool = new SegmentPool(policy, options.shmDir, (segment) => this.segmentReleased(segment));
    this.keptUntilExit = new KeptUntilExit((block) => this.pool.free(block));
    const ids = new IdGenerator(this.instanceId);
    const readIndex = openReadIndex(options.readIndexSlots, options.shmDir);
    this.readIndex = readIndex;
    this.table = new ObjectTable(
      this.pool,
      ids,
      this.instanceId,
      {
        namesDropped: (object) => this.names.forget(object),
        // The index learns of an object's bytes when they are in place, and lets go of them before
        // they are freed or moved (read-index.ts).
        readable: readIndex && ((object) => readIndex.publish(object)),
        evicting: readIndex && ((blob) => readIndex.withdraw(blob.id)),
        heldElsewhere: readIndex && ((blob) => readIndex.isHeld(blob.id)),
        usedElsewhere: readIndex && ((blob) => readIndex.usedSince(blob.id)),
        deleted: (object) => {
          readIndex?.withdraw(object.id);
          this.residency.forget(object);
          durable?.deleted(object);
          this.archives.forget(object.id);
        },
        relabeled: (object) => durable?.relabeled(object),
      },
      this.keptUntilExit,
    );
    this.archives = new ArchiveIndex((id) => this.table.exists(id));
    this.names = new NameTable(this.table, options.keepVersions);
    const spill = options.spillDir === undefined ? undefined : SpillDir.open(options.spillDir);
    const persistedBytes = store && { read: (id: string, _: unknown, into: Uint8Array) => store.readBlob(id, into) };
    this.residency = new Residency(this.table, this.pool, spill, persistedBytes);
    if (readIndex) {
      // A tombstone of the index keeps its blob as a reference would (read-index.ts).
      const table = this.table;
      readIndex.usePins({
        pin: (blob, slot) => table.pinForIndex(blob, slot),
        unpin: (blob, slot) => table.unpinForIndex(blob, slot),
      });
      this.residency.reclaimHeld = () => readIndex.sweep();
    }
    this.putRings = new PutRings(
      {
        pool: this.pool,
        table: this.table,
        residency: this.residency,
        ids,
        instanceId: this.instanceId,
        keptUntilExit: this.keptUntilExit,
        disconnect: (session, message) => this.clients.get(session.clientId)?.violated(message),
      },
      options.putRingBytes,
    );
    const streamBufferBytes = options.streamBufferBytes ?? Math.min(256 * 1024 * 1024, Math.floor(options.size / 4));
    this.streams = new StreamTable(this.table, ids, streamBufferBytes, this.pool.memory);
    this.remote = new RemoteObjects(this, {
      staticPeers: options.rpcPeers,
      cluster: cluster?.membership,
      token: options.rpcToken,
      requestTimeoutMs: options.rpcTimeoutMs,
      tls: this.tls?.peers,
    });
    const shared = cluster
      ? this.clusterMetadata(cluster)
      : new LocalMetadata(this.table, this.names, this.instanceId, this.socketPath);
    const durable =
      store &&
      new DurableMetadata(shared, store, {
        table: this.table,
        names: this.names,
        pool: this.pool,
        residency: this.residency,
        openSession: (pid) => this.openSession(pid),
        closeSession: (session) => this.closeSession(session),
        namingPersists: cluster !== undefined,
        ids,
      });
    this.meta = durable ?? shared;
    this.server = net.createServer((socket) => this.accept(socket));
  }

  /** The etcd backend; loaded only here, so that a daemon without --etcd never loads the etcd client. */
  private clusterMetadata(link: ClusterLink): ClusterMetadata {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { ClusterMetadata } = require('./cluster/cluster-metadata') as typeof import('./cluster/cluster-metadata');
    return new ClusterMetadata(link, {
      table: this.table,
      names: this.names,
      fetchRemote: async (record) => (await this.remote.migrate(record.id)).id,
      nameCache: this.options.nameCache,
      recordCache: this.options.recordCache,
    });
  }

  /** A released segment's fd is dropped by every client that had it, with their next reply. */
  private segmentReleased(segment: number): void {
    for (const connection of this.clients.values()) {
      const session = connection.session!;
      if (session.grantedSegments.delete(segment)) session.droppedSegments.push(segment);
    }
  }

  /** See exposureWarning. */
  rpcExposure(endpoint: string): string | undefined {
    const { rpcHost: host, rpcToken: token } = this.options;
    return exposureWarning(endpoint, { host, token, tls: this.tls?.server });
  }

  get rpcEndpoint(): string | undefined {
    return this.rpc?.endpoint;
  }

  clientCount(): number {
    return this.clients.size + this.remoteSessions.size;
  }

  requestCount(): number {
    return this.requests;
  }

  countRequest(kind: string): KindStats {
    this.requests++;
    return this.requestStats.count(kind);
  }

  get httpEndpoint(): string | undefined {
    return this.http?.endpoint;
  }

  async listen(): Promise<void> {
    await prepareSocketPath(this.socketPath);
    // The umask makes the socket private from the moment bind() creates it; chmod then applies
    // whatever mode was asked for.
    const previous = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(this.socketPath, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(previous);
    }
    fs.chmodSync(this.socketPath, this.options.socketMode);
    if (this.options.rpcPort !== undefined) {
      const { rpcPort: port, rpcHost: host, rpcToken: token } = this.options;
      this.rpc = await RpcServer.start(this, { port, host, token, tls: this.tls?.server });
    }
    if (this.options.httpPort !== undefined) {
      // Loaded only here, so that a daemon without --http-port never loads ws or prom-client.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { HttpServer } = require('./http/http-server') as typeof import('./http/http-server');
      this.http = await HttpServer.start(this, {
        port: this.options.httpPort,
        host: this.options.httpHost,
        token: this.options.rpcToken,
      });
    }
    this.pool.warmUp();
  }

  register(connection: Connection, pid: number): ClientSession {
    // Read now, while the client is there (it just sent register): a pid given to a later process
    // then has another start time (kept-until-exit.ts).
    const session = newSession(this.nextClientId++, pid, connection.peer.uid, processStartTime(pid));
    this.clients.set(session.clientId, connection);
    return session;
  }

  openSession(pid: number): ClientSession {
    const session = newSession(this.nextClientId++, pid, -1);
    this.remoteSessions.add(session);
    return session;
  }

  closeSession(session: ClientSession): void {
    if (this.remoteSessions.delete(session)) this.dropSession(session);
  }

  mainConnection(clientId: number): Connection | undefined {
    return this.clients.get(clientId);
  }

  closed(connection: Connection): void {
    this.connections.delete(connection);
    const session = connection.session;
    if (session && this.clients.get(session.clientId) === connection) {
      this.clients.delete(session.clientId);
      this.dropSession(session);
    }
  }

  /** Reclaims what a session had: its waits, streams, unsealed blobs and references. */
  private dropSession(session: ClientSession): void {
    // Its ring first: puts that resolved in the client are the store's, even if it was killed.
    this.putRings.drop(session);
    session.closed = true;
    this.names.cancelWaits(session.clientId);
    this.streams.dropSession(session);
    this.table.dropSession(session);
    this.readIndex?.dropClient(session.clientId);
  }

  async stop(): Promise<void> {
    // Leaving first takes this daemon's objects and names out of the cluster view at once.
    await this.meta.stop();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.close();
    this.remote.close();
    await Promise.all([closed, this.rpc?.close(), this.http?.close()]);
    this.putRings.close();
    this.keptUntilExit.close();
    this.pool.close();
    this.readIndex?.close();
    fs.rmSync(this.socketPath, { force: true });
  }

  get listening(): boolean {
    return this.server.listening;
  }

  private accept(socket: net.Socket): void {
    let peer: PeerCredentials;
    try {
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
      peer = native.peerCredentials(fd);
    } catch {
      socket.destroy();
      return;
    }
    if (!this.admits(peer)) {
      socket.destroy();
      return;
    }
    this.connections.add(new Connection(socket, peer, this));
  }

  /** Same user or root; anyone the file mode lets in when the socket was widened on purpose. */
  private admits(peer: PeerCredentials): boolean {
    const widened = (this.options.socketMode & 0o077) !== 0;
    return widened || peer.uid === this.uid || peer.uid === 0;
  }
}

/**
 * Makes way for the socket: creates the private default folder, replaces a stale socket file
 * left by a dead daemon, and refuses to touch a live daemon's socket or a file that is not a
 * socket. Errors: Conflict, InvalidArgument.
 */
async function prepareSocketPath(socketPath: string): Promise<void> {
  const dir = path.dirname(socketPath);
  if (dir === defaultSocketDir()) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    checkPrivateDir(dir);
  }
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!stat.isSocket()) {
    throw new TrellisError('InvalidArgument', `${socketPath} exists and is not a socket; not replacing it`);
  }
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new TrellisError('Conflict', `another trellisd is already serving ${socketPath}`);
  fs.rmSync(socketPath, { force: true });
}

/**
 * The default folder (/tmp/trellis-$UID without XDG_RUNTIME_DIR) has a name anyone can guess
 * and make first: whoever owns it could swap the socket for one of their own and receive this
 * user's objects. So it must be ours, a real folder, and closed to others. Errors: PermissionDenied.
 */
function checkPrivateDir(dir: string): void {
  const stat = fs.lstatSync(dir);
  const uid = process.getuid?.() ?? 0;
  if (!stat.isDirectory() || stat.uid !== uid || (stat.mode & 0o077) !== 0) {
    const what = !stat.isDirectory()
      ? 'is not a folder'
      : stat.uid !== uid
        ? `belongs to uid ${stat.uid}`
        : 'is open to others';
    const fix = "it must be this user's with mode 0700 (remove it, or pass --socket)";
    throw new TrellisError('PermissionDenied', `socket folder ${dir} ${what}; ${fix}`);
  }
}

export async function startDaemon(options: DaemonOptions = {}): Promise<Daemon> {
  const resolved = resolveOptions(options);
  const log = configureDaemonLog({ level: resolved.logLevel, format: resolved.logFormat });
  // With --etcd the instance id comes from the cluster, so object ids are unique across it.
  // The data dir first: a second daemon on it is refused before it joins anything.
  const store = resolved.dataDir === undefined ? undefined : await DurableStore.open(resolved.dataDir);
  let cluster: ClusterLink | undefined;
  let daemon: DaemonServer;
  try {
    // Object ids carry the instance id: a daemon restarted on its data dir serves under the old one.
    const instanceId = options.instanceId ?? store?.instanceId ?? resolved.instanceId;
    cluster = resolved.etcd.length > 0 ? await joinCluster(resolved, store?.instanceId) : undefined;
    await store?.claimInstanceId(cluster?.membership.instanceId ?? instanceId);
    daemon = new DaemonServer({ ...resolved, instanceId }, cluster, store);
  } catch (error) {
    await cluster?.membership.leave();
    cluster?.connection.close();
    await store?.close();
    throw error;
  }
  const overCapacity = daemon.pool.policy.startWarning();
  if (overCapacity) log.warn(overCapacity);
  if (cluster) logMembership(cluster.membership);
  try {
    await daemon.meta.start();
    await daemon.listen();
    const rpcEndpoint = daemon.rpcEndpoint ?? null;
    const exposure = rpcEndpoint === null ? undefined : daemon.rpcExposure(rpcEndpoint);
    if (exposure) process.stderr.write(`trellisd: warning: ${exposure}\n`);
    if (cluster && cluster.membership.info.rpcEndpoint !== rpcEndpoint)
      await cluster.membership.setRpcEndpoint(rpcEndpoint);
  } catch (error) {
    if (daemon.listening) await daemon.stop();
    else {
      daemon.pool.close();
      daemon.readIndex?.close();
      await daemon.meta.stop();
    }
    throw error;
  }
  log.info(
    {
      socket: daemon.socketPath,
      instance: daemon.instanceId,
      rpc: daemon.rpcEndpoint,
      http: daemon.httpEndpoint,
      size: resolved.size,
    },
    'started',
  );
  const stop = async () => {
    await daemon.stop();
    log.info({ socket: daemon.socketPath, instance: daemon.instanceId }, 'stopped');
  };
  return {
    socket: daemon.socketPath,
    instanceId: daemon.instanceId,
    rpcEndpoint: daemon.rpcEndpoint,
    httpEndpoint: daemon.httpEndpoint,
    stop,
  };
}

/** Joins the cluster in etcd. Errors: Unavailable, InvalidArgument, Conflict. */
async function joinCluster(options: ResolvedOptions, instanceId: number | undefined): Promise<ClusterLink> {
  // Loaded only here, so that a daemon without --etcd never loads the etcd client.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ClusterMetadata } = require('./cluster/cluster-metadata') as typeof import('./cluster/cluster-metadata');
  return ClusterMetadata.join({
    endpoints: options.etcd,
    prefix: options.etcdPrefix,
    leaseTtlSeconds: options.leaseTtlSeconds,
    socket: options.socket,
    // The RPC port is opened later, and may be picked by the system: registered once known.
    rpcEndpoint: null,
    instanceId,
  });
}
