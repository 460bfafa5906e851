/**
 * Putting things into the cluster: persisting local objects (their records, one key per object
 * and member) and publishing names, in as few etcd transactions as fit, a few in flight at once.
 * Writes go to etcd first and show in the local cache once committed.
 */
import type { IKeyValue } from 'etcd3';
import { isTrellisError, TrellisError } from '../../errors';
import { instanceOf } from '../../protocol/ids';
import { checkName } from '../../protocol/names';
import {
  commitInBatches,
  MAX_OPERATIONS_PER_TRANSACTION,
  type TransactionOperation,
} from '../metadata/batched-transaction';
import type { EtcdConnection } from '../metadata/etcd-connection';
import type { NewObject } from '../metadata/meta-service';
import { KeyedQueue } from '../keyed-queue';
import { mergeLabels } from '../object-table';
import type { ClientSession } from '../session';
import { leaseOfObject, requireRegistered, type ClusterContext } from './cluster-context';
import { MAX_NAMES_PER_CALL, type NameChange } from './name-directory';
import type { Ownership } from './ownership';
import { decodeRecord, encodeRewrites, idOfObjectKey, objectKey, relabeledRecord, rewriteKey } from './records';
import type { CommittedBatch, Unpublisher } from './unpublisher';

/** Transactions a large publish keeps in flight at once. */
const TRANSACTIONS_IN_FLIGHT = 4;
/** A label whose record keeps changing under it gives up with Conflict after this many tries. */
const MAX_LABEL_ATTEMPTS = 8;

export class Publisher {
  private readonly labelling = new KeyedQueue();

  constructor(
    private readonly cluster: ClusterContext,
    private readonly ownership: Ownership,
    private readonly unpublisher: Unpublisher,
  ) {
    cluster.objects.mirror.on('put', (key, entry) => this.adoptLabels(key, entry.value, entry.lease));
  }

  /**
   * Makes a local object and its members visible cluster-wide; with `ttlSeconds`, until then.
   * Persisting again keeps an earlier ttl unless a new one is given.
   * Errors: ObjectNotFound, NotSealed, RemoteObject (a ttl for another instance's object), Unavailable.
   */
  async persist(id: string, ttlSeconds?: number): Promise<void> {
    const { objects, table, membership } = this.cluster;
    const remote = await objects.view(() => objects.lookup(id));
    if (remote) {
      if (ttlSeconds === undefined) return;
      throw new TrellisError(
        'RemoteObject',
        `object ${id} belongs to instance ${remote.instanceId}: only that instance can give it a ttl`,
      );
    }
    table.sealedObject(id);
    const expiresAt = ttlSeconds === undefined ? undefined : Date.now() + ttlSeconds * 1000;
    if (expiresAt === undefined && objects.isPersisted(id)) return;
    requireRegistered(this.cluster, `persist ${id}`);
    const lease = membership.leaseId;
    const puts = new Map<string, TransactionOperation>();
    // A new ttl on a persisted object changes a record other daemons may hold.
    const rewritten = objects.isPersisted(id) ? [id] : [];
    objects.recordPuts(id, lease, expiresAt, puts);
    const rootExpiry = expiresAt === undefined ? new Map() : new Map([[id, expiresAt]]);
    let result: Awaited<ReturnType<typeof commitInBatches>>;
    try {
      result = await commitInBatches(this.cluster.connection, objects.operations(puts, rewritten, lease));
    } catch (error) {
      // No answer: the records may have committed all the same, and a delete that took the object
      // for unpersisted would leave them in etcd. Read back, as for putNames.
      if (isTrellisError(error, 'Unavailable')) this.unpublisher.settleUncertain(puts, [], rootExpiry);
      throw error;
    }
    objects.published(puts, BigInt(result.revision), rootExpiry);
    if (expiresAt !== undefined) this.cluster.expirations.schedule(id, expiresAt);
    this.afterPublish(lease, [...puts.keys()]);
  }

  /**
   * Labels a persisted object, this daemon's or another instance's, in a compare-and-swap on its
   * record in etcd: the changes merge into the labels the record holds, so that labels set at
   * the same time from several daemons all stay. The same transaction puts `rewrites/<owner>`,
   * so that other daemons drop the record from their caches (remote-records.ts). The owner's
   * table takes the labels once written (adoptLabels, through its own records' watch).
   * Errors: ObjectNotFound, NotSealed, InvalidArgument, Conflict (kept changing), Unavailable.
   */
  async relabel(id: string, changes: Record<string, string | null>): Promise<Record<string, string>> {
    requireRegistered(this.cluster, `label ${id}`);
    // One at a time per object here: only writers on other daemons are left to race with.
    return this.labelling.run([id], () => this.swapLabels(id, changes));
  }

  private async swapLabels(id: string, changes: Record<string, string | null>): Promise<Record<string, string>> {
    const { objects, table, connection, membership } = this.cluster;
    const key = objectKey(id);
    const owner = instanceOf(id);
    const own = owner === membership.instanceId;
    // This daemon's own records are mirrored: a first guess, which the comparison checks. Another
    // instance's are cached without their revision: read.
    let entry: SeenRecord | undefined = own ? objects.mirror.get(key) : await readRecord(connection, id);
    for (let attempt = 1; attempt <= MAX_LABEL_ATTEMPTS; attempt++) {
      const record = entry && decodeRecord(key, entry.value, entry.lease);
      if (!entry || !record) throw objects.notFound(id);
      const labels = mergeLabels(id, record.labels, changes);
      const value = relabeledRecord(entry.value, labels);
      const seen = entry;
      const response = await connection.run(`label ${id}`, (kv) =>
        kv
          .if(key, 'Mod', '==', String(seen.modRevision))
          .then(
            kv.put(key).value(value).lease(seen.lease),
            kv
              .put(rewriteKey(owner))
              .value(encodeRewrites([id]))
              .lease(seen.lease),
          )
          .else(kv.get(key))
          .commit(),
      );
      if (response.succeeded) {
        const revision = BigInt(response.header.revision);
        if (own) objects.mirror.applyLocal(key, { value, lease: seen.lease }, revision);
        else objects.remoteRecords.forget(id);
        if (table.sealedObjectOrUndefined(id)) table.relabel(id, {}, labels);
        return labels;
      }
      const read = response.responses[0]?.response_range?.kvs[0] as IKeyValue | undefined;
      entry = read && seenOf(read);
    }
    throw new TrellisError(
      'Conflict',
      `label ${id}: its record kept changing under ${MAX_LABEL_ATTEMPTS} attempts; try again`,
    );
  }

  /** Another daemon labelled one of this daemon's objects: the table takes the record's labels. */
  private adoptLabels(key: string, value: Buffer, lease: string): void {
    const id = idOfObjectKey(key);
    if (id === undefined || instanceOf(id) !== this.cluster.membership.instanceId) return;
    const object = this.cluster.table.sealedObjectOrUndefined(id);
    const labels = object && decodeRecord(key, value, lease)?.labels;
    if (!labels || sameLabels(labels, object!.labels)) return;
    this.cluster.table.relabel(id, {}, labels);
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
      requireRegistered(
        this.cluster,
        wanted.length === 1 ? `publish ${wanted[0].id}` : `publish ${wanted.length} objects`,
      );
      await this.publish(wanted);
    } catch (error) {
      try {
        const ids = created.map((object) => object.id);
        this.cluster.table.delete(session, ids, { deep: true, force: true });
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
  async putNames(
    entries: Record<string, string>,
    override: boolean,
    expect?: Record<string, number>,
  ): Promise<Record<string, number>> {
    const { objects, table, membership } = this.cluster;
    const list = Object.entries(entries);
    if (list.length === 0) return {};
    if (list.length > MAX_NAMES_PER_CALL) {
      throw new TrellisError(
        'InvalidArgument',
        `putNames: at most ${MAX_NAMES_PER_CALL} names per call in a cluster (one etcd transaction), got ${list.length}`,
      );
    }
    const lease = membership.leaseId;
    const puts = new Map<string, TransactionOperation>();
    const remote = new Set<string>();
    // Other instances' records first (loaded from etcd if need be), checking in the same order as before.
    const records = await objects.view(() =>
      list.map(([name, id]) => {
        checkName(name);
        return objects.lookup(id);
      }),
    );
    const changes: NameChange[] = list.map(([name, id], i) => {
      const record = records[i];
      const expectVersion = expect?.[name];
      if (record) {
        remote.add(id);
        return { name, id, lease: record.lease, override, expectVersion };
      }
      if (!objects.isPersisted(table.sealedObject(id).id)) objects.recordPuts(id, lease, undefined, puts);
      return { name, id, lease, override, expectVersion };
    });
    requireRegistered(
      this.cluster,
      list.length === 1 ? `publish name ${JSON.stringify(list[0][0])}` : `publish ${list.length} names`,
    );
    let inline: TransactionOperation[] = [...puts.values()];
    if (inline.length + 2 * changes.length > MAX_OPERATIONS_PER_TRANSACTION) {
      const result = await commitInBatches(this.cluster.connection, inline);
      objects.published(puts, BigInt(result.revision), new Map());
      inline = [];
    }
    const notFound = (id: string) => objects.notFound(id);
    let answer: { revision: bigint; versions: Record<string, number> };
    try {
      answer = await this.cluster.names.put(changes, inline, [...remote], notFound);
    } catch (error) {
      // No answer: the records (and names) may have committed all the same. Unlike a failed
      // publish, the objects stay, so their keys are not taken back but read back (unpublisher.ts).
      if (inline.length > 0 && isTrellisError(error, 'Unavailable')) this.unpublisher.settleUncertain(puts, changes);
      throw error;
    }
    const { revision, versions } = answer;
    if (inline.length > 0) objects.published(puts, revision, new Map());
    this.afterPublish(lease, [...puts.keys()]);
    return versions;
  }

  /** Drops one version of a name, in one compare-and-swap. Errors: NameNotFound, Conflict, Unavailable. */
  async dropVersion(name: string, version: number): Promise<void> {
    checkName(name);
    requireRegistered(this.cluster, `drop version ${version} of name ${JSON.stringify(name)}`);
    // The key lives on the lease of whoever holds the object that becomes latest: which one that
    // is comes from the name, read first when this daemon does not hold it.
    await this.cluster.names.load([name]);
    const leaseOf = await leaseOfObject(this.cluster, this.cluster.names.versionIds(name));
    await this.cluster.names.dropVersion(name, version, leaseOf);
  }

  /** Drops a name wherever it was published; whether it existed. Errors: Unavailable. */
  async dropName(name: string): Promise<boolean> {
    checkName(name);
    requireRegistered(this.cluster, `drop name ${JSON.stringify(name)}`);
    return this.cluster.names.drop(name);
  }

  /** After a write on `lease`: undo records of objects deleted meanwhile; republish if the lease changed. */
  private afterPublish(lease: string, ids: string[]): void {
    this.unpublisher.dropDeletedMeanwhile(ids);
    if (lease !== this.cluster.membership.leaseId) this.ownership.republish();
  }

  private async publish(created: readonly NewObject[]): Promise<void> {
    const { objects, membership } = this.cluster;
    const lease = membership.leaseId;
    const all = new Map<string, TransactionOperation>();
    // One unit per object: its records (those no earlier unit wrote) and its name.
    const units = created.map((object) => {
      const puts = new Map<string, TransactionOperation>();
      objects.recordPuts(object.id, lease, undefined, puts);
      const records = new Map([...puts].filter(([id]) => !all.has(id)));
      for (const [id, operation] of records) all.set(id, operation);
      const change: NameChange | undefined =
        object.name === undefined ? undefined : { name: object.name, id: object.id, lease, override: object.override };
      return { records, change };
    });
    const batches = packIntoTransactions(units);

    // A few transactions in flight at once: etcd commits them faster than one after another.
    const committed: CommittedBatch[] = [];
    const notFound = (id: string) => objects.notFound(id);
    const commit = async (current: CommittedBatch): Promise<void> => {
      if (current.changes.length > 0 && sizeOf(current) <= MAX_OPERATIONS_PER_TRANSACTION) {
        const { revision } = await this.cluster.names.put(current.changes, [...current.records.values()], [], notFound);
        committed.push(current);
        objects.published(current.records, revision, new Map());
        return;
      }
      // Records without names, or too many for one transaction (one huge tree): on their own.
      const revision = BigInt((await commitInBatches(this.cluster.connection, [...current.records.values()])).revision);
      committed.push({ records: current.records, changes: [] });
      objects.published(current.records, revision, new Map());
      if (current.changes.length === 0) return;
      await this.cluster.names.put(current.changes, [], [], notFound);
      committed.push({ records: new Map(), changes: current.changes });
    };
    let failure: { error: unknown } | undefined;
    // Batches whose transaction got no answer (Unavailable: a timeout, a dropped connection): etcd
    // may have committed them all the same, so they are taken back as if they had been.
    const uncertain: CommittedBatch[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (!failure && next < batches.length) {
        const batch = batches[next++];
        await commit(batch).catch((error: unknown) => {
          if (isTrellisError(error) && error.code === 'Unavailable') uncertain.push(batch);
          failure ??= { error };
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(TRANSACTIONS_IN_FLIGHT, batches.length) }, worker));
    if (failure) {
      // A transaction with no answer has used up the call deadline already: the call answers now
      // (docs/cluster.md), and the undo, which would wait as long again, goes on in the background.
      const undone = this.unpublisher.undo(committed, uncertain);
      if (uncertain.length === 0) await undone;
      else void undone.catch(() => undefined);
      throw failure.error;
    }
    this.afterPublish(lease, [...all.keys()]);
  }
}

/** An object record as etcd holds it: what a compare-and-swap on it needs. */
interface SeenRecord {
  readonly value: Buffer;
  readonly lease: string;
  readonly modRevision: bigint;
}

const seenOf = (kv: IKeyValue): SeenRecord => ({
  value: kv.value,
  lease: String(kv.lease),
  modRevision: BigInt(kv.mod_revision),
});

/** The record of `id` in etcd, or undefined. Errors: Unavailable. */
async function readRecord(connection: EtcdConnection, id: string): Promise<SeenRecord | undefined> {
  const response = await connection.run(`read the record of ${id}`, (kv) => kv.get(objectKey(id)).exec());
  const kv = response.kvs[0] as IKeyValue | undefined;
  return kv && seenOf(kv);
}

function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => b[key] === a[key]);
}

/** Operations a batch takes: its records, and a name and its pin per change (NameDirectory.put). */
const sizeOf = (batch: CommittedBatch): number => batch.records.size + 2 * batch.changes.length;

/** Packs units into transactions of at most MAX_OPERATIONS_PER_TRANSACTION operations. */
function packIntoTransactions(
  units: ReadonlyArray<{ records: Map<string, TransactionOperation>; change: NameChange | undefined }>,
): CommittedBatch[] {
  const batches: CommittedBatch[] = [];
  let batch: CommittedBatch = { records: new Map(), changes: [] };
  for (const unit of units) {
    const unitSize = unit.records.size + (unit.change ? 2 : 0);
    if (sizeOf(batch) + unitSize > MAX_OPERATIONS_PER_TRANSACTION && sizeOf(batch) > 0) {
      batches.push(batch);
      batch = { records: new Map(), changes: [] };
    }
    for (const [id, operation] of unit.records) batch.records.set(id, operation);
    if (unit.change) batch.changes.push(unit.change);
  }
  if (sizeOf(batch) > 0) batches.push(batch);
  return batches;
}
