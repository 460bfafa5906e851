/**
 * Runs async tasks so that tasks sharing a key run one after another, in the order they were
 * queued, while tasks with no key in common run at the same time. The durable store keys its
 * operations by object id and name: a persist writes its blob files before its commit, so
 * without this a remove queued after it could commit first and the persist's commit would then
 * bring back a record whose file the remove had deleted.
 */
export class KeyedQueue {
  /** The last task queued for each key, until it settles. */
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `task` once every earlier task sharing one of `keys` has settled. */
  async run<T>(keys: Iterable<string>, task: () => Promise<T>): Promise<T> {
    const unique = [...new Set(keys)];
    const earlier = unique.map((key) => this.tails.get(key)).filter((tail) => tail !== undefined);
    let settle!: () => void;
    const done = new Promise<void>((resolve) => (settle = resolve));
    for (const key of unique) this.tails.set(key, done);
    try {
      await Promise.all(earlier);
      return await task();
    } finally {
      settle();
      for (const key of unique) if (this.tails.get(key) === done) this.tails.delete(key);
    }
  }

  /** Resolves once every task queued so far has settled. */
  async idle(): Promise<void> {
    await Promise.all(new Set(this.tails.values()));
  }
}
