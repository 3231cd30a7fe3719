// A keyed async mutex: operations on one key run one after another, different keys in parallel.
// Used for read-modify-write of xattrs (xattrop) and for healing missing gfids.

export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      // Drop the entry when nobody queued behind us, so the map stays bounded by in-flight keys.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** fn under every key at once, taken in sorted order (two callers never wait on each other). */
  runAll<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const step = (k: number): Promise<T> => (k === sorted.length ? fn() : this.run(sorted[k], () => step(k + 1)));
    return step(0);
  }
}
