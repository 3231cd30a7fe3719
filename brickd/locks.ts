// POSIX record locks kept in memory per gfid (GlusterFS's features/locks on the brick).
// Ranges are [start, end) with end = EOF_END for "to the end of the file". Locks of one owner
// never conflict with each other; a new lock of an owner replaces its overlapping ranges, and
// unlock splits them. setlkw waiters are retried, in arrival order, whenever locks are released.
// A fair table (replicate's inode locks) also makes a new lock wait behind an earlier waiter it
// conflicts with, so a writer (a heal) is not starved by readers (transactions) that keep coming.
import { FsError } from '../common/errors.js';
import type { Flock, LockCmd, LockType } from '../common/types.js';

export const EOF_END = 1n << 64n;

interface Range {
  type: 'read' | 'write';
  start: bigint;
  end: bigint;
  pid: number;
  owner: string;
}

interface Waiter {
  req: Range;
  resolve: () => void;
  reject: (err: Error) => void;
  fd: number;
}

interface FileLocks {
  held: Range[];
  waiting: Waiter[];
  fair: boolean;
}

function toRange(l: Flock): Range & { unlock: boolean } {
  const start = BigInt(l.start);
  const len = BigInt(l.len);
  if (start < 0n || len < 0n) throw new FsError('EINVAL', 'lock range must not be negative');
  const end = len === 0n ? EOF_END : start + len;
  const type: LockType = l.type;
  if (type !== 'read' && type !== 'write' && type !== 'unlock') throw new FsError('EINVAL', `unknown lock type '${String(type)}'`);
  return { type: type === 'unlock' ? 'read' : type, unlock: type === 'unlock', start, end, pid: l.pid, owner: l.owner };
}

function toFlock(r: Range): Flock {
  return { type: r.type, start: r.start, len: r.end === EOF_END ? 0n : r.end - r.start, pid: r.pid, owner: r.owner };
}

const overlaps = (a: { start: bigint; end: bigint }, b: { start: bigint; end: bigint }) => a.start < b.end && b.start < a.end;

function conflicts(held: Range, req: Range): boolean {
  return held.owner !== req.owner && overlaps(held, req) && (held.type === 'write' || req.type === 'write');
}

/** Removes the owner's coverage of [start, end), splitting ranges that stick out. */
function carve(held: Range[], owner: string, start: bigint, end: bigint): Range[] {
  const out: Range[] = [];
  for (const r of held) {
    if (r.owner !== owner || !overlaps(r, { start, end })) { out.push(r); continue; }
    if (r.start < start) out.push({ ...r, end: start });
    if (r.end > end) out.push({ ...r, start: end });
  }
  return out;
}

/** Adds a range of the owner and merges it with touching ranges of the same owner and type. */
function insert(held: Range[], req: Range): Range[] {
  let merged = { ...req };
  const out: Range[] = [];
  for (const r of held) {
    if (r.owner === req.owner && r.type === req.type && r.start <= merged.end && merged.start <= r.end) {
      merged = { ...merged, start: r.start < merged.start ? r.start : merged.start, end: r.end > merged.end ? r.end : merged.end };
    } else {
      out.push(r);
    }
  }
  out.push(merged);
  return out;
}

export class LockTable {
  private readonly files = new Map<string, FileLocks>();

  private file(gfid: string, fair: boolean): FileLocks {
    let f = this.files.get(gfid);
    if (!f) { f = { held: [], waiting: [], fair }; this.files.set(gfid, f); }
    return f;
  }

  /** Whether req must wait: a conflicting lock is held, or (fair) an earlier waiter conflicts
   *  with it (unless its owner holds that range already: taking it again changes nothing). */
  private blocked(f: FileLocks, req: Range, before = f.waiting.length): boolean {
    if (f.held.some((h) => conflicts(h, req))) return true;
    if (!f.fair || f.held.some((h) => h.owner === req.owner && h.start <= req.start && req.end <= h.end)) return false;
    return f.waiting.slice(0, before).some((w) => conflicts(w.req, req));
  }

  private gc(gfid: string): void {
    const f = this.files.get(gfid);
    if (f && f.held.length === 0 && f.waiting.length === 0) this.files.delete(gfid);
  }

  /** getlk, setlk or setlkw of a lock on the file gfid, set through fd (-1: none). */
  async lk(gfid: string, fd: number, cmd: LockCmd, lock: Flock, signal?: AbortSignal, fair = false): Promise<Flock> {
    const req = toRange(lock);
    const f = this.file(gfid, fair);
    try {
      if (cmd === 'getlk') {
        if (req.unlock) throw new FsError('EINVAL', 'getlk needs a read or write lock');
        const c = f.held.find((h) => conflicts(h, req));
        return c ? toFlock(c) : { ...lock, type: 'unlock' };
      }
      if (cmd !== 'setlk' && cmd !== 'setlkw') throw new FsError('EINVAL', `unknown lock command '${String(cmd)}'`);
      if (req.unlock) {
        f.held = carve(f.held, req.owner, req.start, req.end);
        this.wake(gfid);
        return lock;
      }
      if (!this.blocked(f, req)) {
        this.grant(f, req);
        this.wake(gfid);
        return lock;
      }
      if (cmd === 'setlk') throw new FsError('EAGAIN', `range ${req.start}+${lock.len} is locked by another owner`);
      await new Promise<void>((resolve, reject) => {
        const w: Waiter = { req, resolve, reject, fd };
        f.waiting.push(w);
        signal?.addEventListener('abort', () => {
          const i = f.waiting.indexOf(w);
          if (i >= 0) { f.waiting.splice(i, 1); reject(new FsError('EINTR', 'lock wait cancelled')); }
        }, { once: true });
      });
      return lock;
    } finally {
      this.gc(gfid);
    }
  }

  private grant(f: FileLocks, req: Range): void {
    const held = carve(f.held, req.owner, req.start, req.end);
    f.held = insert(held, req);
    // A downgrade (write -> read) may let waiters in.
  }

  /** Grants every waiter that no longer conflicts, in order. */
  private wake(gfid: string): void {
    const f = this.files.get(gfid);
    if (!f) return;
    for (const w of [...f.waiting]) {
      if (this.blocked(f, w.req, f.waiting.indexOf(w))) continue;
      f.waiting.splice(f.waiting.indexOf(w), 1);
      this.grant(f, w.req);
      w.resolve();
    }
    this.gc(gfid);
  }

  /** At release of fd: drop every lock of the owners that locked through it, and their waits. */
  release(gfid: string, fd: number, owners: Iterable<string>): void {
    const f = this.files.get(gfid);
    if (!f) return;
    const gone = new Set(owners);
    f.held = f.held.filter((h) => !gone.has(h.owner));
    for (const w of [...f.waiting]) {
      if (w.fd === fd) { f.waiting.splice(f.waiting.indexOf(w), 1); w.reject(new FsError('EBADF', 'fd released while waiting for a lock')); }
    }
    this.wake(gfid);
  }

  /** Drops every lock and wait of the owners in the fair tables (their client went away). */
  dropOwners(owners: ReadonlySet<string>): void {
    for (const [key, f] of [...this.files]) {
      if (!f.fair) continue;
      f.held = f.held.filter((h) => !owners.has(h.owner));
      for (const w of [...f.waiting]) {
        if (owners.has(w.req.owner)) { f.waiting.splice(f.waiting.indexOf(w), 1); w.reject(new FsError('EINTR', 'client gone while waiting for a lock')); }
      }
      this.wake(key);
    }
  }

  /** Fails every waiter (shutdown). */
  abortAll(): void {
    for (const f of this.files.values()) {
      for (const w of f.waiting.splice(0)) w.reject(new FsError('EINTR', 'brick shutting down'));
    }
    this.files.clear();
  }
}
