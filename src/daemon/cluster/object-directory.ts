/**
 * Persisted objects, cluster-wide: a cache of every `objects/` record (fed by a PrefixMirror, so
 * getMeta, exists and listObjects of another instance's objects never wait for etcd), and the
 * list of this daemon's own objects it has persisted, which it publishes again whenever its
 * lease is lost (etcd restarted, lost its data, or lost sight of the daemon).
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
import { objectMatcher, type ObjectFilter, type ObjectTable, type StoredObject } from '../object-table';
import type { PrefixMirror } from '../metadata/prefix-mirror';
import {
  decodeRecord,
  encodeRecord,
  idOfObjectKey,
  isExpired,
  objectKey,
  shallowMeta,
  summaryOf,
  type CachedRecord,
  type ObjectRecord,
} from './records';

export class ObjectDirectory {
  private readonly records = new Map<string, CachedRecord>();
  /** Persisted objects that have each record as a member. */
  private readonly parents = new Map<string, Set<string>>();
  /** This daemon's objects it has persisted, and when each expires (undefined: never). */
  private readonly persisted = new Map<string, number | undefined>();

  /** `mirror` holds `objects/` (and may hold other keys, which are ignored). */
  constructor(
    readonly mirror: PrefixMirror,
    private readonly table: ObjectTable,
    private readonly instanceId: number,
    private readonly instance: (instanceId: number) => InstanceStatus | undefined,
  ) {
    this.mirror.on('put', (key, entry) => {
      // This daemon's own objects are answered from its table: only others' are decoded.
      const id = idOfObjectKey(key);
      if (id === undefined || instanceOf(id) === this.instanceId) return;
      const record = decodeRecord(key, entry.value, entry.lease);
      if (record) this.remember(record);
    });
    this.mirror.on('delete', (key) => {
      const id = idOfObjectKey(key);
      if (id !== undefined) this.forget(id);
    });
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
   * be) local. Errors: ObjectNotFound naming the instance, for another instance's unknown id.
   */
  lookup(id: string): CachedRecord | undefined {
    if (this.table.sealedObjectOrUndefined(id) || instanceOf(id) === this.instanceId) return undefined;
    return this.remote(id) ?? throwError(this.notFound(id));
  }

  /** Another instance's live persisted object, or undefined (local, unknown, or expired). */
  remote(id: string): CachedRecord | undefined {
    if (instanceOf(id) === this.instanceId || this.table.sealedObjectOrUndefined(id)) return undefined;
    const record = this.records.get(id);
    return record && !isExpired(record) ? record : undefined;
  }

  /**
   * The error for an id that is neither here nor in the cluster view: names the instance that
   * made it and whether it is still around.
   */
  notFound(id: string): TrellisError {
    const owner = instanceOf(id);
    if (owner === this.instanceId) return new TrellisError('ObjectNotFound', `object ${id} does not exist`);
    const record = this.records.get(id);
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

  /** A remote object's metadata tree. Errors: ObjectNotFound (a member is gone). */
  meta(record: CachedRecord): ObjectMeta {
    const members: Record<string, ObjectMeta> = {};
    for (const [key, id] of Object.entries(record.members)) {
      const described = record.remoteMembers?.[key];
      if (described) {
        members[key] = described;
        continue;
      }
      const member = this.records.get(id);
      if (!member)
        throw new TrellisError(
          'ObjectNotFound',
          `object ${record.id}: member ${JSON.stringify(key)} (${id}) is not in the cluster view`,
        );
      members[key] = this.meta(member);
    }
    return shallowMeta(record, members);
  }

  /** Does the tree hold bytes (blobs), which only its owner has? */
  hasBytes(record: CachedRecord): boolean {
    return (
      record.blob ||
      Object.entries(record.members).some(([key, id]) => {
        const described = record.remoteMembers?.[key];
        if (described) return described.nbytes > 0;
        const member = this.records.get(id);
        return member !== undefined && this.hasBytes(member);
      })
    );
  }

  /** Other instances' persisted objects that pass the filter, as listObjects shows them. */
  list(filter: ObjectFilter): ObjectSummary[] {
    const matches = objectMatcher(filter);
    const now = Date.now();
    const found: ObjectSummary[] = [];
    for (const record of this.records.values()) {
      if (
        record.instanceId === this.instanceId ||
        isExpired(record, now) ||
        this.table.sealedObjectOrUndefined(record.id)
      )
        continue;
      if (matches(record)) found.push(summaryOf(record));
    }
    return found;
  }

  /**
   * What a delete of these remote objects takes with it, by the graph rules of ObjectTable,
   * over the cluster view. Errors: ObjectNotFound, Conflict.
   */
  planDelete(ids: string[], options: { deep: boolean; force: boolean }, namesOf: (id: string) => string[]): string[] {
    const roots = ids.map((id) => this.remote(id) ?? throwError(this.notFound(id)));
    const doomed = new Set(roots.map((record) => record.id));
    if (!options.force) {
      for (const root of roots) {
        const [name] = namesOf(root.id);
        if (name !== undefined) {
          throw new TrellisError(
            'Conflict',
            `object ${root.id} is published as ${JSON.stringify(name)}: drop the name first, or delete with force`,
          );
        }
        for (const parent of this.parents.get(root.id) ?? []) {
          if (!doomed.has(parent) && this.records.has(parent)) {
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
        const member = this.records.get(pending.pop()!);
        if (!member || doomed.has(member.id) || namesOf(member.id).length > 0) continue;
        if (
          ![...(this.parents.get(member.id) ?? [])].every((parent) => doomed.has(parent) || !this.records.has(parent))
        )
          continue;
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
        { value: Buffer.from(operation.value), lease: operation.leaseId ?? '0' },
        revision,
      );
    }
  }

  /** Removes records from the cache at once after this daemon deleted their keys. */
  unpublished(ids: string[], revision: bigint): void {
    for (const id of ids) {
      this.persisted.delete(id);
      this.mirror.applyLocal(objectKey(id), undefined, revision);
    }
  }

  private remember(record: CachedRecord): void {
    const previous = this.records.get(record.id);
    if (previous) for (const member of Object.values(previous.members)) this.parents.get(member)?.delete(record.id);
    this.records.set(record.id, record);
    for (const member of Object.values(record.members)) {
      const set = this.parents.get(member) ?? new Set<string>();
      set.add(record.id);
      this.parents.set(member, set);
    }
  }

  private forget(id: string): void {
    const previous = this.records.get(id);
    if (!previous) return;
    this.records.delete(id);
    for (const member of Object.values(previous.members)) {
      const set = this.parents.get(member);
      set?.delete(id);
      if (set?.size === 0) this.parents.delete(member);
    }
  }
}

function throwError(error: Error): never {
  throw error;
}
