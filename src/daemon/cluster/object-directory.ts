/**
 * Persisted objects, cluster-wide: this daemon's own objects it has persisted (their records in
 * a PrefixMirror of its own `objects/<instance>` keys, which it publishes again whenever its
 * lease is lost), and other instances' records, read from etcd when asked and cached
 * (RemoteRecords), so a daemon holds what it uses, not the whole cluster.
 *
 * Reads are synchronous over what is loaded: one that needs a record not loaded throws
 * RecordsNotLoaded, and `view` loads the records and runs it again.
 *
 * A record is written for the object and for each member, each under its own key, so a member
 * shared by two persisted objects is written once and a deep delete can remove exactly the
 * members nothing else uses.
 */
import { TrellisError } from '../../errors';
import { instanceOf } from '../../protocol/ids';
import type { ObjectMeta, ObjectSummary } from '../../protocol/messages';
import type { TransactionOperation } from '../metadata/batched-transaction';
import type { InstanceStatus } from '../metadata/instance-info';
import { RecordsNotLoaded, type Pending } from '../metadata/meta-service';
import { objectMatcher, type ObjectFilter, type ObjectTable, type StoredObject } from '../object-table';
import type { PrefixMirror } from '../metadata/prefix-mirror';
import {
  encodeRecord,
  encodeRewrites,
  instanceObjectsPrefix,
  isExpired,
  objectKey,
  rewriteKey,
  shallowMeta,
  summaryOf,
  type CachedRecord,
  type ObjectRecord,
} from './records';
import type { RemoteRecords } from './remote-records';

export class ObjectDirectory {
  /** This daemon's objects it has persisted, and when each expires (undefined: never). */
  private readonly persisted = new Map<string, number | undefined>();
  /** Records loaded for the read `view` is running (null: etcd has none), cacheable or not. */
  private loaded: Map<string, CachedRecord | null> | undefined;
  private reading = 0;

  /** `mirror` holds this daemon's own `objects/` keys; `remote` reads everyone else's. */
  constructor(
    readonly mirror: PrefixMirror,
    readonly remoteRecords: RemoteRecords,
    private readonly table: ObjectTable,
    private readonly instanceId: number,
    private readonly instance: (instanceId: number) => InstanceStatus | undefined,
  ) {}

  /**
   * Runs `read` over the cluster view: when it needs records of other instances that are not
   * loaded, reads them from etcd and runs it again. Inside another view it just runs (the outer
   * one loads). Errors: whatever `read` throws, Unavailable (etcd).
   */
  view<T>(read: () => T): Pending<T> {
    if (this.reading > 0) return read();
    try {
      return this.run(read);
    } catch (error) {
      if (!(error instanceof RecordsNotLoaded)) throw error;
      return this.loadAndRun(read, error.ids, new Map());
    }
  }

  private async loadAndRun<T>(read: () => T, missing: string[], loaded: Map<string, CachedRecord | null>): Promise<T> {
    for (;;) {
      for (const [id, record] of await this.remoteRecords.load(missing)) loaded.set(id, record);
      try {
        return this.run(read, loaded);
      } catch (error) {
        if (!(error instanceof RecordsNotLoaded)) throw error;
        // Each round loads something new, so a finite graph ends; asking again is a bug.
        if (error.ids.every((id) => loaded.has(id))) throw new Error('loaded records still missing', { cause: error });
        missing = error.ids;
      }
    }
  }

  private run<T>(read: () => T, loaded?: Map<string, CachedRecord | null>): T {
    this.reading++;
    this.loaded = loaded;
    try {
      return read();
    } finally {
      this.reading--;
      this.loaded = undefined;
    }
  }

  /** Other instances' records held in memory now. */
  get remoteCount(): number {
    return this.remoteRecords.size;
  }

  /** Whether this daemon has persisted its object `id`. */
  isPersisted(id: string): boolean {
    return this.persisted.has(id);
  }

  /** When this daemon's persisted object `id` expires (undefined: never, or not persisted). */
  expiryOf(id: string): number | undefined {
    return this.persisted.get(id);
  }

  /** How many objects this daemon has persisted. */
  get persistedCount(): number {
    return this.persisted.size;
  }

  /** This daemon's persisted objects and their expiries, as a list to go through. */
  persistedObjects(): Array<[id: string, expiresAt: number | undefined]> {
    return [...this.persisted];
  }

  /** Forgets that `id` is persisted (its key is going, or is gone); returns its expiry as it was. */
  forgetPersisted(id: string): { expiresAt: number | undefined } | undefined {
    if (!this.persisted.has(id)) return undefined;
    const expiresAt = this.persisted.get(id);
    this.persisted.delete(id);
    return { expiresAt };
  }

  /** Takes back a forgetPersisted whose etcd write failed. */
  restorePersisted(id: string, expiresAt: number | undefined): void {
    this.persisted.set(id, expiresAt);
  }

  /**
   * The cluster record of an id this daemon does not hold; undefined when the id is (or would
   * be) local. Errors: ObjectNotFound naming the instance, for another instance's unknown id;
   * RecordsNotLoaded.
   */
  lookup(id: string): CachedRecord | undefined {
    if (this.table.sealedObjectOrUndefined(id) || instanceOf(id) === this.instanceId) return undefined;
    return this.remote(id) ?? throwError(this.notFound(id));
  }

  /** Another instance's live persisted object, or undefined (local, unknown, or expired). Errors: RecordsNotLoaded. */
  remote(id: string): CachedRecord | undefined {
    if (instanceOf(id) === this.instanceId || this.table.sealedObjectOrUndefined(id)) return undefined;
    const record = this.record(id);
    return record && !isExpired(record) ? record : undefined;
  }

  /**
   * The error for an id that is neither here nor in the cluster view: names the instance that
   * made it and whether it is still around.
   */
  notFound(id: string): TrellisError {
    const owner = instanceOf(id);
    if (owner === this.instanceId) return new TrellisError('ObjectNotFound', `object ${id} does not exist`);
    const record = this.loaded?.get(id);
    if (record && isExpired(record)) {
      return new TrellisError(
        'ObjectNotFound',
        `object ${id} expired at ${new Date(record.expiresAt!).toISOString()} (persisted with a ttl by instance ${owner})`,
      );
    }
    const status = this.instance(owner);
    const where = !status
      ? `instance ${owner} that made it is not in the cluster`
      : status.alive
        ? `instance ${owner} (${status.hostname}) that made it has not persisted it, or it was deleted`
        : `instance ${owner} (${status.hostname}) that made it has left the cluster`;
    return new TrellisError('ObjectNotFound', `object ${id} does not exist here or in the cluster: ${where}`);
  }

  /** A remote object's metadata tree. Errors: ObjectNotFound (a member is gone), RecordsNotLoaded. */
  meta(record: CachedRecord): ObjectMeta {
    const members: Record<string, ObjectMeta> = {};
    for (const [key, id] of Object.entries(record.members)) {
      const described = record.remoteMembers?.[key];
      if (described) {
        members[key] = described;
        continue;
      }
      const member = this.record(id);
      if (!member)
        throw new TrellisError(
          'ObjectNotFound',
          `object ${record.id}: member ${JSON.stringify(key)} (${id}) is not in the cluster view`,
        );
      members[key] = this.meta(member);
    }
    return shallowMeta(record, members);
  }

  /** Does the tree hold bytes (blobs), which only its owner has? Errors: RecordsNotLoaded. */
  hasBytes(record: CachedRecord): boolean {
    return (
      record.blob ||
      Object.entries(record.members).some(([key, id]) => {
        const described = record.remoteMembers?.[key];
        if (described) return described.nbytes > 0;
        const member = this.record(id);
        return member !== null && this.hasBytes(member);
      })
    );
  }

  /**
   * Other instances' persisted objects that pass the filter, newest first, at most `limit`:
   * every record is read from etcd (in pages), as listObjects promises every object the cluster
   * shows. Errors: Unavailable.
   */
  async list(filter: ObjectFilter, limit: number): Promise<ObjectSummary[]> {
    if (limit === 0) return [];
    const matches = objectMatcher(filter);
    const now = Date.now();
    let found: ObjectSummary[] = [];
    await this.remoteRecords.scanAll(this.instanceId, (record) => {
      if (isExpired(record, now) || this.table.sealedObjectOrUndefined(record.id) || !matches(record)) return;
      found.push(summaryOf(record));
      // Only the newest `limit` can be shown: keep memory bounded by it, not by the cluster.
      if (found.length >= 2 * limit) found = newest(found, limit);
    });
    return newest(found, limit);
  }

  /**
   * What a delete of these remote objects takes with it, by the graph rules of ObjectTable,
   * over the cluster's records. Which persisted objects hold a member is in no record of the
   * member, so unless `force` without `deep` it reads the records of each owner involved (in
   * pages; parents and members of a persisted object are its owner's too).
   * Errors: ObjectNotFound, Conflict, Unavailable.
   */
  async planDelete(
    ids: string[],
    options: { deep: boolean; force: boolean },
    namesOf: (id: string) => string[],
  ): Promise<string[]> {
    const roots = await this.view(() => ids.map((id) => this.remote(id) ?? throwError(this.notFound(id))));
    const doomed = new Set(roots.map((record) => record.id));
    if (options.force && !options.deep) return [...doomed];
    const records = new Map<string, CachedRecord>();
    const parents = new Map<string, Set<string>>();
    for (const owner of new Set(roots.map((root) => root.instanceId))) {
      await this.remoteRecords.scanInstance(instanceObjectsPrefix(owner), (record) => {
        if (isExpired(record)) return;
        records.set(record.id, record);
        for (const member of Object.values(record.members)) {
          const set = parents.get(member) ?? new Set<string>();
          parents.set(member, set.add(record.id));
        }
      });
    }
    if (!options.force) {
      for (const root of roots) {
        const [name] = namesOf(root.id);
        if (name !== undefined) {
          throw new TrellisError(
            'Conflict',
            `object ${root.id} is published as ${JSON.stringify(name)}: drop the name first, or delete with force`,
          );
        }
        for (const parent of parents.get(root.id) ?? []) {
          if (!doomed.has(parent)) {
            throw new TrellisError(
              'Conflict',
              `object ${root.id} is a member of ${parent}: delete that first, or delete with force`,
            );
          }
        }
      }
    }
    if (options.deep) {
      const pending = roots.flatMap((root) => Object.values(root.members));
      while (pending.length > 0) {
        const member = records.get(pending.pop()!);
        if (!member || doomed.has(member.id) || namesOf(member.id).length > 0) continue;
        if (![...(parents.get(member.id) ?? [])].every((parent) => doomed.has(parent))) continue;
        doomed.add(member.id);
        pending.push(...Object.values(member.members));
      }
    }
    return [...doomed];
  }

  /**
   * Puts for the records of a local object and its members, on `leaseId`. Members already
   * persisted are skipped unless `all` (publishing everything again after a lost lease).
   * Errors: ObjectNotFound, NotSealed.
   */
  recordPuts(
    id: string,
    leaseId: string,
    expiresAt: number | undefined,
    into: Map<string, TransactionOperation>,
    all = false,
  ): void {
    const walk = (object: StoredObject, root: boolean): void => {
      if (into.has(object.id) || (!root && !all && this.persisted.has(object.id))) return;
      const record: ObjectRecord = {
        typename: object.typename,
        nbytes: object.nbytes,
        createdAt: object.createdAt,
        labels: object.labels,
        fields: object.fields,
        members: object.members,
        blob: object.blob,
      };
      if (object.remoteMembers) record.remoteMembers = object.remoteMembers;
      if (object.derivedFrom.length > 0) record.derivedFrom = [...object.derivedFrom];
      const expiry = root && expiresAt !== undefined ? expiresAt : this.persisted.get(object.id);
      if (expiry !== undefined) record.expiresAt = expiry;
      into.set(object.id, { kind: 'put', key: objectKey(object.id), value: encodeRecord(record), leaseId });
      for (const [key, member] of Object.entries(object.members)) {
        // A global object's member on another instance is that instance's to persist.
        if (object.remoteMembers?.[key]) continue;
        const found = this.table.sealedObjectOrUndefined(member);
        if (!found)
          throw new TrellisError(
            'ObjectNotFound',
            `cannot persist ${object.id}: member ${JSON.stringify(key)} (${member}) was deleted`,
          );
        walk(found, false);
      }
    };
    walk(this.table.sealedObject(id), true);
  }

  /**
   * Marks records as published by this daemon and shows them in the cache at once. `rootExpiry`
   * holds the objects given a new ttl; the others keep whatever expiry they had.
   */
  published(
    puts: Iterable<[string, TransactionOperation]>,
    revision: bigint,
    rootExpiry: Map<string, number | undefined>,
  ): void {
    for (const [id, operation] of puts) {
      if (operation.kind !== 'put') continue;
      if (!this.persisted.has(id) || rootExpiry.has(id)) this.persisted.set(id, rootExpiry.get(id));
      this.mirror.applyLocal(
        operation.key,
        // The mirror keeps a copy of its own.
        { value: asBuffer(operation.value), lease: operation.leaseId ?? '0' },
        revision,
      );
    }
  }

  /**
   * The operations to write `puts`, with `rewrites/<this instance>` naming `rewritten` (records
   * other daemons may hold in their caches) in the first transaction, right after the first record.
   */
  operations(puts: Map<string, TransactionOperation>, rewritten: string[], leaseId: string): TransactionOperation[] {
    const operations = [...puts.values()];
    if (rewritten.length === 0) return operations;
    const notice: TransactionOperation = {
      kind: 'put',
      key: rewriteKey(this.instanceId),
      value: encodeRewrites(rewritten),
      leaseId,
    };
    operations.splice(1, 0, notice);
    return operations;
  }

  /** Removes records from view at once after this daemon deleted their keys. */
  unpublished(ids: string[], revision: bigint): void {
    for (const id of ids) {
      this.persisted.delete(id);
      if (instanceOf(id) === this.instanceId) this.mirror.applyLocal(objectKey(id), undefined, revision);
      else this.remoteRecords.forget(id);
    }
  }

  /**
   * Another instance's record, from this read's loads or the cache; null when etcd has none (or
   * its owner has left the cluster). Errors: RecordsNotLoaded.
   */
  private record(id: string): CachedRecord | null {
    const loaded = this.loaded?.get(id);
    if (loaded !== undefined) return loaded;
    if (this.instance(instanceOf(id))?.alive === false) return null;
    return this.remoteRecords.cached(id) ?? throwError(new RecordsNotLoaded([id]));
  }
}

/** The newest `limit` summaries, newest first (ties: the larger id first). */
function newest(summaries: ObjectSummary[], limit: number): ObjectSummary[] {
  summaries.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
  return summaries.slice(0, limit);
}

function throwError(error: Error): never {
  throw error;
}

const asBuffer = (value: string | Buffer): Buffer => (typeof value === 'string' ? Buffer.from(value) : value);
