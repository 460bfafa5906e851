/**
 * What a daemon owns in etcd, kept there: its persisted objects and the names of its objects.
 *
 * They live on the daemon's lease. When the lease is lost (etcd restarted or lost its data, or
 * did not hear from the daemon within the TTL) Membership registers again under the same id and
 * emits 'reregistered'; the keys are then put back, retrying until it works. Names another
 * daemon took in the meantime stay theirs.
 *
 * Telling such a loss from a deliberate delete by another daemon matters: the first must be
 * undone, the second obeyed (the owner frees the object's bytes). The rule: a key of ours that
 * disappears while the lease it was on is still alive was deleted on purpose; one that went
 * with its lease (revoked on re-registration, expired, or wiped with etcd's data) was not.
 */
import { TrellisError, isTrellisError } from '../../errors';
import { commitInBatches, type TransactionOperation } from '../metadata/batched-transaction';
import type { EtcdConnection } from '../metadata/etcd-connection';
import type { Membership } from '../metadata/membership';
import type { MirrorEntry } from '../metadata/prefix-mirror';
import type { ObjectTable } from '../object-table';
import type { Expirations } from './expirations';
import { MAX_NAMES_PER_CALL, type NameChange, type NameDirectory } from './name-directory';
import type { ObjectDirectory } from './object-directory';
import { decodeNameTarget, idOfObjectKey, nameOfKey } from './records';

const RETRY_FIRST_DELAY_MS = 100;
const RETRY_MAX_DELAY_MS = 2_000;

/** Unref'd: a stopped daemon's retries keep no process alive (a running daemon's server does). */
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

export class Ownership {
  private stopped = false;
  private republishRound = 0;
  /** Keys of ours that vanished, waiting to learn whether their lease was still alive. */
  private readonly suspects = new Map<string, string>();
  private verifying = false;

  constructor(
    private readonly connection: EtcdConnection,
    private readonly membership: Membership,
    private readonly objects: ObjectDirectory,
    private readonly names: NameDirectory,
    private readonly table: ObjectTable,
    private readonly expirations: Expirations,
  ) {
    // This daemon's own object records (a mirror), and the names that publish its objects.
    const onDelete = (key: string, previous: MirrorEntry): void => {
      const id = idOfObjectKey(key);
      const name = nameOfKey(key);
      if (
        id !== undefined
          ? objects.isPersisted(id)
          : name !== undefined && names.ownedTarget(name) === decodeNameTarget(previous.value)
      ) {
        this.suspect(key, previous.lease);
      }
    };
    objects.mirror.on('delete', onDelete);
    names.on('delete', onDelete);
    membership.on('reregistered', () => this.republish());
  }

  stop(): void {
    this.stopped = true;
  }

  /** Puts back this daemon's objects and names after a lost lease, retrying until it works. */
  republish(): void {
    const round = ++this.republishRound;
    void (async () => {
      let delay = RETRY_FIRST_DELAY_MS;
      while (!this.stopped && round === this.republishRound) {
        try {
          await this.republishOnce();
          return;
        } catch {
          await pause(delay);
          delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
        }
      }
    })();
  }

  /**
   * Publishes this daemon's objects and names once (after a restart on its data dir); on
   * failure, keeps trying in the background. Errors: none.
   */
  async publishNow(): Promise<void> {
    try {
      await this.republishOnce();
    } catch {
      this.republish();
    }
  }

  private async republishOnce(): Promise<void> {
    if (!this.membership.registered) throw new TrellisError('Unavailable', 'not registered');
    const lease = this.membership.leaseId;
    const now = Date.now();
    const puts = new Map<string, TransactionOperation>();
    for (const [id, expiresAt] of this.objects.persistedObjects()) {
      if (!this.table.sealedObjectOrUndefined(id)) this.objects.forgetPersisted(id);
      else if (expiresAt === undefined || expiresAt > now) this.objects.recordPuts(id, lease, expiresAt, puts, true);
    }
    const result = await commitInBatches(this.connection, [...puts.values()]);
    this.objects.published(puts, BigInt(result.revision), new Map());

    const owned = this.names.ownedNames();
    const names = owned.filter(([, id]) => puts.has(id));
    for (const [name, id] of owned) if (!puts.has(id)) this.names.forgetOwned(name);
    const changes = names.map(([name, id]): NameChange => ({ name, id, lease, override: false }));
    const notFound = (id: string) => this.objects.notFound(id);
    for (let start = 0; start < changes.length; start += MAX_NAMES_PER_CALL) {
      const chunk = changes.slice(start, start + MAX_NAMES_PER_CALL);
      try {
        await this.names.put(chunk, [], [], notFound);
      } catch (error) {
        if (!isTrellisError(error, 'NameExists')) throw error;
        // Someone took one of them while this daemon was away: put the others one by one.
        for (const change of chunk) {
          await this.names.put([change], [], [], notFound).catch((each: unknown) => {
            if (!isTrellisError(each, 'NameExists')) throw each;
            this.names.forgetOwned(change.name);
          });
        }
      }
    }
    // Pins of names on other leases that still point to objects here went with the old lease.
    await this.names.repin(lease);
    if (lease !== this.membership.leaseId)
      throw new TrellisError('Unavailable', 'the lease changed while publishing again');
  }

  /** A key of ours vanished: find out whether on purpose (its lease lives on) or with its lease. */
  private suspect(key: string, lease: string): void {
    if (this.stopped || lease !== this.membership.leaseId) return;
    this.suspects.set(key, lease);
    if (this.verifying) return;
    this.verifying = true;
    void (async () => {
      let delay = RETRY_FIRST_DELAY_MS;
      try {
        while (this.suspects.size > 0 && !this.stopped) {
          const batch = new Map(this.suspects);
          try {
            const alive = new Map<string, boolean>();
            for (const leaseId of new Set(batch.values())) alive.set(leaseId, await this.leaseAlive(leaseId));
            for (const [suspectKey, leaseId] of batch)
              if (this.suspects.get(suspectKey) === leaseId) this.suspects.delete(suspectKey);
            this.deletedOnPurpose(
              [...batch].filter(([, leaseId]) => alive.get(leaseId)).map(([suspectKey]) => suspectKey),
            );
            delay = RETRY_FIRST_DELAY_MS;
          } catch {
            await pause(delay);
            delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
          }
        }
      } finally {
        this.verifying = false;
      }
    })();
  }

  private async leaseAlive(lease: string): Promise<boolean> {
    const answer = await this.connection.run(`check lease ${lease}`, (kv) =>
      kv.leaseClient.leaseTimeToLive({ ID: lease }),
    );
    return Number(answer.TTL) > 0;
  }

  /** Another daemon deleted these keys of ours: forget the names, free the objects. */
  private deletedOnPurpose(keys: string[]): void {
    const ids: string[] = [];
    for (const key of keys) {
      const id = idOfObjectKey(key);
      if (id !== undefined) {
        if (this.objects.mirror.get(key) || !this.objects.forgetPersisted(id)) continue;
        this.expirations.cancel(id);
        if (this.table.sealedObjectOrUndefined(id)) ids.push(id);
        continue;
      }
      const name = nameOfKey(key);
      if (name !== undefined && !this.names.has(name)) this.names.forgetOwned(name);
    }
    if (ids.length > 0) this.table.delete(undefined, ids, { deep: false, force: true });
  }
}
