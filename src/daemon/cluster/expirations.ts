/**
 * `persist(id, { ttl })`: an object that expires. Its owner keeps one timer per object and
 * deletes it (deep, force: its names go with it) when the time comes; other daemons hide its
 * record from the moment `expiresAt` passes, so nobody sees it live longer than asked, even if
 * the owner is slow to delete it. Intake got this backwards once; test/cluster/objects.test.ts
 * checks both sides.
 */

/** Timers beyond this (about 24.8 days) fire at once in Node; longer TTLs re-arm in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** After a failed expiry (etcd unreachable), try again this much later. */
export const EXPIRY_RETRY_MS = 1_000;

export class Expirations {
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();

  /** `expire` deletes the object; a rejection (etcd down) makes it try again later. */
  constructor(public expire: (id: string) => void | Promise<void>) {}

  /** When the object expires, or undefined. */
  expiresAt(id: string): number | undefined {
    return this.timers.get(id)?.at;
  }

  /** Replaces any earlier expiry of `id`. */
  schedule(id: string, at: number): void {
    this.cancel(id);
    const timer = setTimeout(() => this.fire(id, at), Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS));
    timer.unref();
    this.timers.set(id, { at, timer });
  }

  cancel(id: string): void {
    const entry = this.timers.get(id);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.timers.delete(id);
  }

  clear(): void {
    for (const id of [...this.timers.keys()]) this.cancel(id);
  }

  private fire(id: string, at: number): void {
    if (this.timers.get(id)?.at !== at) return;
    if (Date.now() < at) {
      this.schedule(id, at);
      return;
    }
    this.timers.delete(id);
    Promise.resolve()
      .then(() => this.expire(id))
      .catch(() => {
        if (!this.timers.has(id)) this.schedule(id, Date.now() + EXPIRY_RETRY_MS);
      });
  }
}
