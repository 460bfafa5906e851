/**
 * One daemon's membership in the cluster: its instance id, its registration under a lease that
 * is kept alive, and its live view of the other instances.
 *
 * etcd is the source of truth for who is in the cluster (DESIGN.md invariant 6), and etcd can
 * forget: it restarts, loses its data dir, or is cut off long enough for the lease to expire.
 * Whenever the registration is lost (the lease is lost, or the view sees this daemon's key go)
 * the membership grants a new lease, takes its same id back and puts its info again, retrying
 * with backoff for as long as it takes, then emits 'reregistered' so the daemon re-publishes
 * what it owns. It never changes its id: object ids carry it.
 *
 * Events (none is 'error', so no event can crash a daemon that forgot a listener):
 * - 'joined' (InstanceStatus), 'left' (InstanceStatus): the view changed; includes this daemon.
 * - 'reregistered' ({ instanceId, leaseId }): registered again after a loss; re-put your keys.
 * - 'unavailable' (TrellisError): etcd stopped answering; emitted once per outage.
 * - 'available' (): etcd answers again after an outage.
 * - 'renewed' (): etcd renewed the current lease; `leaseSurelyAlive()` holds again.
 * - 'conflict' (TrellisError, code Conflict): another daemon holds this daemon's id (possible
 *   only after etcd lost its data and a new daemon joined before this one came back). It keeps
 *   retrying until the id is free; the daemon may prefer to stop.
 */
import { EventEmitter } from 'node:events';
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Lease } from 'etcd3';
import { TrellisError } from '../../errors';
import { isLeaseNotFound, type EtcdConnection } from './etcd-connection';
import { allocateInstanceId, reclaimInstanceId } from './instance-ids';
import {
  decodeInstanceInfo,
  encodeInstanceInfo,
  instanceKey,
  sameIncarnation,
  type InstanceInfo,
  type InstanceStatus,
} from './instance-info';
import { InstanceView } from './instance-view';
import { LeaseRenewals } from './lease-renewals';

export const DEFAULT_LEASE_TTL_SECONDS = 10;
/** etcd 3.4 quietly raises shorter TTLs to its minimum (about 2 s with default election timing). */
export const MIN_LEASE_TTL_SECONDS = 2;
const REREGISTER_FIRST_DELAY_MS = 100;
const REREGISTER_MAX_DELAY_MS = 2_000;
/** Tries of setRpcEndpoint, each after a new lease when etcd answered that the last one is gone. */
const RPC_ENDPOINT_ATTEMPTS = 3;
/** How long setRpcEndpoint waits for a new lease, in etcd call timeouts (grant, claim, and slack). */
const REREGISTER_WAIT_CALLS = 5;

export interface MembershipOptions {
  /** The daemon's UNIX socket. */
  socket: string;
  /** host:port of its RPC server; null or absent when it serves none. */
  rpcEndpoint?: string | null;
  hostname?: string;
  /** Milliseconds since the epoch; default now. */
  startedAt?: number;
  /** Seconds a dead daemon keeps looking alive (`--lease-ttl`); whole seconds, at least 2. */
  leaseTtlSeconds?: number;
  /**
   * The id to take back (a daemon restarted on its data dir, whose object ids carry it): it
   * waits while the old registration's lease runs out, then takes the id. Default: a new id.
   */
  instanceId?: number;
}

export interface MembershipEvents {
  joined: [InstanceStatus];
  left: [InstanceStatus];
  reregistered: [{ instanceId: number; leaseId: string }];
  unavailable: [TrellisError];
  available: [];
  conflict: [TrellisError];
  renewed: [];
}

export class Membership extends EventEmitter<MembershipEvents> {
  private lease: Lease;
  private leaseIdValue: string;
  private registeredNow = true;
  private reregistering = false;
  private leaving = false;
  private outage = false;
  private conflictReported = false;
  /** When the current lease was last surely renewed. */
  private renewals: LeaseRenewals;
  /**
   * Work on this daemon's registration, one at a time: a round of re-registering (new lease, key
   * put back, old lease revoked) and a put of the key (setRpcEndpoint). A put made on the old
   * lease during a round would go with that lease when the round revokes it, and the view, seeing
   * the key go, would start another round.
   */
  private registrationWork: Promise<unknown> = Promise.resolve();
  private readonly unhookClose: () => void;

  private constructor(
    private readonly connection: EtcdConnection,
    readonly info: InstanceInfo,
    readonly leaseTtlSeconds: number,
    lease: Lease,
    leaseId: string,
    renewals: LeaseRenewals,
    private readonly view: InstanceView,
  ) {
    super();
    this.lease = lease;
    this.leaseIdValue = leaseId;
    this.renewals = renewals;
    this.watchLease(lease);
    view.on('joined', (status) => {
      this.emit('joined', status);
      // Someone else under this daemon's id: only possible if this daemon lost its key.
      if (status.instanceId === info.instanceId && !sameIncarnation(status, info)) void this.checkRegistration();
    });
    view.on('left', (status) => {
      this.emit('left', status);
      if (status.instanceId === info.instanceId) void this.checkRegistration();
    });
    view.on('synced', () => this.recovered());
    view.on('unavailable', (error) => this.lostContact(error));
    this.unhookClose = connection.onClose(() => this.stopLocally());
    // Lost while the id was being claimed, before anyone listened for it.
    if (lease.revoked()) this.reregister();
  }

  /**
   * Takes a cluster-unique instance id, registers this daemon under a lease kept alive from now
   * on, and reads the cluster's instances. Errors: Unavailable, InvalidArgument, Conflict.
   */
  static async join(connection: EtcdConnection, options: MembershipOptions): Promise<Membership> {
    const leaseTtlSeconds = options.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS;
    if (!Number.isInteger(leaseTtlSeconds) || leaseTtlSeconds < MIN_LEASE_TTL_SECONDS) {
      throw new TrellisError(
        'InvalidArgument',
        `lease TTL must be a whole number of seconds, at least ${MIN_LEASE_TTL_SECONDS} (etcd ignores shorter ones), got ${leaseTtlSeconds}`,
      );
    }
    const hostname = options.hostname ?? os.hostname();
    const startedAt = options.startedAt ?? Date.now();
    const describe = (instanceId: number): InstanceInfo => ({
      instanceId,
      hostname,
      socket: options.socket,
      rpcEndpoint: options.rpcEndpoint ?? null,
      startedAt,
    });
    const { lease, leaseId, renewals } = await grantLease(connection, leaseTtlSeconds);
    let membership: Membership | undefined;
    try {
      const info =
        options.instanceId === undefined
          ? await allocateInstanceId(connection, describe, leaseId)
          : await takeBack(connection, describe(options.instanceId), leaseId, (leaseTtlSeconds + 3) * 1000);
      const view = new InstanceView(connection);
      membership = new Membership(connection, info, leaseTtlSeconds, lease, leaseId, renewals, view);
      await membership.view.start();
      return membership;
    } catch (error) {
      if (membership) await membership.leave();
      else await revokeQuietly(connection, lease);
      throw error;
    }
  }

  get instanceId(): number {
    return this.info.instanceId;
  }

  /** The current lease: put keys that should vanish with this daemon on it. Changes on 'reregistered'. */
  get leaseId(): string {
    return this.leaseIdValue;
  }

  /** Whether this daemon's key is believed to be in etcd right now. */
  get registered(): boolean {
    return this.registeredNow;
  }

  /**
   * Whether etcd surely still holds this daemon's lease: registered, and renewed less than a
   * TTL ago. Past that, the lease may have expired and other daemons may have taken this
   * daemon's names (a daemon stopped or cut off from etcd cannot tell until it hears again).
   */
  leaseSurelyAlive(): boolean {
    return this.registeredNow && this.msSinceRenewal() < this.leaseTtlSeconds * 1000;
  }

  /** Milliseconds since the current lease was last surely renewed. */
  msSinceRenewal(): number {
    return this.renewals.msSinceRenewal();
  }

  /** Every instance seen, alive or not (this one included), in id order. */
  instances(): InstanceStatus[] {
    return this.view.list();
  }

  instance(instanceId: number): InstanceStatus | undefined {
    return this.view.get(instanceId);
  }

  /**
   * Registers a new RPC endpoint (a daemon may learn its RPC port only after it joined, when
   * the port was picked by the system). Errors: Unavailable.
   */
  async setRpcEndpoint(rpcEndpoint: string | null): Promise<void> {
    this.info.rpcEndpoint = rpcEndpoint;
    const key = instanceKey(this.instanceId);
    const what = `register the rpc endpoint of instance ${this.instanceId}`;
    for (let attempt = 1; ; attempt++) {
      let leaseId = this.leaseIdValue;
      try {
        await this.serially(() => {
          // Read once any round under way is done: its lease is the one that stays.
          leaseId = this.leaseIdValue;
          return this.connection.run(what, (kv) =>
            kv.put(key).value(encodeInstanceInfo(this.info)).lease(leaseId).exec(),
          );
        });
        return;
      } catch (error) {
        if (!isLeaseNotFound(error) || attempt === RPC_ENDPOINT_ATTEMPTS) throw error;
      }
      // The lease ran out before the port was known (a daemon stalled past its TTL while
      // starting): register again under a new lease, as after any loss, then put the endpoint.
      await this.registeredSince(leaseId, what);
    }
  }

  /** Resolves once registered under a lease other than `leaseId`. Errors: Unavailable (not in time). */
  private async registeredSince(leaseId: string, what: string): Promise<void> {
    if (this.leaseIdValue !== leaseId && this.registeredNow) return;
    const waitMs = REREGISTER_WAIT_CALLS * this.connection.callTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    let listener: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        listener = resolve;
        this.once('reregistered', listener);
        timer = setTimeout(
          () =>
            reject(
              new TrellisError(
                'Unavailable',
                `could not ${what}: lease ${leaseId} is gone, and no new one in ${waitMs} ms`,
              ),
            ),
          waitMs,
        );
        this.reregister();
      });
    } finally {
      clearTimeout(timer);
      if (listener) this.off('reregistered', listener);
    }
  }

  /** Stops keeping the lease alive and revokes it, which removes this daemon's keys. Never throws. */
  async leave(): Promise<void> {
    if (this.leaving) return;
    this.stopLocally();
    await revokeQuietly(this.connection, this.lease);
  }

  /** Stops the keep-alive, the watch and any retry loop, without telling etcd. */
  private stopLocally(): void {
    this.leaving = true;
    this.registeredNow = false;
    this.unhookClose();
    this.view.stop();
    this.lease.release();
  }

  private watchLease(lease: Lease): void {
    lease.on('lost', (error) => {
      if (lease !== this.lease || this.leaving) return;
      this.registeredNow = false;
      this.lostContact(this.connection.toTrellisError(`keep lease ${this.leaseIdValue} alive`, error));
      this.reregister();
    });
    lease.on('keepaliveFailed', (error) => {
      if (lease === this.lease)
        this.lostContact(this.connection.toTrellisError(`keep lease ${this.leaseIdValue} alive`, error));
    });
    lease.on('keepaliveSucceeded', () => {
      if (lease !== this.lease) return;
      this.recovered();
      // LeaseRenewals, attached at the grant, has counted this renewal already.
      this.emit('renewed');
    });
  }

  /**
   * Reregisters unless etcd holds this daemon's key on its current lease. The view can report
   * the key gone from a snapshot read just before a re-registration put it back; asking etcd
   * first avoids a second, needless round of new lease and 'reregistered'.
   */
  private async checkRegistration(): Promise<void> {
    if (this.reregistering || this.leaving) return;
    const key = instanceKey(this.instanceId);
    let holdsKey: boolean;
    try {
      const found = (await this.connection.run(`read instance ${this.instanceId}`, (kv) => kv.get(key).exec())).kvs[0];
      const holder = found && decodeInstanceInfo(key, found.value);
      holdsKey = holder !== undefined && sameIncarnation(holder, this.info) && found.lease === this.leaseIdValue;
    } catch {
      // etcd does not answer: the lease keep-alive notices that, and loses the lease if it lasts.
      return;
    }
    if (!holdsKey) this.reregister();
  }

  /** Registers again under the same id, retrying until it works or the daemon leaves. */
  private reregister(): void {
    if (this.reregistering || this.leaving) return;
    this.reregistering = true;
    this.registeredNow = false;
    void (async () => {
      let delay = REREGISTER_FIRST_DELAY_MS;
      try {
        while (!this.leaving) {
          if (await this.serially(() => this.tryReregister())) return;
          await new Promise((resolve) => setTimeout(resolve, delay));
          delay = Math.min(delay * 2, REREGISTER_MAX_DELAY_MS);
        }
      } finally {
        this.reregistering = false;
      }
    })();
  }

  /** Runs `work` after the registration work before it (registrationWork), whatever its outcome. */
  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.registrationWork.then(work);
    this.registrationWork = run.catch(() => undefined);
    return run;
  }

  private async tryReregister(): Promise<boolean> {
    let granted: Granted;
    try {
      granted = await grantLease(this.connection, this.leaseTtlSeconds);
    } catch (error) {
      this.lostContact(this.connection.toTrellisError('grant a lease', error));
      return false;
    }
    try {
      const result = await reclaimInstanceId(this.connection, this.info, granted.leaseId);
      if (this.leaving) throw new TrellisError('Unavailable', 'left the cluster while registering again');
      if (!result.claimed) {
        this.reportConflict(result.holder);
        await revokeQuietly(this.connection, granted.lease);
        return false;
      }
    } catch (error) {
      await revokeQuietly(this.connection, granted.lease);
      if (!this.leaving)
        this.lostContact(this.connection.toTrellisError(`register instance ${this.instanceId} again`, error));
      return false;
    }
    const previous = this.lease;
    this.lease = granted.lease;
    this.leaseIdValue = granted.leaseId;
    this.renewals = granted.renewals;
    this.watchLease(granted.lease);
    // Keys the daemon left on the old lease go with it; it re-puts them on 'reregistered'.
    await revokeQuietly(this.connection, previous);
    this.registeredNow = true;
    this.conflictReported = false;
    this.recovered();
    this.view.resync();
    this.emit('reregistered', { instanceId: this.instanceId, leaseId: granted.leaseId });
    return true;
  }

  private reportConflict(holder: InstanceInfo | undefined): void {
    if (this.conflictReported) return;
    this.conflictReported = true;
    const who = holder
      ? `${holder.hostname} (socket ${holder.socket}, started ${new Date(holder.startedAt).toISOString()})`
      : 'an unreadable entry';
    this.emit(
      'conflict',
      new TrellisError('Conflict', `instance id ${this.instanceId} is now held by ${who}; waiting for it to be free`),
    );
  }

  private lostContact(error: TrellisError): void {
    if (this.outage || this.leaving) return;
    this.outage = true;
    this.emit('unavailable', error);
  }

  private recovered(): void {
    if (!this.outage || this.leaving) return;
    this.outage = false;
    this.emit('available');
  }
}

interface Granted {
  lease: Lease;
  leaseId: string;
  renewals: LeaseRenewals;
}

/** Grants a lease and starts keeping it alive. Errors: Unavailable. */
async function grantLease(connection: EtcdConnection, ttlSeconds: number): Promise<Granted> {
  // The lease cannot expire before the request that grants it was sent plus its TTL.
  const askedAt = performance.now();
  const lease = connection.kv.lease(ttlSeconds, { autoKeepAlive: true });
  const renewals = new LeaseRenewals(lease, askedAt);
  // A failed grant is also reported as 'lost'; this listener keeps it from going unheard.
  lease.on('lost', () => undefined);
  try {
    const leaseId = await connection.run('grant a lease', () => lease.grant());
    return { lease, leaseId, renewals };
  } catch (error) {
    // If the grant answers after all, release() keeps it from being kept alive: it expires.
    lease.release();
    throw error;
  }
}

/** Revokes a lease (removing its keys), or lets it expire if etcd does not answer. */
async function revokeQuietly(connection: EtcdConnection, lease: Lease): Promise<void> {
  try {
    await connection.run('revoke a lease', () => lease.revoke());
  } catch {
    lease.release();
  }
}

/**
 * Takes `info.instanceId` again for a restarted daemon: free, or once the lease of its earlier
 * registration has run out (within `waitMs`). Errors: Conflict (still held by someone else
 * after the wait), Unavailable.
 */
async function takeBack(
  connection: EtcdConnection,
  info: InstanceInfo,
  leaseId: string,
  waitMs: number,
): Promise<InstanceInfo> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const result = await reclaimInstanceId(connection, info, leaseId);
    if (result.claimed) return info;
    if (Date.now() >= deadline) {
      const holder = result.holder ? ` by ${result.holder.hostname} (socket ${result.holder.socket})` : '';
      throw new TrellisError(
        'Conflict',
        `instance id ${info.instanceId}, which this daemon's data dir holds objects of, is still registered${holder} ` +
          `after ${Math.round(waitMs / 1000)} s: is another daemon running with it?`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
