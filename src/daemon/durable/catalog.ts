/**
 * The durable catalog: an lmdb environment in DIR/catalog with four tables,
 *
 *   objects   id -> PersistedObject (msgpack)     names  name -> its versions (msgpack)
 *   inline    id -> the bytes of a small blob     meta   'format' -> CATALOG_FORMAT, 'instance',
 *                                                        'idCeiling' (a sequence: see IdCeiling)
 *
 * Every change is one lmdb transaction (`commit`), which resolves only once it is on disk: lmdb
 * writes the transaction's pages, fsyncs, then writes and fsyncs the meta page that makes it
 * current, so a crash leaves the previous state or the new one, never a mix.
 *
 * Options, and why:
 * - overlappingSync off: a commit resolves after lmdb's own fsyncs, plain LMDB semantics. (On,
 *   lmdb-js resolves at commit and flushes later; we would await `flushed` and lean on its
 *   boot-id recovery logic for the same guarantee.)
 * - eventTurnBatching off: with it, lmdb-js opens each event turn's batch with a promise nobody
 *   handles, so a failed commit (a full disk) also raises an unhandled rejection, which ends a
 *   Node process by default (lmdb-js issue #368 reports the same for `commitError`). Commits
 *   queued together still share one lmdb transaction and one fsync.
 * - Values are stored as bytes we encode (records.ts), so nothing inside a transaction can fail
 *   on a value, and inline blobs go in their own table, so restart reads no blob bytes.
 *
 * Reads are synchronous (lmdb maps the file): `read` at open, before the daemon serves anyone;
 * `readInline` first has lmdb fault the pages in on another thread (prefetch).
 */
import { open, type Database, type RootDatabase } from 'lmdb';
import { TrellisError } from '../../errors';
import { checksumOf } from './checksum';
import { ioError } from './data-dir';
import {
  CATALOG_FORMAT,
  decodeName,
  decodeObject,
  encodeName,
  encodeObject,
  type PersistedName,
  type PersistedObject,
} from './records';

/** One atomic change to the catalog. */
export interface CatalogChange {
  putObjects?: readonly PersistedObject[];
  /** The bytes of each object in putObjects whose blob is stored 'inline', by id. */
  inline?: ReadonlyMap<string, Uint8Array>;
  /** Objects in putObjects stored inline already, whose record changes and whose bytes stay. */
  keepInline?: ReadonlySet<string>;
  /** Their inline bytes go too. */
  deleteObjects?: readonly string[];
  putNames?: readonly PersistedName[];
  dropNames?: readonly string[];
}

/** A record that did not decode: reported at open, never served. */
export interface DamagedRecord {
  table: 'objects' | 'names';
  key: string;
  reason: string;
}

export interface CatalogContents {
  objects: PersistedObject[];
  names: PersistedName[];
  damaged: DamagedRecord[];
}

const FORMAT_KEY = 'format';
/** The instance id of the daemon whose objects these are (their ids carry it). */
const INSTANCE_KEY = 'instance';
/**
 * A sequence above every object id this daemon has handed out or may hand out before it writes a
 * higher one (IdCeiling): a floor for the ids of a restart, whatever the clock says then.
 */
const ID_CEILING_KEY = 'idCeiling';
/** Named tables in the environment (lmdb's maxDbs). */
const TABLES = 4;

export class DurableCatalog {
  private constructor(
    /** DIR/catalog. */
    readonly path: string,
    private readonly env: RootDatabase,
    private readonly objectTable: Database<Buffer, string>,
    private readonly nameTable: Database<Buffer, string>,
    private readonly inlineTable: Database<Uint8Array, string>,
    private readonly metaTable: Database<number, string>,
  ) {}

  /** The instance id recorded by setInstanceId, if any. */
  instanceId(): number | undefined {
    return this.metaTable.get(INSTANCE_KEY);
  }

  /** Records the instance id the objects in here were made under; resolves once durable. Errors: IOError. */
  async setInstanceId(instanceId: number): Promise<void> {
    await this.recordMeta(INSTANCE_KEY, instanceId, 'the instance id');
  }

  /** The sequence recorded by setIdCeiling, if any. */
  idCeiling(): number | undefined {
    return this.metaTable.get(ID_CEILING_KEY);
  }

  /** Records `sequence` as the id ceiling; resolves once durable. Errors: IOError. */
  async setIdCeiling(sequence: number): Promise<void> {
    await this.recordMeta(ID_CEILING_KEY, sequence, 'the id ceiling');
  }

  /** Writes one meta key; resolves once durable. Errors: IOError naming `what`. */
  private async recordMeta(key: string, value: number, what: string): Promise<void> {
    try {
      await this.metaTable.transaction(() => this.metaTable.putSync(key, value));
    } catch (error) {
      throw ioError(`cannot record ${what} in`, this.path, await commitCause(error));
    }
  }

  /**
   * Opens (or creates) the catalog in `path`, a directory that exists. Call it with the data
   * dir's lock held. Errors: IOError (cannot open, or written by a later format).
   */
  static async open(path: string): Promise<DurableCatalog> {
    let env: RootDatabase;
    try {
      env = open({
        path,
        noSubdir: false,
        maxDbs: TABLES,
        overlappingSync: false,
        eventTurnBatching: false,
        encoding: 'binary',
      });
    } catch (error) {
      throw ioError('cannot open the catalog', path, error);
    }
    try {
      const table = <V>(name: string) => env.openDB<V, string>(name, { encoding: 'binary' });
      const meta = env.openDB<number, string>('meta', { encoding: 'msgpack' });
      const catalog = new DurableCatalog(
        path,
        env,
        table<Buffer>('objects'),
        table<Buffer>('names'),
        table<Uint8Array>('inline'),
        meta,
      );
      await catalog.checkFormat(meta);
      return catalog;
    } catch (error) {
      await env.close().catch(() => undefined);
      throw error instanceof TrellisError ? error : ioError('cannot open the catalog', path, error);
    }
  }

  /**
   * Applies `change` in one transaction; resolves once it is durable. On a failure nothing of it
   * is applied. Errors: InvalidArgument (inline bytes missing or extra), IOError (disk full, ...).
   */
  async commit(change: CatalogChange): Promise<void> {
    const objects = (change.putObjects ?? []).map((record) => ({ id: record.id, value: encodeObject(record) }));
    const inline = inlineEntries(change);
    const names = (change.putNames ?? []).map((record) => ({ name: record.name, value: encodeName(record) }));
    const transaction = this.env.transaction(() => {
      for (const id of change.deleteObjects ?? []) {
        this.objectTable.removeSync(id);
        this.inlineTable.removeSync(id);
      }
      for (const name of change.dropNames ?? []) this.nameTable.removeSync(name);
      for (const { id, value } of objects) this.objectTable.putSync(id, value);
      for (const [id, bytes] of inline) this.inlineTable.putSync(id, bytes);
      for (const { name, value } of names) this.nameTable.putSync(name, value);
    });
    try {
      await transaction;
    } catch (error) {
      throw ioError('cannot commit to the catalog', this.path, await commitCause(error));
    }
  }

  /** Every record, decoded, for a restart. Synchronous: call it before serving. */
  read(): CatalogContents {
    const contents: CatalogContents = { objects: [], names: [], damaged: [] };
    for (const { key, value } of this.objectTable.getRange()) {
      const record = decodeObject(key, value);
      if (typeof record === 'string') contents.damaged.push({ table: 'objects', key, reason: record });
      else contents.objects.push(record);
    }
    for (const { key, value } of this.nameTable.getRange()) {
      const record = decodeName(key, value);
      if (typeof record === 'string') contents.damaged.push({ table: 'names', key, reason: record });
      else contents.names.push(record);
    }
    return contents;
  }

  /**
   * Copies the inline bytes of blob `id` into `into` and checks them against its record.
   * Errors: IOError naming the id (missing, wrong size or checksum), InvalidArgument.
   */
  async readInline(id: string, into: Uint8Array, expected: { size: number; checksum: string }): Promise<void> {
    if (into.length !== expected.size) {
      throw new TrellisError(
        'InvalidArgument',
        `blob ${id} is ${expected.size} bytes; got a ${into.length}-byte buffer to read it into`,
      );
    }
    await this.inlineTable.prefetch([id]);
    // getBinaryFast hands out lmdb's reused buffer with `length` set to the value's size (its
    // byteLength is the whole buffer's): copy exactly that much out, before anything else reads.
    const found = this.inlineTable.getBinaryFast(id);
    const where = `inline in the catalog ${this.path}`;
    if (found === undefined) throw new TrellisError('IOError', `blob of object ${id} is missing: not ${where}`);
    if (found.length !== expected.size) {
      throw new TrellisError(
        'IOError',
        `blob of object ${id} is damaged: ${found.length} bytes ${where}, its record says ${expected.size}`,
      );
    }
    into.set(new Uint8Array(found.buffer, found.byteOffset, found.length));
    const actual = checksumOf(into);
    if (actual !== expected.checksum) {
      throw new TrellisError(
        'IOError',
        `blob of object ${id} is damaged: checksum ${actual} ${where}, its record says ${expected.checksum}`,
      );
    }
  }

  async close(): Promise<void> {
    await this.env.close();
  }

  /** A new catalog gets the current format; an older one is read as is; a later one is refused. */
  private async checkFormat(meta: Database<number, string>): Promise<void> {
    const format = meta.get(FORMAT_KEY);
    if (format === undefined) {
      try {
        await meta.transaction(() => meta.putSync(FORMAT_KEY, CATALOG_FORMAT));
      } catch (error) {
        throw ioError('cannot initialize the catalog', this.path, await commitCause(error));
      }
    } else if (format !== CATALOG_FORMAT) {
      throw new TrellisError(
        'IOError',
        `the catalog ${this.path} has format ${String(format)}; this trellis reads format ${CATALOG_FORMAT}`,
      );
    }
  }
}

/** Checks that inline bytes come exactly with the records stored inline, and match their size. */
function inlineEntries(change: CatalogChange): Array<[string, Uint8Array]> {
  const given = change.inline ?? new Map<string, Uint8Array>();
  const entries: Array<[string, Uint8Array]> = [];
  for (const record of change.putObjects ?? []) {
    if (record.blob?.stored !== 'inline' || change.keepInline?.has(record.id)) continue;
    const bytes = given.get(record.id);
    if (bytes === undefined || bytes.length !== record.blob.size) {
      throw new TrellisError(
        'InvalidArgument',
        `object ${record.id} is stored inline: its ${record.blob.size} bytes must come with it`,
      );
    }
    entries.push([record.id, bytes]);
  }
  if (entries.length !== given.size) {
    throw new TrellisError('InvalidArgument', 'inline bytes given for an object not stored inline');
  }
  return entries;
}

/**
 * lmdb-js rejects a failed commit with 'Commit failed (see commitError for details)' and the
 * system error on a second promise, `commitError`, which must be handled or it is an unhandled
 * rejection. lmdb-js settles it in the same callback as the first, so waiting one turn of the
 * event loop for it is plenty. Returns that error, or the one given.
 */
async function commitCause(error: unknown): Promise<unknown> {
  const detail = (error as { commitError?: Promise<unknown> } | null)?.commitError;
  if (detail === undefined || typeof detail.then !== 'function') return error;
  const cause = detail.then(
    () => error,
    (systemError: unknown) => systemError,
  );
  return Promise.race([cause, new Promise((resolve) => setImmediate(() => resolve(error)))]);
}
