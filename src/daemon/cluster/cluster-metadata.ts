/**
 * The metadata backend of a daemon in a cluster (`--etcd`): its membership (instance id,
 * lease), the cluster-wide directories of persisted objects and names, and the rules that tie
 * them to the local object table. Reads are answered here; writes go through the Publisher and
 * the Unpublisher.
 *
 * etcd is the source of truth for what is shared (DESIGN.md invariant 6). Instances are
 * mirrored in memory; names are held when used (the names of this daemon's objects, and a
 * bounded cache of others, each watched: NameDirectory), and other instances' object records
 * are read from etcd when asked and cached (RemoteRecords), so memory grows with what a daemon
 * uses. Writes go to etcd first and show locally once
 * committed. While etcd is unreachable, local work goes on and every call that would change
 * what is shared fails at once with Unavailable.
 *
 * Keys this daemon owns live on its lease; ownership.ts puts them back after the lease is lost.
 */
import type {
  ClusterInfoReply,
  GetObjectReply,
  InstanceSummary,
  ObjectMeta,
  ObjectSummary,
} from '../../protocol/messages';
import { EtcdConnection } from '../metadata/etcd-connection';
import type { InstanceStatus } from '../metadata/instance-info';
import { Membership } from '../metadata/membership';
import {
  whenDone,
  type Adopted,
  type DeleteOptions,
  type MetaService,
  type NewObject,
  type Pending,
  type Persistence,
} from '../metadata/meta-service';
import { PrefixMirror } from '../metadata/prefix-mirror';
import type { NameTable } from '../names';
import type { ObjectFilter, ObjectTable } from '../object-table';
import type { ClientSession } from '../session';
import { TrellisError } from '../../errors';
import { requireRegistered, type ClusterContext } from './cluster-context';
import { Expirations } from './expirations';
import { NameDirectory } from './name-directory';
import { ObjectDirectory } from './object-directory';
import { Ownership } from './ownership';
import { Publisher } from './publisher';
import { NAMES_CACHED } from './name-watches';
import { instanceObjectsPrefix, instancePinsPrefix, type CachedRecord } from './records';
import { REMOTE_RECORDS_CACHED, RemoteRecords } from './remote-records';
import { Unpublisher } from './unpublisher';
import { ViewFreshness } from './view-freshness';

export interface ClusterOptions {
  endpoints: readonly string[];
  /** Default trellis. */
  prefix?: string;
  leaseTtlSeconds: number;
  socket: string;
  rpcEndpoint: string | null;
  /** The instance id to take back (a restart on a data dir); default a new one. */
  instanceId?: number;
}

/** A daemon's seat in a cluster: its etcd connection and its registered membership. */
export interface ClusterLink {
  readonly connection: EtcdConnection;
  readonly membership: Membership;
}

/** What the cluster backend needs from the daemon it serves. */
export interface LocalParts {
  readonly table: ObjectTable;
  readonly names: NameTable;
  /**
   * Copies a remote object's bytes to this daemon and returns the id of the local copy. Without
   * it, `getObject(id, { fetch: true })` of a remote object with bytes answers RemoteObject.
   */
  readonly fetchRemote?: (record: CachedRecord, owner: InstanceStatus | undefined) => Promise<string>;
  /** Other instances' names (--name-cache) and object records (--record-cache) kept at most. */
  readonly nameCache?: number;
  readonly recordCache?: number;
}

export class ClusterMetadata implements MetaService {
  private readonly pinsMirror: PrefixMirror;
  private readonly ownRecords: PrefixMirror;
  private readonly remoteRecords: RemoteRecords;
  private readonly cluster: ClusterContext;
  private readonly ownership: Ownership;
  private readonly publisher: Publisher;
  private readonly unpublisher: Unpublisher;
  private readonly freshness: ViewFreshness;
  private stopped = false;

  /**
   * Connects to etcd and takes an instance id, before the daemon's tables exist (their ids
   * carry it). Errors: Unavailable, InvalidArgument, Conflict.
   */
  static async join(options: ClusterOptions): Promise<ClusterLink> {
    const connection = new EtcdConnection({ endpoints: options.endpoints, prefix: options.prefix });
    try {
      const membership = await Membership.join(connection, {
        socket: options.socket,
        rpcEndpoint: options.rpcEndpoint,
        leaseTtlSeconds: options.leaseTtlSeconds,
        instanceId: options.instanceId,
      });
      return { connection, membership };
    } catch (error) {
      connection.close();
      throw error;
    }
  }

  constructor(
    private readonly link: ClusterLink,
    private readonly local: LocalParts,
  ) {
    const { connection, membership } = link;
    const { table, names } = local;
    // Only this daemon's own records and pins; others' records and names are read when asked.
    this.pinsMirror = new PrefixMirror(connection, [instancePinsPrefix(membership.instanceId)]);
    this.ownRecords = new PrefixMirror(connection, [instanceObjectsPrefix(membership.instanceId)]);
    this.remoteRecords = new RemoteRecords(connection, local.recordCache ?? REMOTE_RECORDS_CACHED);
    const objects = new ObjectDirectory(this.ownRecords, this.remoteRecords, table, membership.instanceId, (id) =>
      membership.instance(id),
    );
    const nameDirectory = new NameDirectory(
      connection,
      this.pinsMirror,
      names,
      membership.instanceId,
      local.nameCache ?? NAMES_CACHED,
    );
    const expirations = new Expirations((id) => this.unpublisher.expire(id));
    this.cluster = { connection, membership, objects, names: nameDirectory, table, expirations };
    this.ownership = new Ownership(connection, membership, objects, nameDirectory, table, expirations);
    this.unpublisher = new Unpublisher(this.cluster);
    this.publisher = new Publisher(this.cluster, this.ownership, this.unpublisher);
    // Held names may have missed changes while the lease was gone: read again (tracked) or when used.
    this.freshness = new ViewFreshness(connection, membership, this.pinsMirror, () => nameDirectory.resync());
  }

  get instanceId(): number {
    return this.link.membership.instanceId;
  }

  /** Loads the directories and starts following etcd. Errors: Unavailable. */
  async start(): Promise<void> {
    await Promise.all([this.remoteRecords.start(), this.pinsMirror.start(), this.ownRecords.start()]);
  }

  /** Leaves the cluster: revoking the lease removes this daemon's objects and names from it. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.cluster.expirations.clear();
    this.ownership.stop();
    this.pinsMirror.stop();
    this.cluster.names.stop();
    this.ownRecords.stop();
    this.remoteRecords.stop();
    await this.link.membership.leave();
    this.link.connection.close();
  }

  info(): ClusterInfoReply {
    const { membership } = this.link;
    return {
      instanceId: this.instanceId,
      clustered: true,
      registered: membership.registered,
      instances: membership.instances().map(summarize),
    };
  }

  requireWritable(what: string): void {
    requireRegistered(this.cluster, what);
  }

  namesCurrent(what: string): Promise<void> | undefined {
    return this.freshness.whenCurrent(what);
  }

  loadNames(names: readonly string[]): Promise<void> | undefined {
    return names.length === 0 ? undefined : this.cluster.names.load(names);
  }

  listNames(pattern?: string): Promise<string[]> {
    return this.cluster.names.list(pattern);
  }

  nameCounts(): { tracked: number; cached: number } {
    return this.cluster.names.counts;
  }

  async adopt(adopted: Adopted): Promise<void> {
    const { objects, names, expirations } = this.cluster;
    for (const { id, expiresAt } of adopted.objects) {
      objects.restorePersisted(id, expiresAt);
      if (expiresAt !== undefined) expirations.schedule(id, expiresAt);
    }
    for (const [name, history] of Object.entries(adopted.names)) {
      names.restoreOwned(name, history.versions[0].id, history);
    }
    await this.ownership.publishNow();
  }

  // Reads: from memory, with other instances' records loaded first (see view).

  view<T>(read: () => T): Pending<T> {
    return this.cluster.objects.view(read);
  }

  remoteRecordCount(): number {
    return this.cluster.objects.remoteCount;
  }

  persistedCount(): number {
    return this.cluster.objects.persistedCount;
  }

  persistence(id: string): Persistence {
    const { objects } = this.cluster;
    const record = objects.lookup(id);
    if (record) return { persisted: true, expiresAt: record.expiresAt ?? null };
    this.local.table.sealedObject(id);
    return { persisted: objects.isPersisted(id), expiresAt: objects.expiryOf(id) ?? null };
  }

  exists(id: string): boolean {
    return this.local.table.exists(id) || this.cluster.objects.remote(id) !== undefined;
  }

  /** This daemon's objects and other instances' persisted ones (read from etcd in pages), newest first. */
  async listObjects(filter: ObjectFilter, limit: number): Promise<ObjectSummary[]> {
    const all = [...this.local.table.list(filter, limit), ...(await this.cluster.objects.list(filter, limit))];
    all.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    return all.slice(0, limit);
  }

  getMeta(id: string): ObjectMeta {
    const record = this.cluster.objects.lookup(id);
    return record ? this.cluster.objects.meta(record) : this.local.table.metaTree(id);
  }

  /**
   * getObject of another instance's object: its metadata when the tree has no bytes (values
   * inline in metadata), the id of a local copy when `fetch` and the RPC layer can fetch it;
   * undefined when the id is local. Errors: ObjectNotFound, RemoteObject.
   */
  remoteObject(id: string, fetch: boolean): GetObjectReply | Promise<string> | undefined {
    const { objects, membership } = this.cluster;
    const record = objects.lookup(id);
    if (!record) return undefined;
    const meta = objects.meta(record);
    if (!objects.hasBytes(record)) return { meta, blobs: [] };
    const owner = membership.instance(record.instanceId);
    if (fetch && this.local.fetchRemote) return this.local.fetchRemote(record, owner);
    const where = owner
      ? `instance ${owner.instanceId} (${owner.hostname}${owner.rpcEndpoint ? `, rpc ${owner.rpcEndpoint}` : ', no rpc endpoint'})`
      : `instance ${record.instanceId}`;
    const how = fetch ? 'this daemon cannot fetch it (it serves no RPC)' : 'get it with { fetch: true }, or migrate it';
    throw new TrellisError(
      'RemoteObject',
      `object ${id} (${record.typename}) has its bytes on ${where}, not here: ${how}`,
    );
  }

  // Writes: etcd first, then locally.

  persist(id: string, ttlSeconds: number | undefined): Promise<void> {
    return this.publisher.persist(id, ttlSeconds);
  }

  publishNew(session: ClientSession, created: readonly NewObject[]): Promise<void> {
    return this.publisher.publishNew(session, created);
  }

  putNames(
    entries: Record<string, string>,
    override: boolean,
    expect?: Record<string, number>,
  ): Promise<Record<string, number>> {
    return this.publisher.putNames(entries, override, expect);
  }

  dropVersion(name: string, version: number): Promise<void> {
    return this.publisher.dropVersion(name, version);
  }

  dropName(name: string): Promise<boolean> {
    return this.publisher.dropName(name);
  }

  delete(session: ClientSession | undefined, ids: string[], options: DeleteOptions): Promise<string[]> {
    return this.unpublisher.delete(session, ids, options);
  }

  /**
   * A persisted object's record, this daemon's or another instance's, is written with the new
   * labels, etcd first; an object never persisted is labelled here alone.
   */
  label(id: string, changes: Record<string, string | null>): Pending<Record<string, string>> {
    const { objects } = this.cluster;
    return whenDone(
      objects.view(() => objects.lookup(id)),
      (remote) => {
        if (!remote && !objects.isPersisted(this.local.table.sealedObject(id).id))
          return this.local.table.relabel(id, changes);
        return this.publisher.relabel(id, changes);
      },
    );
  }
}

function summarize(status: InstanceStatus): InstanceSummary {
  const { instanceId, hostname, socket, rpcEndpoint, alive } = status;
  return { instanceId, hostname, socket, rpcEndpoint, alive };
}
