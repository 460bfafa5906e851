/**
 * A live view of the cluster's instances: a snapshot of `instances/` followed by a watch from
 * the snapshot's revision on, so no change falls between the two.
 *
 * Whenever the watch breaks the view reads a fresh snapshot and starts a fresh watch, rather
 * than letting etcd3 resume the old one. Resuming would ask for changes after the last revision
 * seen; an etcd that restarted with an empty data dir counts revisions from 1 again, so that
 * watch would sit silent until the new etcd caught up with the old revision number.
 *
 * Events: 'joined' (InstanceStatus), 'left' (InstanceStatus), 'synced' (after each snapshot),
 * 'unavailable' (TrellisError, when a resync fails; it keeps retrying until stopped).
 */
import { EventEmitter } from 'node:events';
import type { IKeyValue, Watcher } from 'etcd3';
import { TrellisError } from '../../errors';
import type { EtcdConnection } from './etcd-connection';
import { INSTANCES_PREFIX, decodeInstanceInfo, instanceIdOfKey, sameIncarnation, type InstanceStatus } from './instance-info';
import { RetryLoop } from './retry-loop';

const RESYNC_FIRST_DELAY_MS = 100;
const RESYNC_MAX_DELAY_MS = 2_000;

export interface InstanceViewEvents {
  joined: [InstanceStatus];
  left: [InstanceStatus];
  synced: [];
  unavailable: [TrellisError];
}

export class InstanceView extends EventEmitter<InstanceViewEvents> {
  private readonly entries = new Map<number, InstanceStatus>();
  private watcher: Watcher | undefined;
  /** Bumped by every sync; events from an older watcher are ignored. */
  private generation = 0;
  private stopped = false;
  private readonly resyncs = new RetryLoop(() => this.sync(), {
    firstDelayMs: RESYNC_FIRST_DELAY_MS,
    maxDelayMs: RESYNC_MAX_DELAY_MS,
    stopped: () => this.stopped,
    failed: (error) => this.emit('unavailable', this.connection.toTrellisError('resynchronize the instance list', error)),
  });

  constructor(private readonly connection: EtcdConnection) {
    super();
  }

  /** Reads the first snapshot and starts watching. Errors: Unavailable. */
  async start(): Promise<void> {
    await this.sync();
  }

  /** Every instance seen since start, alive or not, in id order. Copies: safe to keep. */
  list(): InstanceStatus[] {
    return [...this.entries.values()].sort((a, b) => a.instanceId - b.instanceId).map((entry) => ({ ...entry }));
  }

  get(instanceId: number): InstanceStatus | undefined {
    const entry = this.entries.get(instanceId);
    return entry && { ...entry };
  }

  /**
   * Reads a fresh snapshot and restarts the watch soon, retrying with backoff until it works
   * or the view stops. Calls made while one runs fold into one more round.
   */
  resync(): void {
    if (this.stopped) return;
    this.resyncs.request();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    this.dropWatcher();
  }

  private async sync(): Promise<void> {
    const generation = ++this.generation;
    this.dropWatcher();
    const snapshot = await this.connection.run('list instances', (kv) => kv.getAll().prefix(INSTANCES_PREFIX).exec());
    if (generation !== this.generation) return;
    this.applySnapshot(snapshot.kvs);
    const watcher = this.connection.kv
      .watch()
      .prefix(INSTANCES_PREFIX)
      .startRevision(String(BigInt(snapshot.header.revision) + 1n))
      .watcher();
    // Listeners go on before the watch connects, so no event can slip past them.
    const current = (): boolean => generation === this.generation;
    watcher.on('put', (kv) => current() && this.applyPut(kv));
    watcher.on('delete', (kv) => current() && this.applyDelete(kv.key.toString()));
    watcher.on('disconnected', () => current() && this.resync());
    // Kept even on stale watchers: an 'error' event nobody listens to would throw.
    watcher.on('error', () => current() && this.resync());
    this.watcher = watcher;
    try {
      await this.connection.run('watch instances', () => waitConnected(watcher));
    } catch (error) {
      if (current()) this.dropWatcher();
      throw error;
    }
    if (current()) this.emit('synced');
  }

  private applySnapshot(kvs: IKeyValue[]): void {
    const present = new Set<number>();
    for (const kv of kvs) {
      const info = decodeInstanceInfo(kv.key.toString(), kv.value);
      if (info) present.add(info.instanceId);
    }
    for (const entry of this.entries.values()) if (entry.alive && !present.has(entry.instanceId)) this.markLeft(entry);
    for (const kv of kvs) this.applyPut(kv);
  }

  private applyPut(kv: IKeyValue): void {
    const info = decodeInstanceInfo(kv.key.toString(), kv.value);
    if (!info) return;
    const known = this.entries.get(info.instanceId);
    if (known?.alive && sameIncarnation(known, info)) {
      // The same daemon again (a new lease, a changed endpoint): not a join.
      Object.assign(known, info);
      return;
    }
    if (known?.alive) this.markLeft(known);
    const entry: InstanceStatus = { ...info, alive: true };
    this.entries.set(info.instanceId, entry);
    this.emit('joined', { ...entry });
  }

  private applyDelete(key: string): void {
    const instanceId = instanceIdOfKey(key);
    const known = instanceId === undefined ? undefined : this.entries.get(instanceId);
    if (known?.alive) this.markLeft(known);
  }

  private markLeft(entry: InstanceStatus): void {
    entry.alive = false;
    this.emit('left', { ...entry });
  }

  private dropWatcher(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    // Not awaited: cancelling waits for etcd to confirm, which a dead link never does.
    if (watcher) watcher.cancel().catch(() => undefined);
  }
}

function waitConnected(watcher: Watcher): Promise<void> {
  return new Promise((resolve, reject) => {
    watcher.once('connected', () => resolve());
    watcher.once('error', reject);
  });
}
