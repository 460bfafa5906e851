/**
 * Published names: name -> object id. A name pins its object: it cannot be deleted without
 * force while a name publishes it. Changing names never deletes objects (a sealed object stays
 * until it is deleted); moving or dropping a name only unpins. `putMany` is all or nothing.
 */
import { TrellisError } from '../errors';
import { isObjectId } from '../protocol/ids';
import { checkName } from '../protocol/names';
import { globToRegExp } from './glob';
import type { ObjectTable, StoredObject } from './object-table';

interface Waiter {
  readonly owner: number;
  wake(id: string): void;
  cancel(): void;
}

export class NameTable {
  private readonly names = new Map<string, string>();
  private readonly waiters = new Map<string, Set<Waiter>>();

  constructor(private readonly table: ObjectTable) {}

  /** Drops the names of an object that a forced delete took away. */
  forget(object: StoredObject): void {
    for (const name of object.names) this.names.delete(name);
    object.names.clear();
  }

  get size(): number {
    return this.names.size;
  }

  /** Errors: NameExists, InvalidArgument. */
  refuseTaken(name: string): void {
    const current = this.names.get(checkName(name));
    if (current !== undefined) {
      throw new TrellisError('NameExists', `name ${JSON.stringify(name)} is taken by ${current}; pass override to move it`);
    }
  }

  /** Errors: InvalidArgument, ObjectNotFound, NotSealed, NameExists. */
  put(name: string, id: string, override: boolean): void {
    this.putMany({ [name]: id }, override);
  }

  /** All or none. Errors: InvalidArgument, ObjectNotFound, NotSealed, NameExists. */
  putMany(entries: Record<string, string>, override: boolean): void {
    const planned = Object.entries(entries).map(([name, id]) => {
      checkName(name);
      const object = this.table.sealedObject(id);
      const current = this.names.get(name);
      if (current !== id && !override) this.refuseTaken(name);
      return { name, object, current };
    });
    for (const { name, object, current } of planned) {
      if (current !== undefined) this.table.sealedObjectOrUndefined(current)?.names.delete(name);
      this.names.set(name, object.id);
      object.names.add(name);
      this.wake(name, object.id);
    }
  }

  /** The id a name or an id refers to. Errors: NameNotFound, InvalidArgument. */
  resolve(ref: string): string {
    if (isObjectId(ref)) return ref;
    const id = this.names.get(checkName(ref));
    if (id === undefined) throw new TrellisError('NameNotFound', `name ${JSON.stringify(ref)} is not published`);
    return id;
  }

  /** Errors: NameNotFound (naming how long it waited), InvalidArgument. */
  get(name: string, wait: { owner: number; timeoutMs?: number } | undefined): string | Promise<string> {
    const id = this.names.get(checkName(name));
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
              reject(new TrellisError('NameNotFound', `name ${JSON.stringify(name)} was not published within ${wait.timeoutMs} ms`));
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
    const id = this.names.get(checkName(name));
    if (id === undefined) return false;
    this.names.delete(name);
    this.table.sealedObjectOrUndefined(id)?.names.delete(name);
    return true;
  }

  /**
   * Cluster: takes a name as etcd has it (undefined: gone), whatever instance holds its object.
   * Local objects it publishes are pinned as by `put`; waiters for it wake up.
   */
  mirror(name: string, id: string | undefined): void {
    const current = this.names.get(name);
    if (current === id) return;
    if (current !== undefined) this.table.sealedObjectOrUndefined(current)?.names.delete(name);
    if (id === undefined) {
      this.names.delete(name);
      return;
    }
    this.names.set(name, id);
    this.table.sealedObjectOrUndefined(id)?.names.add(name);
    this.wake(name, id);
  }

  /** Sorted; `pattern` is a glob. */
  list(pattern?: string): string[] {
    const matcher = pattern ? globToRegExp(pattern) : undefined;
    return [...this.names.keys()].filter((name) => !matcher || matcher.test(name)).sort();
  }

  /** Stops the waits of a client that went away. */
  cancelWaits(owner: number): void {
    for (const waiting of [...this.waiters.values()]) {
      for (const waiter of [...waiting]) if (waiter.owner === owner) waiter.cancel();
    }
  }

  private wake(name: string, id: string): void {
    for (const waiter of [...(this.waiters.get(name) ?? [])]) waiter.wake(id);
  }
}
