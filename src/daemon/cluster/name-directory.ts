/**
 * Names, cluster-wide: one namespace in etcd under `names/`. A daemon holds in its NameTable
 * (which answers getName, versions and getName's waits as before) only the names it uses, each
 * kept current by a watch on its key (NameWatches): the names that point to its objects
 * (tracked: it learns them from its `pins/<instance>/` keys, which every write pointing a name
 * at an object puts) and a bounded cache of names it read. A request reads its names first
 * (`load`); listNames reads `names/` in pages.
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
import { EventEmitter } from 'node:events';
import type { IKeyValue, Namespace } from 'etcd3';
import { TrellisError } from '../../errors';
import { instanceOf } from '../../protocol/ids';
import type { TransactionOperation } from '../metadata/batched-transaction';
import { commitInBatches, MAX_OPERATIONS_PER_TRANSACTION } from '../metadata/batched-transaction';
import type { EtcdConnection } from '../metadata/etcd-connection';
import type { NameTable } from '../names';
import type { MirrorEntry, PrefixMirror } from '../metadata/prefix-mirror';
import { readPaged, prefixRange } from '../metadata/paged-range';
import { globToRegExp } from '../glob';
import { nextHistory, withoutObject, withoutVersion, type NameHistory } from '../name-history';
import { NameWatches, type WatchedName } from './name-watches';
import {
  decodeNameHistory,
  encodeNameHistory,
  instancePinsPrefix,
  nameKey,
  nameOfKey,
  nameOfPinKey,
  NAMES_PREFIX,
  objectKey,
  pinKey,
} from './records';

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
type Observed = { history: NameHistory | undefined; modRevision: string; lease: string } | null;

/** The lease a name's key goes on when `id` becomes its latest (`current`: the lease it is on). */
export type LeaseOf = (id: string, current: string) => string;

export interface NameDirectoryEvents {
  /** A name that published one of this daemon's objects went (`previous`: as it was). */
  delete: [key: string, previous: MirrorEntry];
}

export class NameDirectory extends EventEmitter<NameDirectoryEvents> {
  /** Names that publish this daemon's objects, and the object each publishes. */
  private readonly owned = new Map<string, string>();
  /** Held names by the objects their kept versions point to, and the other way round. */
  private readonly byId = new Map<string, Set<string>>();
  private readonly targets = new Map<string, string[]>();
  /**
   * Histories of this daemon's names that are not in etcd right now, to go on from when they are
   * published again: brought back by a restart on a data dir, or gone with a lost lease.
   */
  private readonly restoring = new Map<string, NameHistory>();
  private readonly watches: NameWatches;

  /** `pins` mirrors this daemon's `pins/<instance>/` keys. */
  constructor(
    private readonly connection: EtcdConnection,
    readonly pins: PrefixMirror,
    private readonly names: NameTable,
    private readonly instanceId: number,
    cacheCapacity: number,
  ) {
    super();
    this.watches = new NameWatches(
      connection,
      cacheCapacity,
      (name, before, after) => this.changed(name, before, after),
      (name) => !this.names.waitedOn(name),
    );
    this.pins.on('put', (key) => {
      const name = nameOfPinKey(key);
      // A failed read is retried by the watches' reload; the pin stays.
      if (name !== undefined) this.watches.track(name).catch(() => undefined);
    });
  }

  /** Names held: tracked (pointing to this daemon's objects) and cached. */
  get counts(): { tracked: number; cached: number } {
    return { tracked: this.watches.trackedCount, cached: this.watches.cachedCount };
  }

  /** Reads and watches the names not held yet (undefined: all are). Errors: Unavailable. */
  load(names: readonly string[]): Promise<void> | undefined {
    return this.watches.load(names);
  }

  /** Whether this daemon holds `name` as published. */
  has(name: string): boolean {
    return this.watches.get(name)?.history !== undefined;
  }

  /** Every published name matching the glob, read from etcd in pages, sorted. Errors: Unavailable. */
  async list(pattern?: string): Promise<string[]> {
    const matcher = pattern ? globToRegExp(pattern) : undefined;
    const found: string[] = [];
    await readPaged(this.connection, 'list names', prefixRange(NAMES_PREFIX), (page) => {
      for (const kv of page) {
        const name = nameOfKey(kv.key.toString());
        if (name !== undefined && (!matcher || matcher.test(name))) found.push(name);
      }
    });
    return found.sort();
  }

  /**
   * Forgets the cached names and reads the tracked ones again (registered again after a lost
   * lease); resolves once they are read.
   */
  resync(): Promise<void> {
    return this.watches.resync();
  }

  stop(): void {
    this.watches.stop();
  }

  /**
   * Puts this daemon's pins of the names it tracks back (they went with a lost lease, as the
   * names on it did), on `lease`. Errors: Unavailable.
   */
  async repin(lease: string): Promise<void> {
    const operations = this.watches
      .names()
      .filter((name) => this.watches.isTracked(name))
      .map((name): TransactionOperation => ({
        kind: 'put',
        key: pinKey(this.instanceId, name),
        value: '',
        leaseId: lease,
      }));
    if (operations.length > 0) await commitInBatches(this.connection, operations);
  }

  /**
   * Holds every name this daemon's pins in etcd name (read there now: linearizable), not only
   * those its watch on them has delivered so far: a name put through another daemon is then
   * known here once that put has returned. Errors: Unavailable.
   */
  async catchUpPins(): Promise<void> {
    const prefix = instancePinsPrefix(this.instanceId);
    const missing: string[] = [];
    await readPaged(this.connection, `list pins under ${prefix}`, prefixRange(prefix), (page) => {
      for (const kv of page) {
        const name = nameOfPinKey(kv.key.toString());
        if (name !== undefined && !this.watches.isTracked(name)) missing.push(name);
      }
    });
    await Promise.all(missing.map((name) => this.watches.track(name)));
  }

  /**
   * The names that point to objects of `instances` (their pins, each checked against the name
   * itself: a pin may be stale), read from etcd, by object id. For deleting other instances'
   * objects, whose names this daemon need not hold. Errors: Unavailable.
   */
  async readPinning(instances: Iterable<number>): Promise<Map<string, string[]>> {
    const candidates = new Set<string>();
    for (const instance of new Set(instances)) {
      if (instance === this.instanceId) {
        for (const key of this.pins.keys()) candidates.add(nameOfPinKey(key)!);
        continue;
      }
      const prefix = instancePinsPrefix(instance);
      await readPaged(this.connection, `list pins under ${prefix}`, prefixRange(prefix), (page) => {
        for (const kv of page) {
          const name = nameOfPinKey(kv.key.toString());
          if (name !== undefined) candidates.add(name);
        }
      });
    }
    const byId = new Map<string, string[]>();
    const names = [...candidates];
    const histories = await Promise.all(
      names.map(async (name) => {
        const held = this.watches.get(name);
        if (held) return held.history;
        const response = await this.connection.run(`read name ${JSON.stringify(name)}`, (kv) =>
          kv.get(nameKey(name)).exec(),
        );
        const kv = response.kvs[0] as IKeyValue | undefined;
        return kv && decodeNameHistory(kv.value);
      }),
    );
    names.forEach((name, i) => {
      for (const id of new Set(histories[i]?.versions.map((version) => version.id) ?? [])) {
        byId.set(id, [...(byId.get(id) ?? []), name]);
      }
    });
    return byId;
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
    this.restoring.delete(name);
    return id;
  }

  /** Takes back a forgetOwned whose etcd write failed; `history`: versions kept on disk, to publish. */
  restoreOwned(name: string, id: string, history?: NameHistory): void {
    this.owned.set(name, id);
    if (history) this.restoring.set(name, history);
  }

  /** The objects the kept versions of `name` point to, latest first, as this daemon holds it. */
  versionIds(name: string): readonly string[] {
    return this.targets.get(name) ?? [];
  }

  /** Held names with a kept version (the latest or an older one) that points to `id`. */
  namesOf(id: string): string[] {
    return [...(this.byId.get(id) ?? [])];
  }

  /** A held name changed (or came, or went): the NameTable, the indexes and tracking follow. */
  private changed(name: string, before: WatchedName | undefined, after: WatchedName | undefined): void {
    const history = after?.history;
    this.unindex(name);
    this.names.set(name, history);
    if (history) {
      this.restoring.delete(name);
      this.targets.set(
        name,
        history.versions.map((version) => version.id),
      );
      for (const version of history.versions)
        this.byId.set(version.id, (this.byId.get(version.id) ?? new Set()).add(name));
      const id = history.versions[0].id;
      if (instanceOf(id) === this.instanceId) this.owned.set(name, id);
      else this.owned.delete(name);
    } else if (before?.history && after) {
      // Deleted in etcd. `owned` keeps it: only an explicit drop removes it from there. Its
      // history too, so that putting it back after a lost lease goes on from its last version.
      const previous = before.history;
      if (this.owned.get(name) === previous.versions[0].id) this.restoring.set(name, previous);
      this.emit('delete', nameKey(name), {
        value: encodeNameHistory(previous),
        lease: before.lease,
        modRevision: BigInt(before.modRevision),
      });
    }
    if (!after) return;
    const mine = history?.versions.some((version) => instanceOf(version.id) === this.instanceId) ?? false;
    if (mine || !this.watches.isTracked(name)) return;
    this.watches.untrack(name);
    this.dropStalePin(name);
  }

  /** The name no longer points to this daemon's objects: its pin goes, unless put again meanwhile. */
  private dropStalePin(name: string): void {
    const key = pinKey(this.instanceId, name);
    const pin = this.pins.get(key);
    if (!pin) return;
    const revision = String(pin.modRevision);
    void this.connection
      .run(`drop the pin of name ${JSON.stringify(name)}`, (kv) =>
        kv.if(key, 'Mod', '==', revision).then(kv.delete().key(key)).commit(),
      )
      .then((response) => {
        if (response.succeeded) this.pins.applyLocal(key, undefined, BigInt(response.header.revision));
      })
      .catch(() => undefined);
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
    const byName = new Map(changes.map((change) => [change.name, change]));
    const what =
      changes.length === 1 ? `publish name ${JSON.stringify(changes[0].name)}` : `publish ${changes.length} names`;
    const now = Date.now();
    const { revision, written } = await this.swap(
      what,
      changes.map((change) => change.name),
      (name, seen) => {
        const change = byName.get(name)!;
        // A name this daemon owned whose key went with a lost lease goes on with its history.
        const base = seen ? seen.history : this.restoring.get(name);
        return { history: nextHistory(name, base, change, this.names.keep, now), lease: change.lease };
      },
      records,
      mustExist,
      notFound,
    );
    const versions: Record<string, number> = {};
    for (const [name, history] of written) versions[name] = history!.versions[0].version;
    return { revision, versions };
  }

  /**
   * Drops one version of a name with a compare-and-swap on its key: the previous becomes latest
   * (the key moves to `leaseOf` its object), and the last one deletes the key.
   * Errors: NameNotFound, Conflict (kept changing), Unavailable.
   */
  async dropVersion(name: string, version: number, leaseOf: LeaseOf): Promise<void> {
    await this.swap(`drop version ${version} of name ${JSON.stringify(name)}`, [name], (_, seen) => {
      const history = withoutVersion(name, seen?.history, version);
      return history && { history, lease: leaseOf(history.versions[0].id, seen!.lease) };
    });
  }

  /**
   * Takes the versions that point to `ids` (objects a forced delete takes away) out of every
   * name that has one (`namesOf`: by default the names held here), in compare-and-swaps: an
   * earlier version may become latest (the key moves to `leaseOf` its object), and a name left
   * with none is deleted. `records` go in the same
   * transaction when they fit, else after. Returns the revision of the last write.
   * Errors: Conflict (kept changing), Unavailable.
   */
  async dropObjects(
    ids: readonly string[],
    records: readonly TransactionOperation[],
    leaseOf: LeaseOf,
    namesOf: (id: string) => string[] = (id) => this.namesOf(id),
  ): Promise<bigint | undefined> {
    const doomed = new Set(ids);
    const names = [...new Set(ids.flatMap((id) => namesOf(id)))];
    let revision: bigint | undefined;
    for (let start = 0; start < names.length; start += MAX_NAMES_PER_CALL) {
      const chunk = names.slice(start, start + MAX_NAMES_PER_CALL);
      const last = start + MAX_NAMES_PER_CALL >= names.length;
      const inline = last && chunk.length + records.length <= MAX_OPERATIONS_PER_TRANSACTION ? records : [];
      const what = `drop the versions of ${chunk.map((name) => JSON.stringify(name)).join(', ')} on deleted objects`;
      revision = (
        await this.swap(
          what,
          chunk,
          (_, seen) => {
            if (!seen?.history) return undefined;
            const history = seen.history.versions.reduce<NameHistory | undefined>(
              (kept, entry) => (kept && doomed.has(entry.id) ? withoutObject(kept, entry.id) : kept),
              seen.history,
            );
            if (history === seen.history) return { history, lease: seen.lease };
            return history && { history, lease: leaseOf(history.versions[0].id, seen.lease) };
          },
          inline,
        )
      ).revision;
      if (inline.length > 0) return revision;
    }
    if (records.length === 0) return revision;
    return BigInt((await commitInBatches(this.connection, records)).revision);
  }

  /** Deletes a name everywhere; whether it existed. Errors: Unavailable. */
  async drop(name: string): Promise<boolean> {
    const key = nameKey(name);
    const owned = this.owned.get(name);
    // Forgotten first, so that the delete coming back through the watch is not taken for a loss.
    this.owned.delete(name);
    this.restoring.delete(name);
    let response;
    try {
      response = await this.connection.run(`drop name ${JSON.stringify(name)}`, (kv) => kv.delete().key(key).exec());
    } catch (error) {
      if (owned !== undefined && !this.owned.has(name)) this.owned.set(name, owned);
      throw error;
    }
    if (this.watches.get(name)) this.watches.applyLocal(name, undefined, '0', BigInt(response.header.revision), false);
    return Number(response.deleted) > 0;
  }

  /**
   * One compare-and-swap over the keys of `names` (and `records`, `mustExist` checked, as put
   * says), retried over what the failed comparison read back: `compute` gives each name's next
   * history and lease (undefined: delete the key) from what it holds now (null: absent), and
   * may throw. Shows the writes at once; returns them with the revision.
   */
  private async swap(
    what: string,
    names: readonly string[],
    compute: (name: string, seen: Observed) => { history: NameHistory; lease: string } | undefined,
    records: readonly TransactionOperation[] = [],
    mustExist: readonly string[] = [],
    notFound?: (id: string) => TrellisError,
  ): Promise<{ revision: bigint; written: Map<string, NameHistory | undefined> }> {
    const observed = new Map<string, Observed>();
    for (const name of names) {
      // A name not held is guessed absent: if it is not, the comparison fails and reads it back.
      const held = this.watches.get(name);
      const seen = held?.history && { history: held.history, modRevision: held.modRevision, lease: held.lease };
      observed.set(name, seen ?? null);
    }
    // etcd allows as many comparisons as operations; checking objects is a bonus that must fit.
    const checked = names.length + mustExist.length <= MAX_OPERATIONS_PER_TRANSACTION ? mustExist : [];
    for (let attempt = 1; attempt <= MAX_SWAP_ATTEMPTS; attempt++) {
      // The values to write, computed over what the comparisons below check is still there.
      const next = names.map((name) => compute(name, observed.get(name)!));
      // Each name pointed at an object pins it for the object's owner, on the same lease as the
      // name. A pin is only a hint (a stale one is harmless), so pins that do not fit in the
      // transaction go in one before it.
      const pins = names.flatMap((name, i): TransactionOperation[] => {
        const value = next[i];
        if (!value) return [];
        const key = pinKey(instanceOf(value.history.versions[0].id), name);
        return [{ kind: 'put', key, value: '', leaseId: value.lease }];
      });
      const inlinePins = records.length + names.length + pins.length <= MAX_OPERATIONS_PER_TRANSACTION ? pins : [];
      if (inlinePins.length < pins.length) await commitInBatches(this.connection, pins);
      const response = await this.connection.run(what, async (kv) => {
        let txn = kv.if(nameKey(names[0]), ...compareFor(observed.get(names[0])!));
        for (const name of names.slice(1)) txn = txn.and(nameKey(name), ...compareFor(observed.get(name)!));
        for (const id of checked) txn = txn.and(objectKey(id), 'Create', '>', 0);
        return txn
          .then(
            ...records.map((operation) => toRequest(kv, operation)),
            ...inlinePins.map((operation) => toRequest(kv, operation)),
            ...names.map((name, i) => {
              const value = next[i];
              if (!value) return kv.delete().key(nameKey(name));
              return kv.put(nameKey(name)).value(encodeNameHistory(value.history)).lease(value.lease);
            }),
          )
          .else(...names.map((name) => kv.get(nameKey(name))), ...checked.map((id) => kv.get(objectKey(id))))
          .commit();
      });
      if (response.succeeded) {
        const revision = BigInt(response.header.revision);
        const written = new Map<string, NameHistory | undefined>();
        names.forEach((name, i) => {
          const value = next[i];
          this.restoring.delete(name);
          // Forgotten before the delete shows, so that it is not taken for a loss.
          if (!value) this.owned.delete(name);
          const mine = value?.history.versions.some((version) => instanceOf(version.id) === this.instanceId);
          // Held first, so that the pin showing up finds it tracked and reads nothing.
          this.watches.applyLocal(name, value?.history, value?.lease ?? '0', revision, mine ?? false);
          if (value && instanceOf(value.history.versions[0].id) === this.instanceId)
            this.pins.applyLocal(
              pinKey(this.instanceId, name),
              { value: Buffer.alloc(0), lease: value.lease },
              revision,
            );
          written.set(name, value?.history);
        });
        return { revision, written };
      }
      const reads = response.responses.map((op) => op.response_range?.kvs[0] as IKeyValue | undefined);
      names.forEach((name, i) => {
        const kv = reads[i];
        const seen = kv && {
          history: decodeNameHistory(kv.value),
          modRevision: kv.mod_revision,
          lease: String(kv.lease),
        };
        observed.set(name, seen ?? null);
      });
      checked.forEach((id, i) => {
        if (!reads[names.length + i]) throw notFound!(id);
      });
    }
    throw new TrellisError(
      'Conflict',
      `${what}: the name kept changing under ${MAX_SWAP_ATTEMPTS} attempts; try again`,
    );
  }

  private unindex(name: string): void {
    for (const id of this.targets.get(name) ?? []) {
      const set = this.byId.get(id);
      set?.delete(name);
      if (set?.size === 0) this.byId.delete(id);
    }
    this.targets.delete(name);
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
