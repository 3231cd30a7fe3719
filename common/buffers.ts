// Buffers handed down the stack for good: a layer that would keep a copy of data it was given
// (write-behind) may keep a donated buffer itself, since its giver never touches it again.
// The kernel bridge donates WRITE payloads (their request buffer is never read into again).
const donated = new WeakSet<Buffer>();

/** Marks buf as never modified or reused by its giver from now on. */
export function donate(buf: Buffer): Buffer {
  donated.add(buf);
  return buf;
}

/** buf itself when it was donated, else a copy of it. */
export function ownCopy(buf: Buffer): Buffer {
  return donated.has(buf) ? buf : Buffer.from(buf);
}

/** Large message buffers kept for reuse. Every fresh buffer of a MiB is external memory to V8, and
 *  each 64 MiB of it starts a full mark of the heap: a 256 MiB write in 1 MiB blocks cost the mount
 *  dozens of major GCs, which were half its CPU. A buffer comes back (give) only once nothing can
 *  read it again; one never given back is simply collected. */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];
  private readonly lent = new WeakSet<ArrayBuffer>();
  private lastTake = 0;
  private trim?: NodeJS.Timeout;

  /** Buffers of `capacity` bytes, at most `keep` of them idle, dropped once none was taken for
   *  idleMs (a node with many bricks should not hold each one's pool after a burst). */
  constructor(readonly capacity: number, private readonly keep: number, private readonly idleMs = 30_000) {}

  /** size bytes, uninitialised: pooled up to capacity, a fresh buffer beyond it. */
  take(size: number): Buffer<ArrayBuffer> {
    if (size > this.capacity) return Buffer.allocUnsafeSlow(size);
    this.lastTake = performance.now();
    const ab = this.free.pop() ?? new ArrayBuffer(this.capacity);
    this.lent.add(ab);
    return Buffer.from(ab, 0, size);
  }

  /** Returns a buffer take() gave out (or a slice of one), once, by whoever owns it now; any other
   *  buffer is ignored. */
  give(buf: Buffer): void {
    const ab = buf.buffer as ArrayBuffer;
    if (!this.lent.delete(ab)) return;
    if (this.free.length < this.keep) this.free.push(ab);
    this.trim ??= setTimeout(() => this.trimIdle(), this.idleMs).unref();
  }

  /** Idle buffers held now (for tests and profiles). */
  get idle(): number {
    return this.free.length;
  }

  private trimIdle(): void {
    this.trim = undefined;
    const quiet = performance.now() - this.lastTake;
    if (quiet >= this.idleMs) this.free.length = 0;
    else if (this.free.length) this.trim = setTimeout(() => this.trimIdle(), this.idleMs - quiet).unref();
  }
}

/** The process's pool for bulk data of up to 1 MiB and its framing: the FUSE bridge's request
 *  buffers that WRITE data keeps, the Session messages that carry such data and the brick's READ
 *  buffers (anything larger is allocated as it comes). */
export const bulkBuffers = new BufferPool(1024 * 1024 + 128 * 1024, 16);

/** Messages and payloads from this size on are worth a pooled buffer. */
export const BULK_MIN = 256 * 1024;
