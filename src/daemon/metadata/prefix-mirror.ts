/**
 * A live copy of every key under some etcd prefixes: a snapshot, then a watch from the
 * snapshot's revision on, so no change falls between the two. Reads are served from memory;
 * nothing on a daemon's hot path waits for etcd.
 *
 * Used for the cluster's names and a daemon's own object records (ClusterMetadata) and for its
 * instances (InstanceView). The snapshot is read in pages (paged-range.ts).
 *
 * One watch covers all the prefixes (the key range from the first to the end of the last), so
 * the keys of one transaction under them arrive together. (A name seen before the record of its
 * object is fine: the record, committed with it, is read from etcd when asked for.)
 *
 * It never resumes a broken watch: it reads a fresh snapshot and watches again. An etcd that
 * lost its data counts revisions from 1 again, and a resumed watch would wait silently for the
 * old revision numbers to come back.
 *
 * A daemon's own writes are applied at once (`applyLocal`), so a client that put a name reads
 * it back from the same daemon without waiting for the watch to echo it. The revision each
 * write got keeps an older watch event from undoing it.
 *
 * Events:
 * - 'put' (key, entry): the key was created or changed.
 * - 'delete' (key, previous, how): the key is gone; `how` is 'event' when etcd reported a
 *   delete (by a client, or a lease ending), 'snapshot' when a fresh snapshot lacks it.
 * - 'synced' (revision): a snapshot was applied and the watch is running.
 * - 'unavailable' (TrellisError): a resync failed; it keeps retrying until stopped.
 */
import { EventEmitter } from 'node:events';
import type { IKeyValue, Watcher } from 'etcd3';
import type { TrellisError } from '../../errors';
import type { EtcdConnection } from './etcd-connection';
import { readPaged, type KeyRange } from './paged-range';
import { ownBuffer } from '../own-bytes';
import { RetryLoop } from './retry-loop';

const RESYNC_FIRST_DELAY_MS = 100;
/** As EtcdConnection's reconnect backoff: a restarted etcd is read again within a second. */
const RESYNC_MAX_DELAY_MS = 1_000;

export interface MirrorEntry {
  readonly value: Buffer;
  /** The lease the key is attached to, '0' for none. */
  readonly lease: string;
  readonly modRevision: bigint;
}

export interface PrefixMirrorEvents {
  put: [key: string, entry: MirrorEntry];
  delete: [key: string, previous: MirrorEntry, how: 'event' | 'snapshot'];
  synced: [revision: bigint];
  unavailable: [TrellisError];
}

export class PrefixMirror extends EventEmitter<PrefixMirrorEvents> {
  private readonly entries = new Map<string, MirrorEntry>();
  /** Revisions of writes applied locally that the watch has not delivered yet, by key. */
  private readonly localRevisions = new Map<string, bigint>();
  /** The highest revision the watch (or the last snapshot) has delivered. */
  private watchRevision = 0n;
  /**
   * False from the moment the watch breaks until a fresh snapshot is in: `watchRevision` may
   * then belong to an etcd that has since lost its data (whose revisions start again from 1),
   * so it cannot tell whether a local write was already delivered.
   */
  private live = false;
  /**
   * Keys written locally while a snapshot is being read: the snapshot may predate the write,
   * so it neither removes nor overwrites them (the new watch brings any later change).
   */
  private touched: Set<string> | undefined;
  private watcher: Watcher | undefined;
  private generation = 0;
  private stopped = false;
  private readonly resyncs = new RetryLoop(() => this.sync(), {
    firstDelayMs: RESYNC_FIRST_DELAY_MS,
    maxDelayMs: RESYNC_MAX_DELAY_MS,
    stopped: () => this.stopped,
    failed: (error) =>
      this.emit('unavailable', this.connection.toTrellisError(`resynchronize ${this.description}`, error)),
  });

  /** What it mirrors, for messages: 'names/, objects/'. */
  readonly description: string;
  private readonly range: KeyRange;

  /** `prefixes`: keys relative to the cluster prefix, such as 'objects/'; nothing else may fall between them. */
  constructor(
    private readonly connection: EtcdConnection,
    private readonly prefixes: readonly string[],
  ) {
    super();
    const sorted = [...prefixes].sort();
    const last = sorted[sorted.length - 1];
    this.range = {
      start: sorted[0],
      end: last.slice(0, -1) + String.fromCharCode(last.charCodeAt(last.length - 1) + 1),
    };
    this.description = sorted.join(', ');
  }

  private mirrors(key: string): boolean {
    return this.prefixes.some((prefix) => key.startsWith(prefix));
  }

  /** Reads the first snapshot and starts watching. Errors: Unavailable. */
  async start(): Promise<void> {
    await this.sync();
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): MirrorEntry | undefined {
    return this.entries.get(key);
  }

  keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  /**
   * Applies a write this daemon just committed at `revision` (undefined entry: a delete),
   * unless the watch already delivered that revision or a later one.
   */
  applyLocal(key: string, entry: Omit<MirrorEntry, 'modRevision'> | undefined, revision: bigint): void {
    if (this.stopped || (this.live && revision <= this.watchRevision)) return;
    const current = this.entries.get(key);
    if (current && this.live && current.modRevision > revision) return;
    this.localRevisions.set(key, revision);
    this.touched?.add(key);
    if (entry) this.setEntry(key, { ...entry, modRevision: revision });
    else if (current) this.deleteEntry(key, current, 'event');
  }

  /**
   * Reads a fresh snapshot and watches again soon, retrying with backoff until it works or the
   * mirror stops. Calls made while one runs fold into one more round.
   */
  resync(): void {
    if (this.stopped) return;
    this.live = false;
    this.resyncs.request();
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    this.dropWatcher();
  }

  private async sync(): Promise<void> {
    const generation = ++this.generation;
    this.dropWatcher();
    const touched = new Set<string>();
    this.touched = touched;
    const kvs: IKeyValue[] = [];
    let revision: bigint;
    try {
      // In pages: a join must not read a large cluster in one reply (see paged-range.ts).
      revision = await readPaged(this.connection, `list ${this.description}`, this.range, (page) => kvs.push(...page));
    } finally {
      if (this.touched === touched) this.touched = undefined;
    }
    if (generation !== this.generation) return;
    this.applySnapshot(kvs, revision, touched);
    const watcher = this.connection.kv
      .watch()
      .inRange(this.range)
      .startRevision(String(revision + 1n))
      .watcher();
    // Listeners go on before the watch connects, so no event can slip past them.
    const current = (): boolean => generation === this.generation;
    watcher.on('put', (kv) => current() && this.onPut(kv));
    watcher.on('delete', (kv) => current() && this.onDelete(kv));
    watcher.on('disconnected', () => current() && this.resync());
    this.live = true;
    // Kept even on stale watchers: an 'error' event nobody listens to would throw.
    watcher.on('error', () => current() && this.resync());
    this.watcher = watcher;
    try {
      await this.connection.run(`watch ${this.description}`, () => waitConnected(watcher));
    } catch (error) {
      if (current()) this.dropWatcher();
      throw error;
    }
    if (current()) this.emit('synced', revision);
  }

  private applySnapshot(kvs: IKeyValue[], revision: bigint, touched: ReadonlySet<string>): void {
    // Revisions from before may belong to an etcd that has since lost its data: start afresh,
    // except for writes made after the snapshot was read, which it cannot know about.
    const newer = new Set([...touched].filter((key) => (this.localRevisions.get(key) ?? 0n) > revision));
    for (const key of [...this.localRevisions.keys()]) if (!newer.has(key)) this.localRevisions.delete(key);
    touched = newer;
    this.watchRevision = revision;
    const present = new Map<string, IKeyValue>(
      kvs.map((kv) => [kv.key.toString(), kv] as const).filter(([key]) => this.mirrors(key)),
    );
    for (const [key, previous] of [...this.entries])
      if (!present.has(key) && !touched.has(key)) this.deleteEntry(key, previous, 'snapshot');
    for (const [key, kv] of present) {
      if (touched.has(key)) continue;
      const known = this.entries.get(key);
      const entry = toEntry(kv);
      if (
        known &&
        known.modRevision === entry.modRevision &&
        known.lease === entry.lease &&
        known.value.equals(entry.value)
      )
        continue;
      this.setEntry(key, entry);
    }
  }

  private onPut(kv: IKeyValue): void {
    const key = kv.key.toString();
    if (!this.mirrors(key)) return;
    const entry = toEntry(kv);
    if (this.watched(key, entry.modRevision)) this.setEntry(key, entry);
  }

  private onDelete(kv: IKeyValue): void {
    const key = kv.key.toString();
    if (!this.mirrors(key)) return;
    const known = this.entries.get(key);
    if (this.watched(key, BigInt(kv.mod_revision)) && known) this.deleteEntry(key, known, 'event');
  }

  /** Records a watch event's revision; false when a local write already moved past it. */
  private watched(key: string, revision: bigint): boolean {
    if (revision > this.watchRevision) this.watchRevision = revision;
    const local = this.localRevisions.get(key);
    if (local === undefined) return true;
    if (revision < local) return false;
    this.localRevisions.delete(key);
    return revision > local;
  }

  private setEntry(key: string, entry: MirrorEntry): void {
    // Kept while the key lives: bytes of its own, not a view of etcd's response (or of whatever
    // buffer a local write encoded into), which one small value would keep alive.
    const value = ownBuffer(entry.value);
    if (value !== entry.value) entry = { ...entry, value };
    this.entries.set(key, entry);
    this.emit('put', key, entry);
  }

  private deleteEntry(key: string, previous: MirrorEntry, how: 'event' | 'snapshot'): void {
    this.entries.delete(key);
    this.emit('delete', key, previous, how);
  }

  private dropWatcher(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    // Not awaited: cancelling waits for etcd to confirm, which a dead link never does.
    if (watcher) watcher.cancel().catch(() => undefined);
  }
}

function toEntry(kv: IKeyValue): MirrorEntry {
  return { value: kv.value, lease: kv.lease, modRevision: BigInt(kv.mod_revision) };
}

function waitConnected(watcher: Watcher): Promise<void> {
  return new Promise((resolve, reject) => {
    watcher.once('connected', () => resolve());
    watcher.once('error', reject);
  });
}
