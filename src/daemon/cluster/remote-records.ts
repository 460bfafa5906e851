/**
 * Other instances' object records, read from etcd when asked and kept in a bounded cache, so a
 * daemon's memory and watch traffic grow with what it uses, not with the cluster's size.
 *
 * Why etcd and not an RPC to the owner: the record is in etcd anyway (the owner's lease keeps
 * it there, and it outlives the owner's restarts on a data dir), a read there is linearizable
 * (a record written before the read started is found), it needs no RPC port on the owner
 * (`--rpc-port` is optional), and it adds no load to the owner. The owner is in the id, so a
 * record is one range read of one key; a tree is one read per member, a level at a time.
 *
 * Invalidation: a record's bytes never change, but it can be deleted (delete, expiry, its
 * owner's lease ending) or written again (new labels, a new ttl). One watch on `objects/` with
 * puts filtered out by etcd delivers the deletes; writing a record again also puts
 * `rewrites/<owner>` in the same transaction, which a second watch delivers. A cached record
 * past its `expiresAt` is read again before it is believed (a new ttl may have moved it). After
 * a broken watch the cache is emptied once the watch runs again: deletes may have been missed.
 *
 * A read that raced with a delete event (the event came first) is answered but not cached; a
 * read made while the watch is down is not cached either.
 */
import type { IKeyValue, Watcher } from 'etcd3';
import type { TrellisError } from '../../errors';
import { instanceOf } from '../../protocol/ids';
import type { EtcdConnection } from '../metadata/etcd-connection';
import { readPaged, prefixRange } from '../metadata/paged-range';
import { RetryLoop } from '../metadata/retry-loop';
import { ownBytes } from '../own-bytes';
import {
  decodeRecord,
  decodeRewrites,
  idOfObjectKey,
  isExpired,
  objectKey,
  OBJECTS_PREFIX,
  REWRITES_PREFIX,
  type CachedRecord,
} from './records';

/** Records a daemon keeps of other instances' objects at most (a few MiB). */
export const REMOTE_RECORDS_CACHED = 10_000;
const REWATCH_FIRST_DELAY_MS = 100;
const REWATCH_MAX_DELAY_MS = 1_000;

/** What a read found: the record, or null when etcd has none under that id. */
export type Found = ReadonlyMap<string, CachedRecord | null>;

export class RemoteRecords {
  /** In least recently used order first (a Map keeps insertion order). */
  private readonly cache = new Map<string, CachedRecord>();
  /** Reads in flight, by id: each marked stale when an invalidation of the id arrives meanwhile. */
  private readonly inFlight = new Map<string, Set<{ stale: boolean }>>();
  private watchers: Watcher[] = [];
  private generation = 0;
  private live = false;
  private stopped = false;
  private readonly rewatches = new RetryLoop(() => this.watch(), {
    firstDelayMs: REWATCH_FIRST_DELAY_MS,
    maxDelayMs: REWATCH_MAX_DELAY_MS,
    stopped: () => this.stopped,
    failed: (error) => this.emitUnavailable?.(this.connection.toTrellisError('watch object deletes', error)),
  });

  constructor(
    private readonly connection: EtcdConnection,
    private readonly capacity = REMOTE_RECORDS_CACHED,
    private readonly emitUnavailable?: (error: TrellisError) => void,
  ) {}

  /** Starts the watches. Errors: Unavailable. */
  async start(): Promise<void> {
    await this.watch();
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    this.live = false;
    this.dropWatchers();
  }

  /** Records held now. */
  get size(): number {
    return this.cache.size;
  }

  /**
   * The cached record of `id`, or undefined when it must be read (not cached, or past its
   * expiry, which a new ttl may have moved).
   */
  cached(id: string): CachedRecord | undefined {
    const record = this.cache.get(id);
    if (!record) return undefined;
    if (isExpired(record)) {
      this.cache.delete(id);
      return undefined;
    }
    this.cache.delete(id);
    this.cache.set(id, record);
    return record;
  }

  /**
   * Reads the records of `ids` and, through their members, of the trees under them (one read
   * per record, a level of the tree at a time). Errors: Unavailable.
   */
  async load(ids: Iterable<string>): Promise<Found> {
    const found = new Map<string, CachedRecord | null>();
    let level = [...new Set(ids)];
    while (level.length > 0) {
      const records = await Promise.all(level.map((id) => this.read(id)));
      const next = new Set<string>();
      level.forEach((id, i) => {
        const record = records[i];
        found.set(id, record);
        if (!record) return;
        for (const [key, member] of Object.entries(record.members)) {
          if (record.remoteMembers?.[key] || found.has(member) || this.cached(member)) continue;
          next.add(member);
        }
      });
      level = [...next];
    }
    return found;
  }

  /**
   * Every record of `instanceId`'s objects, read in pages and handed to `visit`; none is cached
   * (a delete planning over a whole owner must not flush the cache). Errors: Unavailable.
   */
  async scanInstance(prefix: string, visit: (record: CachedRecord) => void): Promise<void> {
    await readPaged(this.connection, `list records under ${prefix}`, prefixRange(prefix), (page) => {
      for (const kv of page) {
        const record = decodeRecord(kv.key.toString(), kv.value, kv.lease);
        if (record) visit(record);
      }
    });
  }

  /**
   * Every other instance's record in `objects/`, a page at a time, for listings; `skip` is an
   * instance whose records are not wanted (this daemon's, answered from its table).
   */
  async scanAll(skip: number, visit: (record: CachedRecord) => void): Promise<void> {
    await readPaged(this.connection, 'list object records', prefixRange(OBJECTS_PREFIX), (page) => {
      for (const kv of page) {
        const key = kv.key.toString();
        const id = idOfObjectKey(key);
        if (id === undefined || instanceOf(id) === skip) continue;
        const record = decodeRecord(key, kv.value, kv.lease);
        if (record) visit(record);
      }
    });
  }

  /** Drops a record this daemon knows is gone or changed (it deleted the key itself). */
  forget(id: string): void {
    this.cache.delete(id);
    for (const reading of this.inFlight.get(id) ?? []) reading.stale = true;
  }

  private async read(id: string): Promise<CachedRecord | null> {
    const reading = { stale: false };
    const readings = this.inFlight.get(id) ?? new Set();
    this.inFlight.set(id, readings.add(reading));
    const generation = this.generation;
    const cacheable = this.live;
    try {
      const response = await this.connection.run(`read the record of ${id}`, (kv) => kv.get(objectKey(id)).exec());
      const kv = response.kvs[0] as IKeyValue | undefined;
      // A single-key read comes back with the prefix on its key (etcd3 strips it from ranges only).
      const record = kv ? (decodeRecord(objectKey(id), kv.value, kv.lease) ?? null) : null;
      if (record && cacheable && !reading.stale && generation === this.generation) this.remember(record);
      return record;
    } finally {
      readings.delete(reading);
      if (readings.size === 0 && this.inFlight.get(id) === readings) this.inFlight.delete(id);
    }
  }

  private remember(record: CachedRecord): void {
    // Kept for as long as it is cached: bytes of its own, not views of etcd's whole response.
    ownBytes(record.fields);
    if (record.remoteMembers !== undefined) ownBytes(record.remoteMembers);
    this.cache.delete(record.id);
    this.cache.set(record.id, record);
    while (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value!);
  }

  private clear(): void {
    this.cache.clear();
    for (const readings of this.inFlight.values()) for (const reading of readings) reading.stale = true;
  }

  private async watch(): Promise<void> {
    const generation = ++this.generation;
    this.live = false;
    this.dropWatchers();
    const current = (): boolean => generation === this.generation;
    // `only`, not `ignore`: etcd3 1.x's ignore() does what only() does (it maps names the same way).
    const deletes = this.connection.kv.watch().prefix(OBJECTS_PREFIX).only('delete').watcher();
    const rewrites = this.connection.kv.watch().prefix(REWRITES_PREFIX).only('put').watcher();
    deletes.on('delete', (kv) => {
      const id = current() ? idOfObjectKey(kv.key.toString()) : undefined;
      if (id !== undefined) this.forget(id);
    });
    rewrites.on('put', (kv) => {
      if (current()) for (const id of decodeRewrites(kv.value)) this.forget(id);
    });
    for (const watcher of [deletes, rewrites]) {
      watcher.on('disconnected', () => current() && this.rewatch());
      // Kept even on stale watchers: an 'error' event nobody listens to would throw.
      watcher.on('error', () => current() && this.rewatch());
    }
    this.watchers = [deletes, rewrites];
    try {
      await this.connection.run('watch object deletes', () =>
        Promise.all([waitConnected(deletes), waitConnected(rewrites)]),
      );
    } catch (error) {
      if (current()) this.dropWatchers();
      throw error;
    }
    if (!current()) return;
    // Deletes made while no watch ran are unknown: start over.
    this.clear();
    this.live = true;
  }

  /** The watch broke: cached records are still answered until it runs again, then dropped. */
  private rewatch(): void {
    if (this.stopped) return;
    this.live = false;
    this.rewatches.request();
  }

  private dropWatchers(): void {
    const watchers = this.watchers;
    this.watchers = [];
    // Not awaited: cancelling waits for etcd to confirm, which a dead link never does.
    for (const watcher of watchers) watcher.cancel().catch(() => undefined);
  }
}

function waitConnected(watcher: Watcher): Promise<void> {
  return new Promise((resolve, reject) => {
    watcher.once('connected', () => resolve());
    watcher.once('error', reject);
  });
}
