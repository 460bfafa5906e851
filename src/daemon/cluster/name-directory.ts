/**
 * Names, cluster-wide: one namespace in etcd under `names/`, mirrored into each daemon's
 * NameTable (which then answers getName, listNames and getName's waits as before, now for names
 * published anywhere).
 *
 * Every change is one etcd transaction, so two daemons can never both win a name:
 * - a new name is put only if the key does not exist (create revision 0);
 * - override, or a name already on the same object, is a compare-and-swap on the key's mod
 *   revision as this daemon last saw it;
 * - putNames compares every name in the same transaction: all or none.
 * When the comparison fails, the transaction's else branch reads the names back, so one round
 * trip tells who holds the name (NameExists) or gives the revision to retry a swap with.
 *
 * A name's versions live in its key's value (records.ts), so `expectVersion` is checked against
 * the history the same transaction swaps: two writers expecting the same version cannot both win.
 *
 * A name key lives on the lease of the daemon that holds the object, so the names of a dead
 * daemon's objects disappear with it. `owned` lists the names that publish this daemon's
 * objects: it puts them back after its lease was lost.
 */
import type { IKeyValue, Namespace } from 'etcd3';
import { TrellisError } from '../../errors';
import { instanceOf } from '../../protocol/ids';
import type { TransactionOperation } from '../metadata/batched-transaction';
import { MAX_OPERATIONS_PER_TRANSACTION } from '../metadata/batched-transaction';
import type { EtcdConnection } from '../metadata/etcd-connection';
import type { NameTable } from '../names';
import type { PrefixMirror } from '../metadata/prefix-mirror';
import { nextHistory, withoutVersion, type NameHistory } from '../name-history';
import { decodeNameHistory, encodeNameHistory, nameKey, nameOfKey, objectKey } from './records';

/** putNames takes at most this many names: they must fit one etcd transaction. */
export const MAX_NAMES_PER_CALL = MAX_OPERATIONS_PER_TRANSACTION;
/** A swap that keeps losing to other writers gives up with Conflict after this many tries. */
const MAX_SWAP_ATTEMPTS = 8;

export interface NameChange {
  readonly name: string;
  readonly id: string;
  /** The lease of the daemon that holds the object. */
  readonly lease: string;
  /** Move the name if another object has it (else NameExists). */
  readonly override: boolean;
  /** The version the name must be at (0: absent), checked in the transaction. */
  readonly expectVersion?: number;
}

/** What a name holds as this daemon last saw it; null when absent. */
type Observed = { history: NameHistory | undefined; modRevision: string } | null;

export class NameDirectory {
  /** Names that publish this daemon's objects, and the object each publishes. */
  private readonly owned = new Map<string, string>();
  /** Every name in the cluster view, by the object it publishes, and the other way round. */
  private readonly byId = new Map<string, Set<string>>();
  private readonly targets = new Map<string, string>();
  /** Histories a restart on a data dir brought back, to write when the names are published again. */
  private readonly restoring = new Map<string, NameHistory>();

  /** `mirror` holds `names/` (and may hold other keys, which are ignored). */
  constructor(
    private readonly connection: EtcdConnection,
    readonly mirror: PrefixMirror,
    private readonly names: NameTable,
    private readonly instanceId: number,
  ) {
    this.mirror.on('put', (key, entry) => {
      const name = nameOfKey(key);
      if (name === undefined) return;
      const history = decodeNameHistory(entry.value);
      const id = history?.versions[0].id;
      this.unindex(name);
      this.names.set(name, history);
      if (id === undefined) return;
      this.targets.set(name, id);
      this.byId.set(id, (this.byId.get(id) ?? new Set()).add(name));
      if (instanceOf(id) === this.instanceId) this.owned.set(name, id);
      else this.owned.delete(name);
    });
    this.mirror.on('delete', (key) => {
      const name = nameOfKey(key);
      if (name === undefined) return;
      this.unindex(name);
      // `owned` keeps it: only an explicit drop (see ClusterMetadata) removes it from there.
      this.names.set(name, undefined);
    });
  }

  /** The object of this daemon that `name` publishes, if it is one of its names. */
  ownedTarget(name: string): string | undefined {
    return this.owned.get(name);
  }

  /** This daemon's names and their objects, as a list to go through. */
  ownedNames(): Array<[name: string, id: string]> {
    return [...this.owned];
  }

  /** Forgets that `name` is this daemon's (it is going, or was taken); returns its object. */
  forgetOwned(name: string): string | undefined {
    const id = this.owned.get(name);
    this.owned.delete(name);
    return id;
  }

  /** Takes back a forgetOwned whose etcd write failed; `history`: versions kept on disk, to publish. */
  restoreOwned(name: string, id: string, history?: NameHistory): void {
    this.owned.set(name, id);
    if (history) this.restoring.set(name, history);
  }

  /** Names in the cluster view that publish `id`. */
  namesOf(id: string): string[] {
    return [...(this.byId.get(id) ?? [])];
  }

  /**
   * Publishes names in one transaction, with `records` (object records to persist first) in
   * the same transaction. The caller keeps records.length + changes.length within one
   * transaction. `mustExist` are objects of other instances that the names point at: the
   * transaction also checks their records are still there. Returns the revision and each
   * name's version. Errors: NameExists, ObjectNotFound (via notFound), Conflict, Unavailable.
   */
  async put(
    changes: readonly NameChange[],
    records: readonly TransactionOperation[],
    mustExist: readonly string[],
    notFound: (id: string) => TrellisError,
  ): Promise<{ revision: bigint; versions: Record<string, number> }> {
    const observed = new Map<string, Observed>();
    for (const change of changes) {
      const entry = this.mirror.get(nameKey(change.name));
      const seen = entry && { history: decodeNameHistory(entry.value), modRevision: String(entry.modRevision) };
      observed.set(change.name, seen ?? null);
    }
    // etcd allows as many comparisons as operations; checking objects is a bonus that must fit.
    const checked = changes.length + mustExist.length <= MAX_OPERATIONS_PER_TRANSACTION ? mustExist : [];
    for (let attempt = 1; attempt <= MAX_SWAP_ATTEMPTS; attempt++) {
      // The histories to write, computed over what the comparisons below check is still there.
      const now = Date.now();
      const next = changes.map((change) => {
        const seen = observed.get(change.name);
        const base = seen ? seen.history : this.restoring.get(change.name);
        return nextHistory(change.name, base, change, this.names.keep, now);
      });
      const what =
        changes.length === 1 ? `publish name ${JSON.stringify(changes[0].name)}` : `publish ${changes.length} names`;
      const response = await this.connection.run(what, async (kv) => {
        let txn = kv.if(nameKey(changes[0].name), ...compareFor(observed.get(changes[0].name)!));
        for (const change of changes.slice(1))
          txn = txn.and(nameKey(change.name), ...compareFor(observed.get(change.name)!));
        for (const id of checked) txn = txn.and(objectKey(id), 'Create', '>', 0);
        return txn
          .then(
            ...records.map((operation) => toRequest(kv, operation)),
            ...changes.map((change, i) =>
              kv.put(nameKey(change.name)).value(encodeNameHistory(next[i])).lease(change.lease),
            ),
          )
          .else(...changes.map((change) => kv.get(nameKey(change.name))), ...checked.map((id) => kv.get(objectKey(id))))
          .commit();
      });
      if (response.succeeded) {
        const revision = BigInt(response.header.revision);
        const versions: Record<string, number> = {};
        changes.forEach((change, i) => {
          this.restoring.delete(change.name);
          versions[change.name] = next[i].versions[0].version;
          const entry = { value: encodeNameHistory(next[i]), lease: change.lease };
          this.mirror.applyLocal(nameKey(change.name), entry, revision);
        });
        return { revision, versions };
      }
      const reads = response.responses.map((op) => op.response_range?.kvs[0] as IKeyValue | undefined);
      changes.forEach((change, i) => {
        const kv = reads[i];
        observed.set(change.name, kv ? { history: decodeNameHistory(kv.value), modRevision: kv.mod_revision } : null);
      });
      checked.forEach((id, i) => {
        if (!reads[changes.length + i]) throw notFound(id);
      });
    }
    throw new TrellisError(
      'Conflict',
      `names ${changes.map((c) => JSON.stringify(c.name)).join(', ')} kept changing under ${MAX_SWAP_ATTEMPTS} attempts to publish them; try again`,
    );
  }

  /**
   * Drops one version of a name with a compare-and-swap on its key: the previous becomes latest
   * (the key moves to `leaseOf` its object), and the last one deletes the key.
   * Errors: NameNotFound, Conflict (kept changing), Unavailable.
   */
  async dropVersion(name: string, version: number, leaseOf: (id: string, current: string) => string): Promise<void> {
    const key = nameKey(name);
    let entry: { value: Buffer; lease: string; modRevision: string } | undefined;
    const cached = this.mirror.get(key);
    if (cached) entry = { value: cached.value, lease: cached.lease, modRevision: String(cached.modRevision) };
    for (let attempt = 1; attempt <= MAX_SWAP_ATTEMPTS; attempt++) {
      const next = withoutVersion(name, entry && decodeNameHistory(entry.value), version);
      const seen = entry!;
      const lease = next ? leaseOf(next.versions[0].id, seen.lease) : seen.lease;
      const response = await this.connection.run(`drop version ${version} of name ${JSON.stringify(name)}`, (kv) =>
        kv
          .if(key, 'Mod', '==', seen.modRevision)
          .then(next ? kv.put(key).value(encodeNameHistory(next)).lease(lease) : kv.delete().key(key))
          .else(kv.get(key))
          .commit(),
      );
      if (response.succeeded) {
        if (!next) this.owned.delete(name);
        const written = next && { value: encodeNameHistory(next), lease };
        this.mirror.applyLocal(key, written, BigInt(response.header.revision));
        return;
      }
      const kv = response.responses[0]?.response_range?.kvs[0] as IKeyValue | undefined;
      entry = kv && { value: kv.value, lease: String(kv.lease), modRevision: kv.mod_revision };
    }
    throw new TrellisError(
      'Conflict',
      `name ${JSON.stringify(name)} kept changing under ${MAX_SWAP_ATTEMPTS} attempts to drop version ${version}; try again`,
    );
  }

  /** Deletes a name everywhere; whether it existed. Errors: Unavailable. */
  async drop(name: string): Promise<boolean> {
    const key = nameKey(name);
    const owned = this.owned.get(name);
    // Forgotten first, so that the delete coming back through the watch is not taken for a loss.
    this.owned.delete(name);
    let response;
    try {
      response = await this.connection.run(`drop name ${JSON.stringify(name)}`, (kv) => kv.delete().key(key).exec());
    } catch (error) {
      if (owned !== undefined && !this.owned.has(name)) this.owned.set(name, owned);
      throw error;
    }
    this.mirror.applyLocal(key, undefined, BigInt(response.header.revision));
    return Number(response.deleted) > 0;
  }

  /** Shows deletions this daemon committed (deleting named objects with force) at once. */
  dropped(names: readonly string[], revision: bigint): void {
    for (const name of names) {
      this.owned.delete(name);
      this.mirror.applyLocal(nameKey(name), undefined, revision);
    }
  }

  private unindex(name: string): void {
    const id = this.targets.get(name);
    if (id === undefined) return;
    this.targets.delete(name);
    const set = this.byId.get(id);
    set?.delete(name);
    if (set?.size === 0) this.byId.delete(id);
  }
}

function compareFor(seen: Observed): [column: 'Create' | 'Mod', cmp: '==', value: string | number] {
  return seen === null ? ['Create', '==', 0] : ['Mod', '==', seen.modRevision];
}

function toRequest(kv: Namespace, operation: TransactionOperation) {
  if (operation.kind === 'delete') return kv.delete().key(operation.key);
  const put = kv.put(operation.key).value(operation.value);
  return operation.leaseId === undefined ? put : put.lease(operation.leaseId);
}
