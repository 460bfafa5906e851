/**
 * The durable layer (`--data-dir`): a MetaService over the local or etcd one that also keeps
 * persisted objects (their metadata trees and bytes) and the names that point to them in the
 * data dir. It is one more layer behind the interface, not a branch in any handler.
 *
 * - persist, and publishing with `persist` (or any name, in a cluster, where naming persists),
 *   resolve only once the bytes and the catalog entry are durable (durable-store.ts).
 * - Deletes, forced name drops and expiries reach the catalog through the table's `deleted`
 *   event, whatever path took the object away; a delete answers once its removal is durable.
 * - At start, persisted objects come back into the table under their ids, not resident (their
 *   bytes load on first get), with their names; those whose ttl passed while the daemon was
 *   down are deleted before it is ready.
 */
import { daemonLog } from '../log';
import type { ClusterInfoReply, GetObjectReply, ObjectMeta, ObjectSummary } from '../../protocol/messages';
import type { Adopted, DeleteOptions, MetaService, NewObject, Pending, Persistence } from '../metadata/meta-service';
import { historyOf, type NameHistory } from '../name-history';
import type { NameTable } from '../names';
import type { BlobBacking, ObjectFilter, ObjectTable, RestoredObject, StoredObject } from '../object-table';
import type { Residency } from '../residency';
import type { SegmentPool } from '../segment-pool';
import type { ClientSession } from '../session';
import type { DurableStore, ObjectToPersist } from './durable-store';
import { IdCeiling } from './id-ceiling';
import type { IdGenerator } from '../../protocol/ids';
import type { PersistedName, PersistedObject } from './records';

/** What the durable layer needs from the daemon it serves. */
export interface DurableParts {
  readonly table: ObjectTable;
  readonly names: NameTable;
  readonly pool: SegmentPool;
  readonly residency: Residency;
  /** A session of the daemon's own, to hold blobs while their bytes are written. */
  openSession(pid: number): ClientSession;
  closeSession(session: ClientSession): void;
  /** In a cluster, naming an object persists it. */
  readonly namingPersists: boolean;
  /** The daemon's object ids: kept under a ceiling in the catalog (id-ceiling.ts). */
  readonly ids: IdGenerator;
}

export class DurableMetadata implements MetaService {
  /** Names kept in the catalog, and the object each points to; and the other way round. */
  private readonly durableNames = new Map<string, string>();
  private readonly namesById = new Map<string, Set<string>>();
  /** Persisted objects deleted from the table, waiting to leave the catalog together. */
  private pendingRemovals = new Set<string>();
  private removing: Promise<void> = Promise.resolve();
  /** label() calls in flight, by object: they write the catalog themselves. */
  private readonly labelling = new Map<string, number>();
  /** Catalog writes of labels set elsewhere, one after another. */
  private adoptedLabels: Promise<void> = Promise.resolve();
  private readonly idCeiling: IdCeiling;

  constructor(
    private readonly inner: MetaService,
    private readonly store: DurableStore,
    private readonly local: DurableParts,
  ) {
    this.idCeiling = new IdCeiling(local.ids, store);
  }

  async start(): Promise<void> {
    await this.inner.start();
    const { objects, names, expired } = this.store.loaded;
    const restored = membersFirst([...objects, ...expired]);
    this.local.table.restore(restored.map((record) => this.toRestored(record)));
    await this.idCeiling.start();
    const adoptedNames: Record<string, NameHistory> = {};
    for (const record of names) {
      const latest = record.versions[0];
      if (!latest || !this.local.table.sealedObjectOrUndefined(latest.id)) continue;
      // Older versions whose objects were not persisted (or are gone) are not kept.
      const kept = record.versions.filter((entry, i) => i === 0 || this.local.table.sealedObjectOrUndefined(entry.id));
      adoptedNames[record.name] = historyOf(kept, record.last);
      this.rememberName(record.name, latest.id);
    }
    const live = new Set(restored.map((record) => record.id));
    for (const record of expired) live.delete(record.id);
    await this.inner.adopt({
      objects: objects
        .filter((record) => live.has(record.id))
        .map((record) => ({ id: record.id, expiresAt: record.expiresAt ?? undefined })),
      names: adoptedNames,
    });
    const gone = expired.map((record) => record.id).filter((id) => this.local.table.sealedObjectOrUndefined(id));
    if (gone.length > 0) await this.delete(undefined, gone, { deep: true, force: true });
  }

  async stop(): Promise<void> {
    await this.inner.stop();
    await this.removing;
    await this.adoptedLabels;
    await this.idCeiling.stop();
    await this.store.close();
  }

  info(): ClusterInfoReply {
    return this.inner.info();
  }

  requireWritable(what: string): void {
    this.inner.requireWritable(what);
  }

  namesCurrent(what: string): Promise<void> | undefined {
    return this.inner.namesCurrent(what);
  }

  loadNames(names: readonly string[]): Promise<void> | undefined {
    return this.inner.loadNames(names);
  }

  listNames(pattern?: string): Pending<string[]> {
    return this.inner.listNames(pattern);
  }

  adopt(adopted: Adopted): Promise<void> {
    return this.inner.adopt(adopted);
  }

  persistedCount(): number {
    return this.store.persistedCount;
  }

  persistence(id: string): Persistence {
    const inner = this.inner.persistence(id);
    return this.local.table.sealedObjectOrUndefined(id) ? { ...inner, persisted: this.store.isPersisted(id) } : inner;
  }

  exists(id: string): boolean {
    return this.inner.exists(id);
  }

  listObjects(filter: ObjectFilter, limit: number): Pending<ObjectSummary[]> {
    return this.inner.listObjects(filter, limit);
  }

  view<T>(read: () => T): Pending<T> {
    return this.inner.view(read);
  }

  remoteRecordCount(): number {
    return this.inner.remoteRecordCount();
  }

  getMeta(id: string): ObjectMeta {
    return this.inner.getMeta(id);
  }

  remoteObject(id: string, fetch: boolean): GetObjectReply | Promise<string> | undefined {
    return this.inner.remoteObject(id, fetch);
  }

  /** Another instance's object is the inner backend's; a local one goes to disk first. */
  async persist(id: string, ttlSeconds: number | undefined): Promise<void> {
    const object = this.local.table.sealedObjectOrUndefined(id);
    if (!object) return this.inner.persist(id, ttlSeconds);
    const wasPersisted = this.store.isPersisted(id);
    let written: string[] = [];
    if (!wasPersisted || ttlSeconds !== undefined) {
      const expiresAt = ttlSeconds === undefined ? null : Date.now() + ttlSeconds * 1000;
      written = await this.writeTrees([id], new Map([[id, expiresAt]]));
    }
    try {
      await this.inner.persist(id, ttlSeconds);
    } catch (error) {
      if (!wasPersisted) await this.store.remove(written).catch(() => undefined);
      throw error;
    }
    this.markOnDisk(written);
  }

  /**
   * A persisted object's record is written again with the new labels, keeping its bytes and
   * expiry on disk (DurableStore.persist with a record and no bytes). All or nothing: when the
   * catalog write fails, the changed labels are set back as they were (in etcd too).
   */
  async label(id: string, changes: Record<string, string | null>): Promise<Record<string, string>> {
    const before = this.local.table.sealedObjectOrUndefined(id)?.labels;
    this.labelling.set(id, (this.labelling.get(id) ?? 0) + 1);
    try {
      const labels = await this.inner.label(id, changes);
      const object = this.local.table.sealedObjectOrUndefined(id);
      if (object && before && this.store.isPersisted(id)) {
        try {
          await this.writeLabels(object);
        } catch (error) {
          const undo = Object.fromEntries(Object.keys(changes).map((key) => [key, before[key] ?? null]));
          await Promise.resolve(this.inner.label(id, undo)).catch(() => undefined);
          throw error;
        }
      }
      return labels;
    } finally {
      const left = this.labelling.get(id)! - 1;
      if (left === 0) this.labelling.delete(id);
      else this.labelling.set(id, left);
    }
  }

  /**
   * The table's `relabeled` event. Labels that another daemon set on one of this daemon's
   * persisted objects (through its record in etcd) reach the catalog here, so that a restart
   * does not publish the record again with the labels it had before. label() writes its own.
   */
  relabeled(object: StoredObject): void {
    if (this.labelling.has(object.id) || !this.store.isPersisted(object.id)) return;
    this.adoptedLabels = this.adoptedLabels
      .then(() =>
        this.local.table.sealedObjectOrUndefined(object.id) === object ? this.writeLabels(object) : undefined,
      )
      .catch((error: Error) =>
        daemonLog().warn({ id: object.id }, `could not write new labels to the catalog: ${error.message}`),
      );
  }

  /** The object's record again, with its labels; its bytes and expiry on disk stay. */
  private writeLabels(object: StoredObject): Promise<void> {
    return this.store.persist([describeForDisk(object, this.inner.persistence(object.id).expiresAt)]);
  }

  publishNew(session: ClientSession, created: readonly NewObject[]): Pending<void> {
    const durable = created.filter(
      (object) => object.persist || (this.local.namingPersists && object.name !== undefined),
    );
    const published = this.inner.publishNew(session, created);
    if (durable.length === 0) return published;
    return (async () => {
      await published;
      try {
        this.markOnDisk(
          await this.writeTrees(
            durable.map((object) => object.id),
            new Map(),
          ),
        );
      } catch (error) {
        const ids = created.map((object) => object.id).filter((id) => this.local.table.sealedObjectOrUndefined(id));
        await Promise.resolve(this.inner.delete(session, ids, { deep: true, force: true })).catch(() => undefined);
        throw error;
      }
    })();
  }

  async putNames(
    entries: Record<string, string>,
    override: boolean,
    expect?: Record<string, number>,
  ): Promise<Record<string, number>> {
    const versions = await this.inner.putNames(entries, override, expect);
    const trees: string[] = [];
    const put: PersistedName[] = [];
    const drop: string[] = [];
    for (const [name, id] of Object.entries(entries)) {
      const local = this.local.table.sealedObjectOrUndefined(id) !== undefined;
      if (local && this.store.isPersisted(id)) put.push(this.nameRecord(name));
      else if (local && this.local.namingPersists) trees.push(id);
      else if (this.durableNames.has(name)) drop.push(name);
    }
    // writeTrees keeps the names that point into the trees it writes.
    if (trees.length > 0) this.markOnDisk(await this.writeTrees(trees, new Map()));
    if (put.length > 0 || drop.length > 0) await this.store.updateNames({ put, drop });
    for (const record of put) this.rememberName(record.name, record.versions[0].id);
    for (const name of drop) this.forgetName(name);
    return versions;
  }

  /** The catalog keeps the name's whole version list, or drops it with its last version. */
  async dropVersion(name: string, version: number): Promise<void> {
    await this.inner.dropVersion(name, version);
    if (!this.durableNames.has(name)) return;
    const history = this.local.names.history(name);
    if (history) {
      await this.store.updateNames({ put: [this.nameRecord(name)] });
      this.rememberName(name, history.versions[0].id);
    } else {
      await this.store.updateNames({ drop: [name] });
      this.forgetName(name);
    }
  }

  async dropName(name: string): Promise<boolean> {
    const dropped = await this.inner.dropName(name);
    if (this.durableNames.has(name)) {
      await this.store.updateNames({ drop: [name] });
      this.forgetName(name);
    }
    return dropped;
  }

  async delete(session: ClientSession | undefined, ids: string[], options: DeleteOptions): Promise<string[]> {
    const deleted = await this.inner.delete(session, ids, options);
    await this.removing;
    return deleted;
  }

  /**
   * The table's `deleted` event: a persisted object left the view (deleted, expired, or its
   * names forced away with it). Removals batch into one catalog commit.
   */
  deleted(object: StoredObject): void {
    if (!this.store.isPersisted(object.id)) return;
    const first = this.pendingRemovals.size === 0;
    this.pendingRemovals.add(object.id);
    if (!first) return;
    this.removing = this.removing.then(
      () =>
        new Promise<void>((resolve) => {
          // Everything one request deletes is gathered before the commit.
          setImmediate(() => {
            const ids = [...this.pendingRemovals];
            this.pendingRemovals = new Set();
            const names = ids.flatMap((id) => [...(this.namesById.get(id) ?? [])]);
            for (const name of names) this.forgetName(name);
            // A forced delete drops only the versions pointing to the object: an earlier one may be latest now.
            const put = names.filter((name) => this.local.names.history(name)).map((name) => this.nameRecord(name));
            const drop = names.filter((name) => !this.local.names.history(name));
            for (const record of put) this.rememberName(record.name, record.versions[0].id);
            this.store.remove(ids, { put, drop }).then(resolve, resolve);
          });
        }),
    );
  }

  /**
   * Writes the trees of local objects (root and members not yet persisted) with the names that
   * point into them, in one commit. Every blob is held by a session of the daemon's own while
   * its bytes are written, so it can be neither spilled nor freed meanwhile; spilled ones are
   * loaded first. `expiry` gives roots their expiry; others keep theirs. Returns the ids written.
   * Errors: IOError naming the path, OutOfMemory (loading a spilled blob).
   */
  private async writeTrees(roots: readonly string[], expiry: ReadonlyMap<string, number | null>): Promise<string[]> {
    const { table, residency, pool } = this.local;
    const session = this.local.openSession(process.pid);
    try {
      const blobs = () => roots.flatMap((id) => table.blobsOf(id));
      const described = await residency.withResident(blobs, () => roots.map((id) => table.describe(session, id)));
      const locations = new Map(described.flatMap((tree) => tree.blobs.map((blob) => [blob.id, blob] as const)));
      const objects: ObjectToPersist[] = [];
      const names: PersistedName[] = [];
      const seen = new Set<string>();
      const walk = (object: StoredObject, root: boolean): void => {
        if (seen.has(object.id) || (!root && this.store.isPersisted(object.id))) return;
        seen.add(object.id);
        const location = locations.get(object.id);
        objects.push({
          ...describeForDisk(object, expiry.get(object.id) ?? null),
          ...(location ? { bytes: pool.memory.read(location, 0, location.size) } : {}),
        });
        for (const name of object.names) names.push(this.nameRecord(name));
        for (const [key, id] of Object.entries(object.members)) {
          if (object.remoteMembers?.[key]) continue;
          const member = table.sealedObjectOrUndefined(id);
          if (member) walk(member, false);
        }
      };
      for (const id of roots) walk(table.sealedObject(id), true);
      await this.store.persist(objects, { put: names });
      for (const record of names) this.rememberName(record.name, record.versions[0].id);
      return objects.map((object) => object.id);
    } finally {
      this.local.closeSession(session);
    }
  }

  /** Blobs whose persist is complete can leave memory without being written again. */
  private markOnDisk(ids: readonly string[]): void {
    for (const id of ids) {
      const object = this.local.table.sealedObjectOrUndefined(id);
      if (object?.blob) this.local.residency.keptOnDisk(object, this.durableBacking());
    }
  }

  private durableBacking(): BlobBacking {
    return { path: this.store.dir, durable: true };
  }

  private toRestored(record: PersistedObject): RestoredObject {
    const { blob, expiresAt, ...description } = record;
    return { ...description, backing: blob ? this.durableBacking() : undefined };
  }

  /** A name as the catalog keeps it: its whole version list, newest first. */
  private nameRecord(name: string): PersistedName {
    const history = this.local.names.history(name);
    const versions = (history?.versions ?? []).map(({ version, id, createdAt }) => ({ version, id, createdAt }));
    return history === undefined ? { name, versions } : { name, versions, last: history.last };
  }

  private rememberName(name: string, id: string): void {
    this.forgetName(name);
    this.durableNames.set(name, id);
    const set = this.namesById.get(id) ?? new Set<string>();
    set.add(name);
    this.namesById.set(id, set);
  }

  private forgetName(name: string): void {
    const id = this.durableNames.get(name);
    if (id === undefined) return;
    this.durableNames.delete(name);
    const set = this.namesById.get(id);
    set?.delete(name);
    if (set?.size === 0) this.namesById.delete(id);
  }
}

/** An object's durable record, without bytes. */
function describeForDisk(object: StoredObject, expiresAt: number | null): ObjectToPersist {
  return {
    id: object.id,
    typename: object.typename,
    nbytes: object.nbytes,
    createdAt: object.createdAt,
    members: object.members,
    fields: object.fields,
    labels: object.labels,
    ...(object.remoteMembers ? { remoteMembers: object.remoteMembers } : {}),
    ...(object.derivedFrom.length > 0 ? { derivedFrom: object.derivedFrom } : {}),
    expiresAt,
  };
}

/**
 * Orders records so that members come before the objects that hold them, leaving out any whose
 * members are missing (a damaged catalog), and what depends on those.
 */
function membersFirst(records: readonly PersistedObject[]): PersistedObject[] {
  const byId = new Map(records.map((record) => [record.id, record]));
  const state = new Map<string, 'visiting' | 'done' | 'dropped'>();
  const ordered: PersistedObject[] = [];
  const visit = (record: PersistedObject): boolean => {
    const seen = state.get(record.id);
    if (seen) return seen === 'done';
    state.set(record.id, 'visiting');
    for (const [key, id] of Object.entries(record.members)) {
      if (record.remoteMembers?.[key]) continue;
      const member = byId.get(id);
      if (!member || !visit(member)) {
        state.set(record.id, 'dropped');
        return false;
      }
    }
    state.set(record.id, 'done');
    ordered.push(record);
    return true;
  };
  for (const record of records) visit(record);
  return ordered;
}
