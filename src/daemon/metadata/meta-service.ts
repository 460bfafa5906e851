/**
 * Where the daemon keeps what outlives a request: which objects are published (persisted,
 * named), their names and expiries. The request handlers (dispatch.ts) talk to this interface
 * only, and the daemon picks its backend once at start, as Vineyard's IMetaService does:
 * - local-metadata.ts: a daemon alone; names live in its NameTable and nothing leaves memory.
 * - cluster/cluster-metadata.ts: `--etcd`; what is published goes through etcd first.
 * Reads that any backend answers the same way from memory (names, the object table) stay with
 * NameTable and ObjectTable; this interface holds the reads and writes that differ.
 *
 * Methods return a plain value when they finish at once and a promise when they wait (etcd, or
 * the disk): the local backend answers most requests synchronously, which keeps them cheap.
 */
import type { ClusterInfoReply, GetObjectReply, ObjectMeta, ObjectSummary } from '../../protocol/messages';
import type { NameHistory } from '../name-history';
import type { ObjectFilter } from '../object-table';
import type { ClientSession } from '../session';

export type Pending<T> = T | Promise<T>;

/**
 * Thrown by a cluster backend's synchronous reads (exists, getMeta, persistence, remoteObject)
 * when they need records of other instances it has not loaded: `view` catches it, loads them
 * and runs the read again. Never reaches a client when reads go through `view`.
 */
export class RecordsNotLoaded extends Error {
  constructor(readonly ids: string[]) {
    super(`records of ${ids.join(', ')} are not loaded (a read outside MetaService.view)`);
  }
}

/** A new local object to publish: persisted, and named when `name` is set. */
export interface NewObject {
  id: string;
  name?: string;
  override: boolean;
  persist: boolean;
}

/** Whether an object is persisted, and until when. */
export interface Persistence {
  persisted: boolean;
  /** Milliseconds since the epoch; null: never. */
  expiresAt: number | null;
}

/** What a restarted daemon found kept from before (--data-dir), to publish again. */
export interface Adopted {
  /** Persisted objects already back in the table, with their expiry (undefined: never). */
  objects: ReadonlyArray<{ id: string; expiresAt: number | undefined }>;
  /** Names that point to them, with their kept versions, newest first. */
  names: Readonly<Record<string, NameHistory>>;
}

export interface DeleteOptions {
  deep: boolean;
  force: boolean;
}

export interface MetaService {
  /** Loads what the backend holds and starts following it. Errors: Unavailable, IOError. */
  start(): Promise<void>;
  /** Leaves: stops timers and watches, and takes this daemon's entries out of a shared view. */
  stop(): Promise<void>;

  /** clusterInfo: this daemon alone, or every instance of its cluster. */
  info(): ClusterInfoReply;
  /**
   * Refuses at once, before anything is created, a write that cannot be published now.
   * Errors: Unavailable.
   */
  requireWritable(what: string): void;
  /**
   * Before a read of names from memory: undefined when they can be answered now, else a promise
   * that resolves once they can (a cluster daemon whose lease may have expired waits to hear
   * from etcd again, cluster/view-freshness.ts). Errors: Unavailable.
   */
  namesCurrent(what: string): Promise<void> | undefined;
  /**
   * Before a request that reads `names` from memory: undefined when they are all held, else a
   * promise that resolves once they are (a cluster daemon holds only the names it uses, and
   * reads the others from etcd, then watches them). Errors: Unavailable.
   */
  loadNames(names: readonly string[]): Promise<void> | undefined;
  /** Published names, sorted; `pattern` is a glob. Errors: Unavailable. */
  listNames(pattern?: string): Pending<string[]>;

  /**
   * Takes up objects and names a restarted daemon put back in its table: schedules their
   * expiries and publishes them again (through etcd in a cluster). Errors: Unavailable.
   */
  adopt(adopted: Adopted): Promise<void>;

  /** How many of this daemon's objects are persisted (durable with --data-dir). */
  persistedCount(): number;

  /**
   * Runs `read`, which may call the reads below (exists, getMeta, persistence, remoteObject)
   * any number of times; a cluster backend first loads other instances' records they need
   * (from etcd, or its cache) and runs it again, so `read` must not change anything before its
   * last read. Every caller of those reads goes through here. Errors: what `read` throws,
   * Unavailable.
   */
  view<T>(read: () => T): Pending<T>;
  /** Other instances' object records held in memory (a cluster's cache; 0 alone). */
  remoteRecordCount(): number;

  /** Whether the object is persisted, and its expiry. Errors: ObjectNotFound. */
  persistence(id: string): Persistence;

  /** Whether a sealed object with this id is here or published by another instance. */
  exists(id: string): boolean;
  /** Sealed objects, newest first, that pass the filter (a typename glob, labels to carry). */
  listObjects(filter: ObjectFilter, limit: number): Pending<ObjectSummary[]>;
  /** An object's metadata tree, wherever it lives. Errors: ObjectNotFound, NotSealed. */
  getMeta(id: string): ObjectMeta;
  /**
   * getObject of an object that lives on another instance: its metadata when its tree has no
   * bytes, or (with `fetch`) the id of a local copy; undefined when the id is local.
   * Errors: ObjectNotFound, RemoteObject, Unavailable.
   */
  remoteObject(id: string, fetch: boolean): GetObjectReply | Promise<string> | undefined;

  /**
   * Publishes objects just created here by this session (a named seal, createMetadata with a
   * name or persist, a named putGlobal). All or none: on failure they are deleted again.
   * Errors: NameExists, Unavailable, Conflict, IOError.
   */
  publishNew(session: ClientSession, created: readonly NewObject[]): Pending<void>;
  /**
   * Names objects, all or none; returns each name's version. `expect` gives names the version
   * they must be at (0: not published), checked atomically with the write.
   * Errors: InvalidArgument, ObjectNotFound, NotSealed, NameExists, Conflict, Unavailable.
   */
  putNames(
    entries: Record<string, string>,
    override: boolean,
    expect?: Record<string, number>,
  ): Pending<Record<string, number>>;
  /** Drops one kept version of a name; the last one drops the name. Errors: NameNotFound, Unavailable. */
  dropVersion(name: string, version: number): Pending<void>;
  /** Whether the name existed; a missing name is not an error. Errors: Unavailable. */
  dropName(name: string): Pending<boolean>;
  /**
   * Deletes by the graph rules of ObjectTable.delete; returns the ids removed.
   * Errors: ObjectNotFound, NotSealed, Conflict, Unavailable.
   */
  delete(session: ClientSession | undefined, ids: string[], options: DeleteOptions): Pending<string[]>;
  /**
   * Publishes an object (cluster-wide in a cluster), with an expiry when `ttlSeconds` is given;
   * persisting again keeps an earlier ttl unless a new one is given.
   * Errors: ObjectNotFound, NotSealed, RemoteObject, Unavailable, IOError.
   */
  persist(id: string, ttlSeconds: number | undefined): Pending<void>;
  /**
   * Merges label changes into a local sealed object (null removes a label) and returns its
   * labels now. A persisted object's record is written again (etcd, the data dir) with the
   * new labels; its bytes are not. Errors: ObjectNotFound, NotSealed, InvalidArgument,
   * RemoteObject (another instance's object: label it there), Unavailable, IOError.
   */
  label(id: string, changes: Record<string, string | null>): Pending<Record<string, string>>;
}

/** Applies `next` to a value that may still be pending, without a microtask when it is not. */
export function whenDone<T, R>(value: Pending<T>, next: (done: T) => Pending<R>): Pending<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}
