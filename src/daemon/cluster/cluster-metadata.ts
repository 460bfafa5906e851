/**
 * The daemon's side of a cluster (`--etcd`): its membership (instance id, lease), the
 * cluster-wide directories of persisted objects and names, and the rules that tie them to the
 * local object table. Dispatch asks it whenever a request touches what is shared.
 *
 * etcd is the source of truth for what is shared (DESIGN.md invariant 6); the daemon only ever
 * reads it from memory (the directories' mirrors). Writes go to etcd first and show locally
 * once committed. While etcd is unreachable, local work goes on and every call that would
 * change what is shared fails at once with Unavailable.
 *
 * Keys this daemon owns live on its lease; ownership.ts puts them back after the lease is lost.
 */
import { TrellisError } from '../../errors';
import { instanceOf } from '../../protocol/ids';
import type { ClusterInfoReply, GetObjectReply, InstanceSummary, ObjectMeta, ObjectSummary } from '../../protocol/messages';
import { checkName } from '../../protocol/names';
import { commitInBatches, MAX_OPERATIONS_PER_TRANSACTION, type TransactionOperation } from '../metadata/batched-transaction';
import { EtcdConnection } from '../metadata/etcd-connection';
import type { InstanceStatus } from '../metadata/instance-info';
import { Membership } from '../metadata/membership';
import type { NameTable } from '../names';
import type { ObjectTable } from '../object-table';
import type { ClientSession } from '../session';
import type { Expirations } from './expirations';
import { MAX_NAMES_PER_CALL, NameDirectory, type NameChange } from './name-directory';
import { ObjectDirectory } from './object-directory';
import { Ownership } from './ownership';
import { PrefixMirror } from '../metadata/prefix-mirror';
import { NAMES_PREFIX, OBJECTS_PREFIX, nameKey, objectKey, type CachedRecord } from './records';

/** Transactions a large publish keeps in flight at once. */
const TRANSACTIONS_IN_FLIGHT = 4;

export interface ClusterOptions {
  endpoints: readonly string[];
  /** Default trellis. */
  prefix?: string;
  leaseTtlSeconds: number;
  socket: string;
  rpcEndpoint: string | null;
}

/** A new local object to publish: persisted, and named when `name` is set. */
export interface NewObject {
  id: string;
  name?: string;
  override: boolean;
  persist: boolean;
}

export class ClusterMetadata {
  /**
   * Set by the RPC layer: copies a remote object's bytes to this daemon and returns the id of
   * the local copy. Without it, `getObject(id, { fetch: true })` of a remote object with bytes
   * answers RemoteObject.
   */
  fetchRemote?: (record: CachedRecord, owner: InstanceStatus | undefined) => Promise<string>;

  private mirror!: PrefixMirror;
  private objects!: ObjectDirectory;
  private names!: NameDirectory;
  private table!: ObjectTable;
  private expirations!: Expirations;
  private ownership!: Ownership;
  private stopped = false;

  private constructor(
    private readonly connection: EtcdConnection,
    private readonly membership: Membership,
  ) {}

  /** Connects to etcd and takes an instance id. Errors: Unavailable, InvalidArgument, Conflict. */
  static async join(options: ClusterOptions): Promise<ClusterMetadata> {
    const connection = new EtcdConnection({ endpoints: options.endpoints, prefix: options.prefix });
    try {
      const membership = await Membership.join(connection, { socket: options.socket, rpcEndpoint: options.rpcEndpoint, leaseTtlSeconds: options.leaseTtlSeconds });
      return new ClusterMetadata(connection, membership);
    } catch (error) {
      connection.close();
      throw error;
    }
  }

  get instanceId(): number {
    return this.membership.instanceId;
  }

  /** The RPC endpoint this daemon is registered with. */
  get rpcEndpoint(): string | null {
    return this.membership.info.rpcEndpoint;
  }

  /** Registers the RPC endpoint once the RPC port is open. Errors: Unavailable. */
  setRpcEndpoint(endpoint: string | null): Promise<void> {
    return this.membership.setRpcEndpoint(endpoint);
  }

  /** An instance as the cluster view shows it (what the RPC layer asks to reach a peer). */
  instance(instanceId: number): InstanceStatus | undefined {
    return this.membership.instance(instanceId);
  }

  /** Loads the directories and starts following etcd. Errors: Unavailable. */
  async attach(table: ObjectTable, names: NameTable, expirations: Expirations): Promise<void> {
    this.table = table;
    this.expirations = expirations;
    // One mirror for both: an object and its name, written in one transaction, show together.
    this.mirror = new PrefixMirror(this.connection, [OBJECTS_PREFIX, NAMES_PREFIX]);
    this.objects = new ObjectDirectory(this.mirror, table, this.instanceId, (id) => this.membership.instance(id));
    this.names = new NameDirectory(this.connection, this.mirror, names, this.instanceId);
    this.ownership = new Ownership(this.connection, this.membership, this.objects, this.names, table, expirations);
    expirations.expire = (id) => this.expire(id);
    await this.mirror.start();
  }

  /** Leaves the cluster: revoking the lease removes this daemon's objects and names from it. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ownership?.stop();
    this.mirror?.stop();
    await this.membership.leave();
    this.connection.close();
  }

  info(): ClusterInfoReply {
    return {
      instanceId: this.instanceId,
      clustered: true,
      registered: this.membership.registered,
      instances: this.membership.instances().map(summarize),
    };
  }

  /** Errors: Unavailable, when this daemon cannot write to etcd right now. */
  requireRegistered(what: string): void {
    if (this.stopped || !this.membership.registered) {
      throw new TrellisError(
        'Unavailable',
        `cannot ${what}: instance ${this.instanceId} is not registered with etcd at ${this.connection.describe()} right now (etcd is unreachable, or the daemon is registering again); local objects still work`,
      );
    }
  }

  // Reads, from the cache.

  /**
   * The cluster record of an id this daemon does not hold; undefined when the id is (or would
   * be) local. Errors: ObjectNotFound naming the instance, for another instance's unknown id.
   */
  lookupRemote(id: string): CachedRecord | undefined {
    if (this.table.sealedObjectOrUndefined(id) || instanceOf(id) === this.instanceId) return undefined;
    const record = this.objects.remote(id);
    if (!record) throw this.objects.notFound(id);
    return record;
  }

  /** getMeta of another instance's object; undefined when the id is local. Errors: ObjectNotFound. */
  remoteMeta(id: string): ObjectMeta | undefined {
    const record = this.lookupRemote(id);
    return record && this.objects.meta(record);
  }

  /**
   * getObject of another instance's object: its metadata when the tree has no bytes (values
   * inline in metadata), the id of a local copy when `fetch` and the RPC layer can fetch it;
   * undefined when the id is local. Errors: ObjectNotFound, RemoteObject.
   */
  remoteObject(id: string, fetch: boolean): GetObjectReply | Promise<string> | undefined {
    const record = this.lookupRemote(id);
    if (!record) return undefined;
    const meta = this.objects.meta(record);
    if (!this.objects.hasBytes(record)) return { meta, blobs: [] };
    const owner = this.membership.instance(record.instanceId);
    if (fetch && this.fetchRemote) return this.fetchRemote(record, owner);
    const where = owner ? `instance ${owner.instanceId} (${owner.hostname}${owner.rpcEndpoint ? `, rpc ${owner.rpcEndpoint}` : ', no rpc endpoint'})` : `instance ${record.instanceId}`;
    const how = fetch ? 'this daemon cannot fetch it (it serves no RPC)' : 'get it with { fetch: true }, or migrate it';
    throw new TrellisError('RemoteObject', `object ${id} (${record.typename}) has its bytes on ${where}, not here: ${how}`);
  }

  exists(id: string): boolean {
    return this.objects.remote(id) !== undefined;
  }

  /** This daemon's objects (`local`) and other instances' persisted ones, newest first. */
  listObjects(local: ObjectSummary[], pattern: string | undefined, limit: number): ObjectSummary[] {
    const all = [...local, ...this.objects.list(pattern)];
    all.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
    return all.slice(0, limit);
  }

  // Writes: etcd first, then locally.

  /**
   * Makes a local object and its members visible cluster-wide; with `ttlSeconds`, until then.
   * Persisting again keeps an earlier ttl unless a new one is given.
   * Errors: ObjectNotFound, NotSealed, RemoteObject (a ttl for another instance's object), Unavailable.
   */
  async persist(id: string, ttlSeconds?: number): Promise<void> {
    const remote = this.lookupRemote(id);
    if (remote) {
      if (ttlSeconds === undefined) return;
      throw new TrellisError('RemoteObject', `object ${id} belongs to instance ${remote.instanceId}: only that instance can give it a ttl`);
    }
    this.table.sealedObject(id);
    const expiresAt = ttlSeconds === undefined ? undefined : Date.now() + ttlSeconds * 1000;
    if (expiresAt === undefined && this.objects.persisted.has(id)) return;
    this.requireRegistered(`persist ${id}`);
    const lease = this.membership.leaseId;
    const puts = new Map<string, TransactionOperation>();
    this.objects.recordPuts(id, lease, expiresAt, puts);
    const result = await commitInBatches(this.connection, [...puts.values()]);
    this.objects.published(puts, BigInt(result.revision), expiresAt === undefined ? new Map() : new Map([[id, expiresAt]]));
    if (expiresAt !== undefined) this.expirations.schedule(id, expiresAt);
    this.afterPublish(lease, [...puts.keys()]);
  }

  /**
   * Publishes objects just created here (seal or createMetadata with a name or persist): their
   * records and names, in as few transactions as fit. All or none: on failure the objects are
   * deleted again, with whatever keys went in before. Errors: NameExists, Unavailable, Conflict.
   */
  async publishNew(session: ClientSession, created: readonly NewObject[]): Promise<void> {
    const wanted = created.filter((object) => object.persist || object.name !== undefined);
    if (wanted.length === 0) return;
    try {
      this.requireRegistered(wanted.length === 1 ? `publish ${wanted[0].id}` : `publish ${wanted.length} objects`);
      await this.publish(wanted);
    } catch (error) {
      try {
        this.table.delete(session, created.map((object) => object.id), { deep: true, force: true });
      } catch {
        // Already gone: nothing left to undo.
      }
      throw error;
    }
  }

  /**
   * Names objects of any instance: one transaction for all the names (all or none), after
   * persisting local objects that were not yet. Errors: InvalidArgument, ObjectNotFound,
   * NotSealed, NameExists, Conflict, Unavailable.
   */
  async putNames(entries: Record<string, string>, override: boolean): Promise<void> {
    const list = Object.entries(entries);
    if (list.length === 0) return;
    if (list.length > MAX_NAMES_PER_CALL) {
      throw new TrellisError('InvalidArgument', `putNames: at most ${MAX_NAMES_PER_CALL} names per call in a cluster (one etcd transaction), got ${list.length}`);
    }
    const lease = this.membership.leaseId;
    const puts = new Map<string, TransactionOperation>();
    const remote = new Set<string>();
    const changes: NameChange[] = list.map(([name, id]) => {
      checkName(name);
      const record = this.lookupRemote(id);
      if (record) {
        remote.add(id);
        return { name, id, lease: record.lease, override };
      }
      if (!this.objects.persisted.has(this.table.sealedObject(id).id)) this.objects.recordPuts(id, lease, undefined, puts);
      return { name, id, lease, override };
    });
    this.requireRegistered(list.length === 1 ? `publish name ${JSON.stringify(list[0][0])}` : `publish ${list.length} names`);
    let inline: TransactionOperation[] = [...puts.values()];
    if (inline.length + changes.length > MAX_OPERATIONS_PER_TRANSACTION) {
      const result = await commitInBatches(this.connection, inline);
      this.objects.published(puts, BigInt(result.revision), new Map());
      inline = [];
    }
    const revision = await this.names.put(changes, inline, [...remote], (id) => this.objects.notFound(id));
    if (inline.length > 0) this.objects.published(puts, revision, new Map());
    this.afterPublish(lease, [...puts.keys()]);
  }

  /** Drops a name wherever it was published; whether it existed. Errors: Unavailable. */
  async dropName(name: string): Promise<boolean> {
    checkName(name);
    this.requireRegistered(`drop name ${JSON.stringify(name)}`);
    return this.names.drop(name);
  }

  /**
   * Deletes objects of any instance by the graph rules of ObjectTable.delete, over the cluster
   * view for other instances' objects. Their keys go first (the owner of a remote object sees
   * them go and frees the bytes); local objects are then deleted here. Deleting objects that
   * were never shared needs no etcd. Returns the ids removed.
   * Errors: ObjectNotFound, NotSealed, Conflict, Unavailable.
   */
  async delete(session: ClientSession | undefined, ids: string[], options: { deep: boolean; force: boolean }): Promise<string[]> {
    const unique = [...new Set(ids)];
    const remoteIds = new Set(unique.filter((id) => this.lookupRemote(id) !== undefined));
    const localIds = unique.filter((id) => !remoteIds.has(id));
    const localDoomed = localIds.length > 0 ? this.table.planDelete(localIds, options) : [];
    const remoteDoomed = remoteIds.size > 0 ? this.objects.planDelete([...remoteIds], options, (id) => this.names.namesOf(id)) : [];

    const unpersist = [...localDoomed.filter((id) => this.objects.persisted.has(id)), ...remoteDoomed];
    const names = options.force ? unpersist.flatMap((id) => this.names.namesOf(id)) : [];
    if (unpersist.length > 0 || names.length > 0) {
      this.requireRegistered(`delete ${unique.join(', ')}`);
      const saved = unpersist.map((id) => [id, this.objects.persisted.get(id)] as const).filter(([id]) => this.objects.persisted.has(id));
      const savedNames = names.map((name) => [name, this.names.owned.get(name)] as const);
      // Forgotten first, so that the deletes coming back through the watch are not taken for losses.
      for (const id of unpersist) this.objects.persisted.delete(id);
      for (const name of names) this.names.owned.delete(name);
      const operations: TransactionOperation[] = [
        ...names.map((name): TransactionOperation => ({ kind: 'delete', key: nameKey(name) })),
        ...unpersist.map((id): TransactionOperation => ({ kind: 'delete', key: objectKey(id) })),
      ];
      let revision: bigint;
      try {
        revision = BigInt((await commitInBatches(this.connection, operations)).revision);
      } catch (error) {
        for (const [id, expiry] of saved) if (this.table.sealedObjectOrUndefined(id)) this.objects.persisted.set(id, expiry);
        for (const [name, id] of savedNames) if (id !== undefined) this.names.owned.set(name, id);
        throw error;
      }
      this.names.dropped(names, revision);
      this.objects.unpublished(unpersist, revision);
      for (const id of unpersist) this.expirations.cancel(id);
    }
    const deleted = localIds.length > 0 ? this.table.delete(session, localIds, options) : [];
    return [...deleted, ...remoteDoomed];
  }

  // Expiry and publishing in bulk.

  /** A persisted object's ttl ran out: delete it everywhere (a rejection retries later). */
  private async expire(id: string): Promise<void> {
    if (!this.table.sealedObjectOrUndefined(id)) {
      this.objects.persisted.delete(id);
      return;
    }
    await this.delete(undefined, [id], { deep: true, force: true });
  }

  /** After a write on `lease`: undo records of objects deleted meanwhile; republish if the lease changed. */
  private afterPublish(lease: string, ids: string[]): void {
    const gone = ids.filter((id) => !this.table.sealedObjectOrUndefined(id));
    if (gone.length > 0) {
      for (const id of gone) this.objects.persisted.delete(id);
      void commitInBatches(this.connection, gone.map((id) => ({ kind: 'delete', key: objectKey(id) }))).catch(() => undefined);
    }
    if (lease !== this.membership.leaseId) this.ownership.republish();
  }

  private async publish(objects: readonly NewObject[]): Promise<void> {
    const lease = this.membership.leaseId;
    const all = new Map<string, TransactionOperation>();
    // One unit per object: its records (those no earlier unit wrote) and its name.
    const units = objects.map((object) => {
      const puts = new Map<string, TransactionOperation>();
      this.objects.recordPuts(object.id, lease, undefined, puts);
      const records = new Map([...puts].filter(([id]) => !all.has(id)));
      for (const [id, operation] of records) all.set(id, operation);
      const change: NameChange | undefined = object.name === undefined ? undefined : { name: object.name, id: object.id, lease, override: object.override };
      return { records, change };
    });
    // Pack units into transactions of at most MAX_OPERATIONS_PER_TRANSACTION operations.
    type Batch = { records: Map<string, TransactionOperation>; changes: NameChange[] };
    const batches: Batch[] = [];
    let batch: Batch = { records: new Map(), changes: [] };
    const size = (b: Batch) => b.records.size + b.changes.length;
    for (const unit of units) {
      const unitSize = unit.records.size + (unit.change ? 1 : 0);
      if (size(batch) + unitSize > MAX_OPERATIONS_PER_TRANSACTION && size(batch) > 0) {
        batches.push(batch);
        batch = { records: new Map(), changes: [] };
      }
      for (const [id, operation] of unit.records) batch.records.set(id, operation);
      if (unit.change) batch.changes.push(unit.change);
    }
    if (size(batch) > 0) batches.push(batch);

    // A few transactions in flight at once: etcd commits them faster than one after another.
    const committed: Batch[] = [];
    const notFound = (id: string) => this.objects.notFound(id);
    const commit = async (current: Batch): Promise<void> => {
      if (current.changes.length > 0 && size(current) <= MAX_OPERATIONS_PER_TRANSACTION) {
        const revision = await this.names.put(current.changes, [...current.records.values()], [], notFound);
        committed.push(current);
        this.objects.published(current.records, revision, new Map());
        return;
      }
      // Records without names, or too many for one transaction (one huge tree): on their own.
      const revision = BigInt((await commitInBatches(this.connection, [...current.records.values()])).revision);
      committed.push({ records: current.records, changes: [] });
      this.objects.published(current.records, revision, new Map());
      if (current.changes.length === 0) return;
      await this.names.put(current.changes, [], [], notFound);
      committed.push({ records: new Map(), changes: current.changes });
    };
    let failure: { error: unknown } | undefined;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (!failure && next < batches.length) {
        await commit(batches[next++]).catch((error: unknown) => void (failure ??= { error }));
      }
    };
    await Promise.all(Array.from({ length: Math.min(TRANSACTIONS_IN_FLIGHT, batches.length) }, worker));
    if (failure) {
      await this.unpublish(committed);
      throw failure.error;
    }
    this.afterPublish(lease, [...all.keys()]);
  }

  /** Best effort: takes back keys written by a publish that failed part way. */
  private async unpublish(batches: Array<{ records: Map<string, TransactionOperation>; changes: NameChange[] }>): Promise<void> {
    const ids = [...new Set(batches.flatMap((b) => [...b.records.keys()]))];
    const names = [...new Set(batches.flatMap((b) => b.changes.map((change) => change.name)))];
    if (ids.length === 0 && names.length === 0) return;
    for (const id of ids) this.objects.persisted.delete(id);
    for (const name of names) this.names.owned.delete(name);
    try {
      const operations: TransactionOperation[] = [...names.map((name) => nameKey(name)), ...ids.map((id) => objectKey(id))].map((key) => ({ kind: 'delete', key }));
      const revision = BigInt((await commitInBatches(this.connection, operations)).revision);
      this.names.dropped(names, revision);
      this.objects.unpublished(ids, revision);
    } catch {
      // They stay until this daemon's lease ends; their objects are gone from here already.
    }
  }
}

function summarize(status: InstanceStatus): InstanceSummary {
  return { instanceId: status.instanceId, hostname: status.hostname, socket: status.socket, rpcEndpoint: status.rpcEndpoint, alive: status.alive };
}
