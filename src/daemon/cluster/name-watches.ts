/**
 * The names a cluster daemon holds, each kept current by its own etcd watch on `names/<name>`
 * (etcd3 runs every watcher of a client over one gRPC stream), so a daemon's memory and watch
 * traffic grow with the names it uses, not with the cluster:
 * - tracked names: those that point to this daemon's objects (they pin them, and it puts the
 *   latest ones back after a lost lease); never evicted while tracked;
 * - cached names: others it has read (present or absent: a getName of a missing name, or a
 *   wait for it, watches the key until it appears), at most `capacity`, least recently used
 *   evicted first (a name something waits on is kept past the bound until the wait ends).
 *
 * A name is read once (one range read at revision R) and watched from R + 1, so no change falls
 * between the read and the watch. When any watcher breaks (etcd restarted, wiped or cut off),
 * all are dropped: cached names are forgotten and tracked ones read and watched afresh, as
 * PrefixMirror does, since a resumed watch of an etcd that lost its data would wait silently.
 */
import type { IKeyValue, Watcher } from 'etcd3';
import type { TrellisError } from '../../errors';
import type { EtcdConnection } from '../metadata/etcd-connection';
import { RetryLoop } from '../metadata/retry-loop';
import type { NameHistory } from '../name-history';
import { decodeNameHistory, nameKey } from './records';

/** Names of other daemons' objects a daemon keeps at most, by default (--name-cache). */
export const NAMES_CACHED = 10_000;
const RELOAD_FIRST_DELAY_MS = 100;
const RELOAD_MAX_DELAY_MS = 1_000;

export interface WatchedName {
  /** Undefined: the name is not published. */
  readonly history: NameHistory | undefined;
  /** The key's mod revision, '0' when absent: what a compare-and-swap on it checks. */
  readonly modRevision: string;
  readonly lease: string;
  /** The revision this is current at: a change at or below it is not newer. */
  readonly revision: bigint;
}

interface Entry extends WatchedName {
  watcher: Watcher | undefined;
}

/** Called after a name's state changed (undefined: no longer held, or not published). */
export type NameChanged = (name: string, before: WatchedName | undefined, after: WatchedName | undefined) => void;

export class NameWatches {
  private readonly tracked = new Map<string, Entry>();
  /** In least recently used order first (a Map keeps insertion order). */
  private readonly cached = new Map<string, Entry>();
  /** Names to track whose read failed: read again with the next reload. */
  private readonly toTrack = new Set<string>();
  private readonly reading = new Map<string, Promise<void>>();
  /** Callers of resync waiting for the tracked names to be read again. */
  private reloadWaiters: Array<() => void> = [];
  private generation = 0;
  private stopped = false;
  private readonly reloads = new RetryLoop(() => this.reloadTracked(), {
    firstDelayMs: RELOAD_FIRST_DELAY_MS,
    maxDelayMs: RELOAD_MAX_DELAY_MS,
    stopped: () => this.stopped,
    failed: (error) => this.failed?.(this.connection.toTrellisError('read the watched names again', error)),
  });

  constructor(
    private readonly connection: EtcdConnection,
    private readonly capacity: number,
    private readonly changed: NameChanged,
    /** Whether a cached name may go now (false while a getName waits on it). */
    private readonly evictable: (name: string) => boolean,
    private readonly failed?: (error: TrellisError) => void,
  ) {}

  /** Cached names held now (tracked ones not counted). */
  get cachedCount(): number {
    return this.cached.size;
  }

  get trackedCount(): number {
    return this.tracked.size;
  }

  /** What this daemon knows of `name` (marking a cached one as used), or undefined when it does not hold it. */
  get(name: string): WatchedName | undefined {
    const tracked = this.tracked.get(name);
    if (tracked) return tracked;
    const entry = this.cached.get(name);
    if (!entry) return undefined;
    this.cached.delete(name);
    this.cached.set(name, entry);
    return entry;
  }

  isTracked(name: string): boolean {
    return this.tracked.has(name);
  }

  /** Every held name. */
  names(): string[] {
    return [...this.tracked.keys(), ...this.cached.keys()];
  }

  /**
   * Reads and watches the names not held yet; undefined when all are (no promise on the common
   * path). Errors: Unavailable.
   */
  load(names: readonly string[]): Promise<void> | undefined {
    const waits: Array<Promise<void>> = [];
    for (const name of names) {
      if (this.tracked.has(name) || this.cached.has(name)) continue;
      waits.push(this.read(name));
    }
    if (waits.length === 0) return undefined;
    // The names just read stay for the request that asked (even past a tiny capacity).
    const asked = new Set(names);
    return Promise.all(waits).then(() => this.trim(asked));
  }

  /** Holds `name` as pointing to this daemon's objects: read it when not held. Errors: Unavailable. */
  async track(name: string): Promise<void> {
    const entry = this.cached.get(name);
    if (entry) {
      this.cached.delete(name);
      this.tracked.set(name, entry);
      this.toTrack.delete(name);
      return;
    }
    if (this.tracked.has(name)) return;
    this.toTrack.add(name);
    try {
      await this.read(name);
    } catch (error) {
      this.reloads.request();
      throw error;
    }
    const read = this.cached.get(name);
    if (read && this.toTrack.delete(name)) {
      this.cached.delete(name);
      this.tracked.set(name, read);
    }
  }

  /** `name` no longer points to this daemon's objects: it stays as a cached name. */
  untrack(name: string): void {
    this.toTrack.delete(name);
    const entry = this.tracked.get(name);
    if (!entry) return;
    this.tracked.delete(name);
    this.cached.set(name, entry);
    this.trim();
  }

  /**
   * A write this daemon committed at `revision` (undefined history: deleted), applied unless the
   * watch already brought something newer; a name not held is held from now on (tracked when
   * `track`), watched from `revision` + 1.
   */
  applyLocal(name: string, history: NameHistory | undefined, lease: string, revision: bigint, track: boolean): void {
    if (this.stopped) return;
    const state: WatchedName = { history, modRevision: history ? String(revision) : '0', lease, revision };
    const held = this.tracked.get(name) ?? this.cached.get(name);
    if (held) {
      if (track) this.promote(name, held);
      if (revision > held.revision) this.update(name, held, state);
      return;
    }
    const entry: Entry = { ...state, watcher: undefined };
    (track ? this.tracked : this.cached).set(name, entry);
    this.toTrack.delete(name);
    entry.watcher = this.watch(name, revision);
    this.changed(name, undefined, entry);
    this.trim();
  }

  /**
   * Forgets every cached name and reads the tracked ones again (after a lost lease, or a broken
   * watch); resolves once they all are read and watched again.
   */
  resync(): Promise<void> {
    const reloaded = new Promise<void>((resolve) => this.reloadWaiters.push(resolve));
    if (this.stopped) return reloaded;
    this.generation++;
    for (const [name, entry] of [...this.cached]) this.drop(name, entry);
    for (const [name, entry] of this.tracked) {
      this.toTrack.add(name);
      cancel(entry.watcher);
      entry.watcher = undefined;
    }
    this.reloads.request();
    return reloaded;
  }

  stop(): void {
    this.stopped = true;
    this.generation++;
    for (const entry of [...this.tracked.values(), ...this.cached.values()]) cancel(entry.watcher);
  }

  private promote(name: string, entry: Entry): void {
    if (this.cached.delete(name)) this.tracked.set(name, entry);
  }

  private read(name: string): Promise<void> {
    const pending = this.reading.get(name);
    if (pending) return pending;
    const generation = this.generation;
    const done = (async () => {
      const response = await this.connection.run(`read name ${JSON.stringify(name)}`, (kv) =>
        kv.get(nameKey(name)).exec(),
      );
      if (this.stopped || generation !== this.generation) return;
      if (this.tracked.has(name) || this.cached.has(name)) return; // a local write came first
      const revision = BigInt(response.header.revision);
      const kv = response.kvs[0] as IKeyValue | undefined;
      const entry: Entry = {
        history: kv && decodeNameHistory(kv.value),
        modRevision: kv ? kv.mod_revision : '0',
        lease: kv ? String(kv.lease) : '0',
        revision,
        watcher: undefined,
      };
      this.cached.set(name, entry);
      entry.watcher = this.watch(name, revision);
      this.changed(name, undefined, entry);
    })();
    this.reading.set(name, done);
    void done.then(
      () => this.reading.delete(name),
      () => this.reading.delete(name),
    );
    return done;
  }

  private watch(name: string, revision: bigint): Watcher {
    const generation = this.generation;
    const current = (): boolean => generation === this.generation && !this.stopped;
    const watcher = this.connection.kv
      .watch()
      .key(nameKey(name))
      .startRevision(String(revision + 1n))
      .watcher();
    const apply = (kv: IKeyValue, deleted: boolean): void => {
      if (!current()) return;
      const entry = this.tracked.get(name) ?? this.cached.get(name);
      const at = BigInt(kv.mod_revision);
      if (!entry || entry.watcher !== watcher || at <= entry.revision) return;
      const history = deleted ? undefined : decodeNameHistory(kv.value);
      this.update(name, entry, {
        history,
        modRevision: deleted ? '0' : kv.mod_revision,
        lease: deleted ? '0' : String(kv.lease),
        revision: at,
      });
    };
    watcher.on('put', (kv) => apply(kv, false));
    watcher.on('delete', (kv) => apply(kv, true));
    // Every watcher shares one stream: one breaking means all may have missed events.
    watcher.on('disconnected', () => current() && void this.resync());
    // Kept even on stale watchers: an 'error' event nobody listens to would throw.
    watcher.on('error', () => current() && void this.resync());
    return watcher;
  }

  private update(name: string, entry: Entry, state: WatchedName): void {
    const before: WatchedName = { ...entry };
    Object.assign(entry, state);
    this.changed(name, before, entry);
  }

  private async reloadTracked(): Promise<void> {
    const names = [...new Set([...this.toTrack, ...[...this.tracked].filter(([, e]) => !e.watcher).map(([n]) => n)])];
    for (const name of names) {
      const entry = this.tracked.get(name);
      if (entry) {
        // Read again, then swapped in: what it showed stays until the fresh read is in.
        this.tracked.delete(name);
        this.toTrack.add(name);
        try {
          await this.read(name);
        } catch (error) {
          if (!this.tracked.has(name)) this.tracked.set(name, entry);
          throw error;
        }
        const fresh = this.cached.get(name);
        if (fresh) {
          this.cached.delete(name);
          this.tracked.set(name, fresh);
          this.toTrack.delete(name);
          this.changed(name, entry, fresh);
        }
        continue;
      }
      await this.track(name);
    }
    if (this.toTrack.size > 0) {
      // Some went stale meanwhile (another resync): one more round.
      this.reloads.request();
      return;
    }
    const waiters = this.reloadWaiters;
    this.reloadWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private drop(name: string, entry: Entry): void {
    cancel(entry.watcher);
    this.cached.delete(name);
    this.changed(name, entry, undefined);
  }

  private trim(keep?: ReadonlySet<string>): void {
    if (this.cached.size <= this.capacity) return;
    for (const [name, entry] of [...this.cached]) {
      if (this.cached.size <= this.capacity) return;
      if (!keep?.has(name) && this.evictable(name)) this.drop(name, entry);
    }
  }
}

function cancel(watcher: Watcher | undefined): void {
  // Not awaited: cancelling waits for etcd to confirm, which a dead link never does.
  if (watcher) watcher.cancel().catch(() => undefined);
}
