/**
 * Taking things out of the cluster: deletes (over the graph rules of ObjectTable.delete, for
 * local and other instances' objects alike), expiry, and the undo of a publish that failed part
 * way. Keys go from etcd first; the local table follows once they are gone.
 */
import { daemonLog } from '../log';
import type { ClientSession } from '../session';
import { commitInBatches, type TransactionOperation } from '../metadata/batched-transaction';
import type { DeleteOptions } from '../metadata/meta-service';
import { leaseOfObject, requireRegistered, type ClusterContext } from './cluster-context';
import type { NameChange } from './name-directory';
import { instanceOf } from '../../protocol/ids';
import { objectKey } from './records';
import { RetryLoop } from '../metadata/retry-loop';
import { isLeaseNotFound, mayWorkLater } from '../metadata/etcd-connection';

/** An undo or read-back etcd did not answer is tried again after this, then twice as long, up to the most. */
const UNDO_RETRY_FIRST_DELAY_MS = 200;
const UNDO_RETRY_MAX_DELAY_MS = 5_000;

/**
 * Tries of taking keys out while etcd answers that a lease read for a name is gone: each after
 * reading the records again, so another daemon's lease ending meanwhile does not stop it.
 */
const LEASE_GONE_ATTEMPTS = 3;

/** What one publish transaction wrote: records by object id, and name changes. */
export interface CommittedBatch {
  records: Map<string, TransactionOperation>;
  changes: NameChange[];
}

export class Unpublisher {
  constructor(private readonly cluster: ClusterContext) {}

  /**
   * Deletes objects of any instance by the graph rules of ObjectTable.delete, over the cluster
   * view for other instances' objects. Their keys go first (the owner of a remote object sees
   * them go and frees the bytes); local objects are then deleted here. Deleting objects that
   * were never shared needs no etcd. Returns the ids removed.
   * Errors: ObjectNotFound, NotSealed, Conflict, Unavailable.
   */
  async delete(session: ClientSession | undefined, ids: string[], options: DeleteOptions): Promise<string[]> {
    const { objects, names, table } = this.cluster;
    const unique = [...new Set(ids)];
    const remoteIds = new Set(await objects.view(() => unique.filter((id) => objects.lookup(id) !== undefined)));
    const localIds = unique.filter((id) => !remoteIds.has(id));
    let localDoomed = localIds.length > 0 ? table.planDelete(localIds, options) : [];
    if (localDoomed.some((id) => objects.isPersisted(id))) {
      // A name put through another daemon on a shared object reaches this one by a watch (its
      // pin, then a read of the name), maybe after this request: the plan over the names held
      // here could take the keys of a named object out of etcd. Hold every pinned name first.
      await names.catchUpPins();
      localDoomed = table.planDelete(localIds, options);
    }
    // Other instances' objects: the names that pin them are read from their owners' pins.
    const pinning = remoteIds.size > 0 ? await names.readPinning([...remoteIds].map(instanceOf)) : new Map();
    const namesOf = (id: string): string[] => pinning.get(id) ?? names.namesOf(id);
    const remoteDoomed = remoteIds.size > 0 ? await objects.planDelete([...remoteIds], options, namesOf) : [];

    const unpersist = [...localDoomed.filter((id) => objects.isPersisted(id)), ...remoteDoomed];
    if (unpersist.length > 0) {
      requireRegistered(this.cluster, `delete ${unique.join(', ')}`);
      await this.removeKeys(unpersist, namesOf);
    }
    const deleted = localIds.length > 0 ? table.delete(session, localIds, options) : [];
    return [...deleted, ...remoteDoomed];
  }

  /** A persisted object's ttl ran out: delete it everywhere (a rejection retries later). */
  async expire(id: string): Promise<void> {
    if (!this.cluster.table.sealedObjectOrUndefined(id)) {
      this.cluster.objects.forgetPersisted(id);
      return;
    }
    await this.delete(undefined, [id], { deep: true, force: true });
  }

  /** After a publish: takes out the records of objects deleted while it was in flight. */
  dropDeletedMeanwhile(ids: string[]): void {
    const gone = ids.filter((id) => !this.cluster.table.sealedObjectOrUndefined(id));
    if (gone.length === 0) return;
    for (const id of gone) this.cluster.objects.forgetPersisted(id);
    const operations = gone.map((id): TransactionOperation => ({ kind: 'delete', key: objectKey(id) }));
    void commitInBatches(this.cluster.connection, operations).catch(() => undefined);
  }

  /**
   * Takes back keys written by a publish that failed part way (the names keep the versions they
   * had before it): those of the `committed` batches, and those the `uncertain` batches may have
   * written (their transaction got no answer, and may yet have committed). A publish waits for
   * the first try only when all its transactions were answered (Publisher.publish); while etcd
   * does not answer, the undo goes on in the background,
   * since the objects are gone from here and their keys would otherwise stay while the lease
   * lives, names pointing at nothing.
   */
  async undo(committed: readonly CommittedBatch[], uncertain: readonly CommittedBatch[] = []): Promise<void> {
    const batches = [...committed, ...uncertain];
    const ids = [...new Set(batches.flatMap((batch) => [...batch.records.keys(), ...batch.changes.map((c) => c.id)]))];
    if (ids.length === 0) return;
    // Names an uncertain batch may have written are not held here yet: the swap reads them back.
    const maybeNamed = new Map<string, string[]>();
    for (const { id, name } of uncertain.flatMap((batch) => batch.changes))
      maybeNamed.set(id, [...(maybeNamed.get(id) ?? []), name]);
    const namesOf = (id: string) => [...new Set([...this.cluster.names.namesOf(id), ...(maybeNamed.get(id) ?? [])])];
    const attempt = () => this.removeKeys(ids, namesOf);
    const what = `take back ${ids.length} objects of a failed publish`;
    try {
      await attempt();
    } catch (error) {
      // Anything but silence (a Conflict or a lease not found that kept coming, permission denied):
      // left until the lease its keys are on ends.
      if (mayWorkLater(error)) this.retryUntilAnswered(what, attempt);
      else givenUp(what, error);
    }
  }

  /**
   * Names put on local objects whose transaction got no answer (Unavailable) may yet have
   * committed, with the records that persisted those objects: this daemon would then not know
   * them as persisted, and a delete would leave their keys and names in etcd. So, once etcd
   * answers, the records are read back: one that is there is taken as published, or, when its
   * object was deleted meanwhile, taken out with the names that point at it. The same for a
   * persist with no answer (no `changes`; `rootExpiry` its ttl, as ObjectDirectory.published).
   */
  settleUncertain(
    records: ReadonlyMap<string, TransactionOperation>,
    changes: readonly NameChange[],
    rootExpiry: ReadonlyMap<string, number | undefined> = new Map(),
  ): void {
    const ids = [...records.keys()];
    const settle = async (): Promise<void> => {
      const responses = await this.cluster.connection.run(`read back ${ids.length} records`, (kv) =>
        Promise.all(ids.map((id) => kv.get(objectKey(id)).exec())),
      );
      const present = ids.filter((_, i) => responses[i].kvs.length > 0);
      const revision = responses.reduce(
        (most, r) => (BigInt(r.header.revision) > most ? BigInt(r.header.revision) : most),
        0n,
      );
      const { objects, table, names, expirations } = this.cluster;
      const live = present.filter((id) => table.sealedObjectOrUndefined(id) && !objects.isPersisted(id));
      if (live.length > 0) {
        const expiry = new Map([...rootExpiry].filter(([id]) => live.includes(id)));
        objects.published(
          live.map((id) => [id, records.get(id)!] as const),
          revision,
          expiry,
        );
        for (const [id, expiresAt] of expiry) if (expiresAt !== undefined) expirations.schedule(id, expiresAt);
      }
      const gone = present.filter((id) => !table.sealedObjectOrUndefined(id));
      if (gone.length === 0) return;
      const namedNow = (id: string) => changes.filter((change) => change.id === id).map((change) => change.name);
      await this.removeKeys(gone, (id) => [...new Set([...names.namesOf(id), ...namedNow(id)])]);
    };
    this.retryUntilAnswered(`read back ${ids.length} records of an unanswered publish`, settle);
  }

  /**
   * Runs `attempt` again, backing off, while etcd does not answer it (mayWorkLater); an answer
   * that will not change, or any other error, ends it, logged: `what` completes "gave up ...".
   */
  private retryUntilAnswered(what: string, attempt: () => Promise<void>): void {
    const { connection } = this.cluster;
    const step = async (): Promise<void> => {
      try {
        await attempt();
      } catch (error) {
        if (mayWorkLater(error)) throw error;
        if (!connection.isClosed) givenUp(what, error);
      }
    };
    const loop = new RetryLoop(step, {
      firstDelayMs: UNDO_RETRY_FIRST_DELAY_MS,
      maxDelayMs: UNDO_RETRY_MAX_DELAY_MS,
      stopped: () => connection.isClosed,
      failed: () => undefined,
    });
    loop.request();
  }

  /**
   * Deletes the keys of `ids` in etcd, and the versions of names that point to them (a name
   * left with none goes; see NameDirectory.dropObjects), and shows it at once. The objects are
   * forgotten as this daemon's first, so that the deletes coming back through the watch are not
   * taken for losses; a failed write puts them back. Errors: Conflict, Unavailable.
   */
  private async removeKeys(
    ids: readonly string[],
    namesOf: (id: string) => string[] = (id) => this.cluster.names.namesOf(id),
  ): Promise<void> {
    const { objects, table, expirations } = this.cluster;
    const forgottenIds = ids.map((id) => [id, objects.forgetPersisted(id)] as const);
    const operations = ids.map((id): TransactionOperation => ({ kind: 'delete', key: objectKey(id) }));
    let revision: bigint | undefined;
    try {
      const { names } = this.cluster;
      for (let attempt = 1; ; attempt++) {
        // Names not held here (another instance's objects) are read by the swap itself.
        await names.load([...new Set(ids.flatMap(namesOf))]);
        const candidates = ids.flatMap(namesOf).flatMap((name) => names.versionIds(name));
        const leaseOf = await leaseOfObject(this.cluster, candidates);
        try {
          revision = await names.dropObjects(ids, operations, leaseOf, namesOf);
          break;
        } catch (error) {
          // A name goes back onto the lease of the object that becomes its latest; when that is
          // another daemon's lease that ended after it was read (its records went with it, or
          // came back on a new lease), the records are read again, not taken from the cache.
          if (!isLeaseNotFound(error) || attempt === LEASE_GONE_ATTEMPTS) throw error;
          for (const id of candidates) if (!table.sealedObjectOrUndefined(id)) objects.remoteRecords.forget(id);
        }
      }
    } catch (error) {
      for (const [id, was] of forgottenIds)
        if (was && table.sealedObjectOrUndefined(id)) objects.restorePersisted(id, was.expiresAt);
      throw error;
    }
    if (revision !== undefined) objects.unpublished([...ids], revision);
    for (const id of ids) expirations.cancel(id);
  }
}

/** A background undo or read-back that etcd refused: what it left stays until its lease ends. */
function givenUp(what: string, error: unknown): void {
  const reason = error instanceof Error ? error.message : String(error);
  daemonLog().warn(`gave up trying to ${what}: ${reason}`);
}
