/**
 * What `--data-dir` keeps, behind one object: the daemon persists objects and names through it,
 * loads what was there when it starts, and reads persisted blobs back on first get.
 *
 * A persist writes its big blobs' files first (temp, fsync, rename, fsync of the directory),
 * then commits every record, inline blob and name change in one catalog transaction, and
 * resolves once that is durable. So a record exists on disk only once all the bytes it refers
 * to are durable: an object whose persist resolved is whole after any crash, and one whose
 * persist did not is whole (its commit made it) or absent (it did not); files of an absent one
 * are swept at the next open. docs/durability.md gives the whole argument.
 *
 * Small blobs (INLINE_MAX_BYTES or less) go inline in the catalog: no file and no fsync of
 * their own, and any number of them shares one commit's fsync.
 *
 * Operations that share an object id or a name apply in the order they were called (see
 * ../keyed-queue.ts); others run concurrently, and lmdb groups their commits. The store keeps what
 * it is given: the caller persists whole trees (an object with all its members) and drops the
 * names of what it removes; the store does not walk the graph.
 */
import { TrellisError } from '../../errors';
import { BlobFiles, type BlobToWrite } from './blob-files';
import { DurableCatalog, type DamagedRecord } from './catalog';
import { CHUNK_BYTES, checksumOf } from './checksum';
import { DataDir, syncDirectory } from './data-dir';
import { KeyedQueue } from '../keyed-queue';
import { isExpired, type BlobRecord, type PersistedName, type PersistedObject } from './records';

/** Blobs up to this size are kept in the catalog rather than in a file of their own. */
export const INLINE_MAX_BYTES = 64 * 1024;

/** An object to persist: its record without `blob`, and a blob's bytes. */
export interface ObjectToPersist extends Omit<PersistedObject, 'blob'> {
  /**
   * A blob's bytes, usually a view of its shared memory; it must stay valid (the blob sealed
   * and held) until persist settles. Leave it out for metadata objects, and for a blob that is
   * persisted already (a new ttl): its bytes on disk stay as they are.
   */
  bytes?: Uint8Array;
}

export interface NameChanges {
  put?: readonly PersistedName[];
  drop?: readonly string[];
}

/** What the data dir held at open. */
export interface LoadedState {
  /** Persisted objects whose ttl had not passed, to serve under their ids. */
  objects: PersistedObject[];
  names: PersistedName[];
  /** Objects whose ttl passed while no daemon ran: the daemon deletes them (and their names). */
  expired: PersistedObject[];
  /** Ids whose blob file is missing: their reads fail with IOError. */
  missingBlobs: string[];
  /** Catalog records that do not decode; not in `objects` or `names`. */
  damaged: DamagedRecord[];
  /** Leftovers of persists and deletes cut short by a crash, deleted at open. */
  removedFiles: string[];
}

export class DurableStore {
  private readonly queue = new KeyedQueue();
  private closed = false;

  private constructor(
    private readonly dataDir: DataDir,
    private readonly catalog: DurableCatalog,
    private readonly blobFiles: BlobFiles,
    /** Every persisted id, with its blob's record (undefined for metadata objects). */
    private readonly persisted: Map<string, BlobRecord | undefined>,
    /** What was there at open. */
    readonly loaded: LoadedState,
  ) {}

  /** The data dir, absolute. */
  get dir(): string {
    return this.dataDir.root;
  }

  /**
   * Takes DIR (creating it if needed), opens its catalog, deletes leftover files, and reads what
   * it holds; objects with `expiresAt <= now` are listed as expired.
   * Errors: Conflict (another daemon has DIR), IOError (cannot create, lock, or read it).
   */
  static async open(dir: string, now = Date.now()): Promise<DurableStore> {
    const dataDir = await DataDir.open(dir);
    let catalog: DurableCatalog | undefined;
    try {
      catalog = await DurableCatalog.open(dataDir.catalogPath);
      // lmdb fsyncs its files but not the folder that names them: a new catalog's data.mdb must not
      // vanish with a power loss after its first commits.
      await syncDirectory(dataDir.catalogPath);
      const blobFiles = new BlobFiles(dataDir.blobsPath);
      const contents = catalog.read();
      const persisted = new Map<string, BlobRecord | undefined>();
      const withFiles = new Set<string>();
      for (const record of contents.objects) {
        persisted.set(record.id, record.blob);
        if (record.blob?.stored === 'file') withFiles.add(record.id);
      }
      const { removed, missing } = await blobFiles.sweep(withFiles);
      const loaded: LoadedState = {
        objects: contents.objects.filter((record) => !isExpired(record, now)),
        names: contents.names,
        expired: contents.objects.filter((record) => isExpired(record, now)),
        missingBlobs: missing,
        damaged: contents.damaged,
        removedFiles: removed,
      };
      return new DurableStore(dataDir, catalog, blobFiles, persisted, loaded);
    } catch (error) {
      await catalog?.close().catch(() => undefined);
      await dataDir.close();
      throw error;
    }
  }

  /** The instance id the persisted objects were made under; undefined for a new data dir. */
  get instanceId(): number | undefined {
    return this.catalog.instanceId();
  }

  /**
   * Ties the data dir to the instance id this daemon serves under: a new dir records it; a dir
   * that holds another one is refused, since its objects' ids would point elsewhere.
   * Errors: Conflict, IOError.
   */
  async claimInstanceId(instanceId: number): Promise<void> {
    const recorded = this.instanceId;
    if (recorded === instanceId) return;
    if (recorded !== undefined && this.persisted.size > 0) {
      throw new TrellisError(
        'Conflict',
        `the data dir ${this.dir} holds objects of instance ${recorded}, but this daemon is instance ${instanceId}: ` +
          `start it as instance ${recorded} (or use another data dir)`,
      );
    }
    await this.catalog.setInstanceId(instanceId);
  }

  /** The id ceiling recorded last (catalog.ts), if any. */
  get idCeiling(): number | undefined {
    return this.catalog.idCeiling();
  }

  /** Records a new id ceiling; resolves once durable. Errors: IOError. */
  setIdCeiling(sequence: number): Promise<void> {
    return this.catalog.setIdCeiling(sequence);
  }

  /** How many objects have a durable record. */
  get persistedCount(): number {
    return this.persisted.size;
  }

  /** Whether `id` has a durable record. */
  isPersisted(id: string): boolean {
    return this.persisted.has(id);
  }

  /**
   * Makes `objects` (each with its bytes, if a blob) and the name changes durable, all in one
   * commit; resolves once they are on disk. Persisting an object again replaces its record
   * (a new ttl), keeping the bytes already on disk; an id given twice is persisted once. On a
   * failure nothing is applied and the files it wrote are deleted.
   * Errors: IOError naming the path, InvalidArgument.
   */
  async persist(given: readonly ObjectToPersist[], names: NameChanges = {}): Promise<void> {
    this.checkOpen();
    // A member may appear more than once in a tree (two columns sharing one blob): once is enough.
    const objects = [...new Map(given.map((object) => [object.id, object])).values()];
    const keys = [...objects.map((object) => object.id), ...nameKeys(names)];
    await this.queue.run(keys, async () => {
      const records: PersistedObject[] = [];
      const inline = new Map<string, Uint8Array>();
      // Persisted before (a new ttl, new labels): the record changes, the bytes on disk stay.
      const keepInline = new Set<string>();
      const toWrite: BlobToWrite[] = [];
      let checksummed = 0;
      for (const { bytes, ...object } of objects) {
        const existing = this.persisted.get(object.id);
        if (bytes !== undefined && bytes.length !== object.nbytes) {
          throw new TrellisError(
            'InvalidArgument',
            `blob ${object.id} has nbytes ${object.nbytes} but ${bytes.length} bytes were given`,
          );
        }
        if (existing !== undefined || bytes === undefined) {
          records.push(existing === undefined ? object : { ...object, blob: existing });
          if (existing?.stored === 'inline') keepInline.add(object.id);
        } else if (bytes.length <= INLINE_MAX_BYTES) {
          records.push({ ...object, blob: { size: bytes.length, checksum: checksumOf(bytes), stored: 'inline' } });
          inline.set(object.id, bytes);
          // Many small blobs: give the event loop back now and then.
          if ((checksummed += bytes.length) >= CHUNK_BYTES) {
            checksummed = 0;
            await new Promise((resolve) => setImmediate(resolve));
          }
        } else {
          records.push(object);
          toWrite.push({ id: object.id, bytes });
        }
      }
      const checksums = await this.blobFiles.write(toWrite);
      for (const record of records) {
        const checksum = checksums.get(record.id);
        if (checksum !== undefined) record.blob = { size: record.nbytes, checksum, stored: 'file' };
      }
      try {
        await this.catalog.commit({
          putObjects: records,
          inline,
          keepInline,
          putNames: names.put,
          dropNames: names.drop,
        });
      } catch (error) {
        // Nothing refers to the new files: delete them now rather than at the next open.
        await this.blobFiles.remove(checksums.keys()).catch(() => undefined);
        throw error;
      }
      for (const record of records) this.persisted.set(record.id, record.blob);
    });
  }

  /**
   * Deletes the records of `ids` (and their inline bytes) and the name changes in one commit,
   * then their blob files. Ids that are not persisted are ignored. Errors: IOError.
   */
  async remove(ids: readonly string[], names: NameChanges = {}): Promise<void> {
    this.checkOpen();
    await this.queue.run([...ids, ...nameKeys(names)], async () => {
      const withFiles = ids.filter((id) => this.persisted.get(id)?.stored === 'file');
      await this.catalog.commit({ deleteObjects: ids, putNames: names.put, dropNames: names.drop });
      for (const id of ids) this.persisted.delete(id);
      // The records are gone; a file left behind by a failed unlink is swept at the next open.
      await this.blobFiles.remove(withFiles).catch(() => undefined);
    });
  }

  /** Puts and drops names in one commit. Errors: IOError. */
  async updateNames(names: NameChanges): Promise<void> {
    this.checkOpen();
    await this.queue.run(nameKeys(names), () => this.catalog.commit({ putNames: names.put, dropNames: names.drop }));
  }

  /**
   * Reads persisted blob `id` into `into` (a writable view exactly its size, such as a freshly
   * allocated blob) and checks its checksum.
   * Errors: ObjectNotFound (not a persisted blob), IOError naming the id and path (missing,
   * damaged or unreadable), InvalidArgument (wrong size).
   */
  async readBlob(id: string, into: Uint8Array): Promise<void> {
    this.checkOpen();
    await this.queue.run([id], async () => {
      const blob = this.persisted.get(id);
      if (blob === undefined) throw new TrellisError('ObjectNotFound', `no persisted blob ${id} in ${this.dir}`);
      if (blob.stored === 'inline') await this.catalog.readInline(id, into, blob);
      else await this.blobFiles.read(id, into, blob);
    });
  }

  /** Waits for the operations under way, then closes the catalog and releases DIR. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.idle();
    await this.catalog.close();
    await this.dataDir.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new TrellisError('Unavailable', `the data dir ${this.dir} is closed`);
  }
}

/** Names share the queue with object ids; the prefix keeps the two apart. */
function nameKeys(names: NameChanges): string[] {
  return [...(names.put ?? []).map((record) => record.name), ...(names.drop ?? [])].map((name) => `name:${name}`);
}
