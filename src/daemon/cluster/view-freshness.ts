/**
 * Whether a daemon may answer names from its cached view of the cluster.
 *
 * The view follows etcd's watch, a little behind, which is fine while this daemon's lease is
 * alive: its names stay its own. Once the lease may have expired (no renewal for a whole TTL:
 * the daemon was stopped, starved, or cut off from etcd), other daemons may have taken its
 * names, and the view, fed by a watch that may have heard nothing since, can still show the
 * old owner: wrong data, not just late data. So name reads then wait, up to the etcd call
 * deadline, until the lease is renewed, or the daemon has registered again and read a fresh
 * snapshot; otherwise they fail with Unavailable. Objects asked for by id are not gated: an
 * id's contents never change.
 */
import { TrellisError } from '../../errors';
import type { EtcdConnection } from '../metadata/etcd-connection';
import type { Membership } from '../metadata/membership';
import type { PrefixMirror } from '../metadata/prefix-mirror';

export class ViewFreshness {
  /** Registered again after a lost lease; the pins are not re-read from etcd yet. */
  private resyncPending = false;
  /** The same for the names held (their reads after a lost lease). */
  private namesPending = 0;
  private readonly waiters = new Set<() => void>();

  /** `mirror`: this daemon's pins; `resyncNames` reads the held names again, resolving once done. */
  constructor(
    private readonly connection: EtcdConnection,
    private readonly membership: Membership,
    mirror: PrefixMirror,
    resyncNames: () => Promise<void>,
  ) {
    membership.on('reregistered', () => {
      this.resyncPending = true;
      this.namesPending++;
      mirror.resync();
      void resyncNames().then(() => {
        this.namesPending--;
        this.wake();
      });
    });
    membership.on('renewed', () => this.wake());
    mirror.on('synced', () => {
      this.resyncPending = false;
      this.wake();
    });
  }

  /** Whether cached names can be answered from right now. */
  current(): boolean {
    return !this.resyncPending && this.namesPending === 0 && this.membership.leaseSurelyAlive();
  }

  /**
   * Undefined when the view is current (the common case costs no promise); else a promise that
   * resolves once it is, within the etcd call deadline. Errors: Unavailable.
   */
  whenCurrent(what: string): Promise<void> | undefined {
    if (this.current()) return undefined;
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!this.current()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(this.unavailable(what));
      }, this.connection.callTimeoutMs);
      this.waiters.add(check);
    });
  }

  private wake(): void {
    for (const check of [...this.waiters]) check();
  }

  private unavailable(what: string): TrellisError {
    const { instanceId, leaseTtlSeconds } = this.membership;
    const why =
      this.resyncPending || this.namesPending > 0
        ? 'it registered again after losing its lease and has not re-read the names from etcd yet'
        : `its lease was last renewed ${Math.round(this.membership.msSinceRenewal())} ms ago, longer than its ` +
          `TTL (${leaseTtlSeconds} s): it may have expired, and names may have moved since`;
    return new TrellisError(
      'Unavailable',
      `cannot ${what}: instance ${instanceId} cannot vouch for its view of the cluster's names, since ${why} ` +
        `(etcd at ${this.connection.describe()}); objects asked for by id still work`,
    );
  }
}
