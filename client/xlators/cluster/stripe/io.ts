// Data of a striped file: reads and writes split into one contiguous local range per child and sent
// to the children at once; truncation of every piece to its exact local length; and the open-file
// state (logical size, geometry) this client keeps while a file is open, with the recorded size
// written back to every piece shortly after a change and before flush, fsync and release return.
import { FsError, toFsError } from '../../../../common/errors.js';
import type { Xlator } from '../../../../common/fops.js';
import { ROOT_CTX, type Ctx, type Fd, type Iatt, type Loc } from '../../../../common/types.js';
import { extents, localLength, type Geometry } from './chunks.js';

const FALLOC_FL_KEEP_SIZE = 0x01;
const FALLOC_FL_PUNCH_HOLE = 0x02;
const FALLOC_FL_ZERO_RANGE = 0x10;
import { encodeNum, SIZE_XATTR } from './size.js';

/** Waits for every promise; throws the first failure in child order (a real errno over ENOTCONN). */
export async function all<T>(jobs: Promise<T>[]): Promise<T[]> {
  const res = await Promise.allSettled(jobs);
  const errs = res.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => toFsError(r.reason));
  if (errs.length) throw errs.find((e) => e.errno !== 'ENOTCONN') ?? errs[0];
  return res.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** A promise-chain lock: size-changing operations of one file run one at a time. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
}

const PERSIST_DELAY_MS = 200;

/** One open striped file in this client, shared by all its fds (released with the last one). */
export class OpenFile {
  refs = 0;
  readonly lock = new Mutex();
  private dirty = false;
  private timer?: NodeJS.Timeout;
  private persisting?: Promise<void>;
  private failure?: FsError;

  constructor(
    readonly gfid: string,
    readonly geometry: Geometry,
    public size: number,
    public loc: Loc,
    private readonly children: readonly Xlator[],
  ) {}

  /** Records a new size, to be written to the pieces soon. */
  grew(size: number): void {
    this.size = size;
    this.dirty = true;
    this.timer ??= setTimeout(() => { this.timer = undefined; void this.drain(); }, PERSIST_DELAY_MS);
  }

  private drain(): Promise<void> {
    this.persisting ??= (async () => {
      try {
        while (this.dirty) {
          this.dirty = false;
          await recordSize(this.children, this.loc, this.size);
        }
      } catch (e) {
        this.failure = toFsError(e);
      } finally {
        this.persisting = undefined;
      }
    })();
    return this.persisting;
  }

  /** Writes a pending size now; fails if writing it failed. */
  async settle(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.persisting;
    if (this.dirty) await this.drain();
    const f = this.failure;
    this.failure = undefined;
    if (f) throw new FsError(f.errno, `recording the size of ${this.loc.path}: ${f.message}`, { cause: f });
  }

  /** The size is known on the pieces already (a truncate wrote it). */
  recorded(size: number): void {
    this.size = size;
    this.dirty = false;
  }
}

export async function recordSize(children: readonly Xlator[], loc: Loc, size: number): Promise<void> {
  await all(children.map((c) => c.setxattr(ROOT_CTX, loc, SIZE_XATTR, encodeNum(size), 0)));
}

/** Reads [offset, offset + size) clamped to the logical size; holes read as zeros, a child that
 *  fails fails the read (never short or zero-filled data in place of a missing piece). */
export async function readStriped(ctx: Ctx, children: readonly Xlator[], fds: Fd[], f: OpenFile, offset: number, size: number): Promise<Buffer> {
  const len = Math.max(0, Math.min(size, f.size - offset));
  if (len === 0) return Buffer.alloc(0);
  const out = Buffer.alloc(len);
  const ex = extents(f.geometry, offset, len);
  const got = await all(ex.map((e) => children[e.child].read(ctx, fds[e.child], e.local, e.length)));
  ex.forEach((e, n) => {
    const data = got[n];
    let at = 0;
    for (const [off, plen] of e.parts) {
      if (at < data.length) data.copy(out, off, at, Math.min(data.length, at + plen));
      at += plen;
    }
  });
  return out;
}

/** Writes data at offset (at the logical end for 'append'); a write past the end extends the
 *  file, and a write past a hole grows the pieces it does not touch to their exact lengths.
 *  Writes that change the size run one at a time. Returns data.length or throws. */
export async function writeStriped(ctx: Ctx, children: readonly Xlator[], fds: Fd[], f: OpenFile, at: number | 'append', data: Buffer): Promise<number> {
  if (data.length === 0) return 0;
  const g = f.geometry;
  const once = async (): Promise<number> => {
    const old = f.size;
    const offset = at === 'append' ? old : at;
    const end = offset + data.length;
    const ex = extents(g, offset, data.length);
    const jobs: Promise<unknown>[] = ex.map(async (e) => {
      const buf = e.parts.length === 1 ? data.subarray(e.parts[0][0], e.parts[0][0] + e.parts[0][1])
        : Buffer.concat(e.parts.map(([off, n]) => data.subarray(off, off + n)), e.length);
      const n = await children[e.child].write(ctx, fds[e.child], e.local, buf);
      if (n !== e.length) throw new FsError('EIO', `short write on ${children[e.child].name}: ${n} of ${e.length}`);
    });
    if (offset > old) {
      for (let k = 0; k < g.count; k++) {
        const want = localLength(g, end, k);
        const e = ex.find((x) => x.child === k);
        const have = Math.max(localLength(g, old, k), e ? e.local + e.length : 0);
        if (want > have) jobs.push(children[k].ftruncate(ctx, fds[k], want));
      }
    }
    await all(jobs);
    if (end > f.size) f.grew(end);
    return data.length;
  };
  return at === 'append' || at + data.length > f.size ? f.lock.run(once) : once();
}

/** Cuts or grows every piece to its exact length for `size`, then records the size on each. */
export async function resizeStriped(
  children: readonly Xlator[], g: Geometry, loc: Loc, size: number,
  trunc: (k: number, length: number) => Promise<Iatt>,
): Promise<Iatt[]> {
  const iatts = await all(children.map((_, k) => trunc(k, localLength(g, size, k))));
  await recordSize(children, loc, size);
  return iatts;
}

/** fallocate(2) over the pieces: allocation, PUNCH_HOLE and ZERO_RANGE act on each child's part of
 *  the range; a mode without KEEP_SIZE then grows every piece to its exact length. Modes that move
 *  data (COLLAPSE_RANGE, INSERT_RANGE) cannot be done piecewise: EOPNOTSUPP. */
export async function fallocateStriped(ctx: Ctx, children: readonly Xlator[], fds: Fd[], f: OpenFile, mode: number, offset: number, len: number): Promise<void> {
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
    throw new FsError('EOPNOTSUPP', `fallocate mode ${mode} moves data, which a striped file cannot do piece by piece`);
  }
  if (len <= 0 || offset < 0) throw new FsError('EINVAL', `fallocate of ${len} bytes at ${offset}`);
  await f.lock.run(async () => {
    const ex = extents(f.geometry, offset, len);
    await all(ex.map((e) => children[e.child].fallocate(ctx, fds[e.child], mode | FALLOC_FL_KEEP_SIZE, e.local, e.length)));
    const end = offset + len;
    if (!(mode & FALLOC_FL_KEEP_SIZE) && end > f.size) {
      await resizeStriped(children, f.geometry, f.loc, end, (k, length) => children[k].ftruncate(ctx, fds[k], length));
      f.recorded(end);
    }
  });
}
