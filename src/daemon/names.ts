/**
 * Published names: name -> its versions (name-history.ts), the latest being what the name
 * points to. A name pins its object, and each kept version its own: it cannot be deleted
 * without force while one points to it. Changing names never deletes objects (a sealed object
 * stays until it is deleted); moving or dropping a name only unpins. `putMany` is all or nothing.
 */
import { TrellisError } from '../errors';
import { isObjectId } from '../protocol/ids';
import { checkName } from '../protocol/names';
import { globToRegExp } from './glob';
import {
  DEFAULT_KEEP_VERSIONS,
  idAtVersion,
  nextHistory,
  withoutObject,
  withoutVersion,
  type NameHistory,
  type NameVersion,
} from './name-history';
import type { ObjectTable, StoredObject } from './object-table';

interface Waiter {
  readonly owner: number;
  wake(id: string): void;
  cancel(): void;
}

export class NameTable {
  private readonly histories = new Map<string, NameHistory>();
  private readonly waiters = new Map<string, Set<Waiter>>();

  /** `keep`: versions kept per name (--keep-versions). */
  constructor(
    private readonly table: ObjectTable,
    readonly keep = DEFAULT_KEEP_VERSIONS,
  ) {}

  /** Drops the versions that point to an object a forced delete took away; an earlier one may become latest. */
  forget(object: StoredObject): void {
    const kept = [...object.keptVersions].map((entry) => entry.slice(0, entry.lastIndexOf('@')));
    const names = new Set([...object.names, ...kept]);
    for (const name of names) {
      const history = this.histories.get(name);
      if (history) this.set(name, withoutObject(history, object.id));
    }
    object.names.clear();
    object.keptVersions.clear();
  }

  get size(): number {
    return this.histories.size;
  }

  /** Errors: NameExists, InvalidArgument. */
  refuseTaken(name: string): void {
    const current = this.histories.get(checkName(name))?.versions[0].id;
    if (current !== undefined) {
      throw new TrellisError(
        'NameExists',
        `name ${JSON.stringify(name)} is taken by ${current}; pass override to move it`,
      );
    }
  }

  /** Returns the name's version. Errors: InvalidArgument, ObjectNotFound, NotSealed, NameExists, Conflict. */
  put(name: string, id: string, override: boolean, expectVersion?: number): number {
    const expect = expectVersion === undefined ? undefined : { [name]: expectVersion };
    return this.putMany({ [name]: id }, override, expect)[name];
  }

  /**
   * All or none; returns each name's version. `expect` gives names the version they must be at.
   * Errors: InvalidArgument, ObjectNotFound, NotSealed, NameExists, Conflict.
   */
  putMany(entries: Record<string, string>, override: boolean, expect?: Record<string, number>): Record<string, number> {
    const now = Date.now();
    const planned = Object.entries(entries).map(([name, id]) => {
      checkName(name);
      this.table.sealedObject(id);
      const write = { id, override, expectVersion: expect?.[name] };
      return [name, nextHistory(name, this.histories.get(name), write, this.keep, now)] as const;
    });
    const versions: Record<string, number> = {};
    for (const [name, history] of planned) {
      this.set(name, history);
      versions[name] = history.versions[0].version;
    }
    return versions;
  }

  /** A name's history as this daemon knows it. */
  history(name: string): NameHistory | undefined {
    return this.histories.get(name);
  }

  /** The name's versions, newest first. Errors: NameNotFound, InvalidArgument. */
  versions(name: string): NameVersion[] {
    const history = this.histories.get(checkName(name));
    if (!history) throw new TrellisError('NameNotFound', `name ${JSON.stringify(name)} is not published`);
    return history.versions.map((entry) => ({ ...entry }));
  }

  /** The id one kept version of a name points to. Errors: NameNotFound, InvalidArgument. */
  resolveVersion(name: string, version: number): string {
    return idAtVersion(name, this.histories.get(checkName(name)), version);
  }

  /** Drops one version; the previous becomes latest, and the last one drops the name. Errors: NameNotFound. */
  dropVersion(name: string, version: number): void {
    this.set(name, withoutVersion(name, this.histories.get(checkName(name)), version));
  }

  /** The id a name or an id refers to. Errors: NameNotFound, InvalidArgument. */
  resolve(ref: string): string {
    if (isObjectId(ref)) return ref;
    const id = this.histories.get(checkName(ref))?.versions[0].id;
    if (id === undefined) throw new TrellisError('NameNotFound', `name ${JSON.stringify(ref)} is not published`);
    return id;
  }

  /** Errors: NameNotFound (naming how long it waited), InvalidArgument. */
  get(name: string, wait: { owner: number; timeoutMs?: number } | undefined): string | Promise<string> {
    const id = this.histories.get(checkName(name))?.versions[0].id;
    if (id !== undefined) return id;
    if (!wait) throw new TrellisError('NameNotFound', `name ${JSON.stringify(name)} is not published`);
    return new Promise<string>((resolve, reject) => {
      const waiting = this.waiters.get(name) ?? new Set<Waiter>();
      this.waiters.set(name, waiting);
      const timer =
        wait.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              waiter.cancel();
              reject(
                new TrellisError(
                  'NameNotFound',
                  `name ${JSON.stringify(name)} was not published within ${wait.timeoutMs} ms`,
                ),
              );
            }, wait.timeoutMs);
      const waiter: Waiter = {
        owner: wait.owner,
        wake: (found) => {
          waiter.cancel();
          resolve(found);
        },
        cancel: () => {
          clearTimeout(timer);
          waiting.delete(waiter);
          if (waiting.size === 0) this.waiters.delete(name);
        },
      };
      waiting.add(waiter);
    });
  }

  /** Returns whether the name existed; a missing name is not an error. */
  drop(name: string): boolean {
    if (!this.histories.has(checkName(name))) return false;
    this.set(name, undefined);
    return true;
  }

  /**
   * Sets a name's history (undefined: the name is gone): a cluster takes it as etcd has it,
   * whatever instance holds its objects. Local objects its versions point to are pinned (the
   * latest by `names`, older kept ones by `keptVersions`); waiters wake when the latest changes.
   */
  set(name: string, history: NameHistory | undefined): void {
    const before = this.histories.get(name);
    if (before === history) return;
    if (before) this.pin(name, before, false);
    if (history === undefined) this.histories.delete(name);
    else {
      this.histories.set(name, history);
      this.pin(name, history, true);
      if (before?.versions[0].id !== history.versions[0].id) this.wake(name, history.versions[0].id);
    }
  }

  /** Sorted; `pattern` is a glob. */
  list(pattern?: string): string[] {
    const matcher = pattern ? globToRegExp(pattern) : undefined;
    return [...this.histories.keys()].filter((name) => !matcher || matcher.test(name)).sort();
  }

  /** Whether a getName waits for `name` now. */
  waitedOn(name: string): boolean {
    return this.waiters.has(name);
  }

  /** Stops the waits of a client that went away. */
  cancelWaits(owner: number): void {
    for (const waiting of [...this.waiters.values()]) {
      for (const waiter of [...waiting]) if (waiter.owner === owner) waiter.cancel();
    }
  }

  private pin(name: string, history: NameHistory, on: boolean): void {
    history.versions.forEach((entry, i) => {
      const object = this.table.sealedObjectOrUndefined(entry.id);
      if (!object) return;
      const set = i === 0 ? object.names : object.keptVersions;
      const key = i === 0 ? name : `${name}@${entry.version}`;
      if (on) set.add(key);
      else set.delete(key);
    });
  }

  private wake(name: string, id: string): void {
    for (const waiter of [...(this.waiters.get(name) ?? [])]) waiter.wake(id);
  }
}
