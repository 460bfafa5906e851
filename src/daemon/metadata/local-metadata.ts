/**
 * The metadata backend of a daemon alone: every client already sees every object, so
 * publishing is naming, and persist only sets an expiry. Everything answers at once.
 */
import type { ClusterInfoReply, GetObjectReply, ObjectMeta, ObjectSummary } from '../../protocol/messages';
import { standaloneInfo } from '../cluster/cluster-info';
import { Expirations } from '../cluster/expirations';
import type { NameTable } from '../names';
import type { ObjectFilter, ObjectTable } from '../object-table';
import type { ClientSession } from '../session';
import type { Adopted, DeleteOptions, MetaService, NewObject, Persistence } from './meta-service';

export class LocalMetadata implements MetaService {
  private readonly expirations = new Expirations((id) => {
    if (this.table.exists(id)) this.delete(undefined, [id], { deep: true, force: true });
  });
  /** Objects persist() was called for (alone, that changes nothing but getMeta's answer and expiry). */
  private readonly persisted = new Set<string>();

  constructor(
    private readonly table: ObjectTable,
    private readonly names: NameTable,
    private readonly instanceId: number,
    private readonly socketPath: string,
  ) {}

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    this.expirations.clear();
  }

  info(): ClusterInfoReply {
    return standaloneInfo(this.instanceId, this.socketPath);
  }

  requireWritable(): void {}

  namesCurrent(): undefined {
    return undefined;
  }

  /** Every name is in the NameTable. */
  loadNames(): undefined {
    return undefined;
  }

  listNames(pattern?: string): string[] {
    return this.names.list(pattern);
  }

  async adopt(adopted: Adopted): Promise<void> {
    for (const { id, expiresAt } of adopted.objects) {
      this.persisted.add(id);
      if (expiresAt !== undefined) this.expirations.schedule(id, expiresAt);
    }
    for (const [name, history] of Object.entries(adopted.names)) this.names.set(name, history);
  }

  persistedCount(): number {
    return this.persisted.size;
  }

  /** Everything is in memory here: the read just runs. */
  view<T>(read: () => T): T {
    return read();
  }

  remoteRecordCount(): number {
    return 0;
  }

  persistence(id: string): Persistence {
    this.table.sealedObject(id);
    return { persisted: this.persisted.has(id), expiresAt: this.expirations.expiresAt(id) ?? null };
  }

  exists(id: string): boolean {
    return this.table.exists(id);
  }

  listObjects(filter: ObjectFilter, limit: number): ObjectSummary[] {
    return this.table.list(filter, limit);
  }

  getMeta(id: string): ObjectMeta {
    return this.table.metaTree(id);
  }

  remoteObject(): GetObjectReply | Promise<string> | undefined {
    return undefined;
  }

  publishNew(session: ClientSession, created: readonly NewObject[]): void {
    try {
      for (const object of created)
        if (object.name !== undefined) this.names.put(object.name, object.id, object.override);
    } catch (error) {
      // Handlers refuse taken names up front, so this undoes only what cannot happen alone.
      this.table.delete(
        session,
        created.map((object) => object.id),
        { deep: true, force: true },
      );
      throw error;
    }
  }

  putNames(
    entries: Record<string, string>,
    override: boolean,
    expect?: Record<string, number>,
  ): Record<string, number> {
    return this.names.putMany(entries, override, expect);
  }

  dropVersion(name: string, version: number): void {
    this.names.dropVersion(name, version);
  }

  dropName(name: string): boolean {
    return this.names.drop(name);
  }

  delete(session: ClientSession | undefined, ids: string[], options: DeleteOptions): string[] {
    const deleted = this.table.delete(session, ids, options);
    for (const id of deleted) {
      this.expirations.cancel(id);
      this.persisted.delete(id);
    }
    return deleted;
  }

  persist(id: string, ttlSeconds: number | undefined): void {
    // Alone, every client already sees every object: only the ttl has an effect.
    this.table.sealedObject(id);
    this.persisted.add(id);
    if (ttlSeconds !== undefined) this.expirations.schedule(id, Date.now() + ttlSeconds * 1000);
  }

  label(id: string, changes: Record<string, string | null>): Record<string, string> {
    return this.table.relabel(id, changes);
  }
}
