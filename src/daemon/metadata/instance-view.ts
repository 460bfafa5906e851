/**
 * A live view of the cluster's instances: the `instances/` keys, mirrored by a PrefixMirror
 * (a snapshot, then a watch from its revision on, and a fresh snapshot whenever the watch
 * breaks), turned into joins and leaves.
 *
 * Events: 'joined' (InstanceStatus), 'left' (InstanceStatus), 'synced' (after each snapshot),
 * 'unavailable' (TrellisError, when a resync fails; it keeps retrying until stopped).
 */
import { EventEmitter } from 'node:events';
import type { TrellisError } from '../../errors';
import type { EtcdConnection } from './etcd-connection';
import {
  INSTANCES_PREFIX,
  decodeInstanceInfo,
  instanceIdOfKey,
  sameIncarnation,
  type InstanceStatus,
} from './instance-info';
import { PrefixMirror, type MirrorEntry } from './prefix-mirror';

export interface InstanceViewEvents {
  joined: [InstanceStatus];
  left: [InstanceStatus];
  synced: [];
  unavailable: [TrellisError];
}

export class InstanceView extends EventEmitter<InstanceViewEvents> {
  /** Every instance seen since start, alive or not. */
  private readonly entries = new Map<number, InstanceStatus>();
  private readonly mirror: PrefixMirror;

  constructor(connection: EtcdConnection) {
    super();
    this.mirror = new PrefixMirror(connection, [INSTANCES_PREFIX]);
    // A snapshot reports what it lacks before what it holds: leaves come before joins.
    this.mirror.on('put', (key, entry) => this.applyPut(key, entry));
    this.mirror.on('delete', (key) => this.applyDelete(key));
    this.mirror.on('synced', () => this.emit('synced'));
    this.mirror.on('unavailable', (error) => this.emit('unavailable', error));
  }

  /** Reads the first snapshot and starts watching. Errors: Unavailable. */
  async start(): Promise<void> {
    await this.mirror.start();
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
    this.mirror.resync();
  }

  stop(): void {
    this.mirror.stop();
  }

  private applyPut(key: string, { value }: MirrorEntry): void {
    const info = decodeInstanceInfo(key, value);
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
}
