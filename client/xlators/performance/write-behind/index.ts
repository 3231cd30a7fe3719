// performance/write-behind: a write is answered once its data is copied here (or kept, when its
// giver donated the buffer: common/buffers.ts); small sequential writes of one file are aggregated
// into one child write of up to aggregate-size, sent in the background with up to window-size bytes
// per file outstanding: several child writes of one file are in flight at once (4 MiB lets four
// 1 MiB writes of a sequential writer overlap; GlusterFS's 1 MB suits its cheaper writes). Writes
// that do not continue each other (a random writer) leave together: up to BURST at once, or after
// flush-delay, or as soon as the last write in flight is answered (GlusterFS's trickling-writes),
// sharing the socket writes and wake-ups of both ends, which cost more than the writes themselves.
// (A small file's lone gather still waits for its close: sent earlier, it would cost replicate a
// second write to every child.) Pending data is written before
// anything that could observe it: a read overlapping it, fstat/stat/lookup of the file,
// truncate, locks, and the multi-entry operations (readdirp, rename, link). A background write
// that failed is reported by the next write, fsync or flush (close) of the fd that wrote it.
import { bulkBuffers, ownCopy } from '../../../../common/buffers.js';
import { FsError, toFsError } from '../../../../common/errors.js';
import { PassThrough, type Xlator } from '../../../../common/fops.js';
import { parseOptions, type OptionDef } from '../../../../common/options.js';
import type { Ctx, Dirent, Fd, Flock, Iatt, LockCmd, Loc, LookupReply, SetattrArgs } from '../../../../common/types.js';
import { WriteMark } from '../../../../common/write-mark.js';
import type { XlatorContext } from '../../registry.js';

export const OPTIONS: readonly OptionDef[] = [
  { key: 'enable', type: 'bool', default: true, description: 'aggregate and delay writes; off passes every write straight through' },
  { key: 'window-size', type: 'size', default: 4 * 1024 * 1024, min: 64 * 1024, max: 1024 ** 3, description: 'bytes of one file that may be written behind (copied here, not yet on the bricks)' },
  { key: 'aggregate-size', type: 'size', default: 128 * 1024, min: 4096, max: 16 * 1024 * 1024, description: 'contiguous writes are gathered into one child write of up to this size' },
  { key: 'flush-delay', type: 'time', default: 0.005, min: 0, max: 10, description: 'seconds a partly gathered write waits for the next contiguous one before it is sent' },
];

interface Options { enable: boolean; 'window-size': number; 'aggregate-size': number; 'flush-delay': number }

const O_DSYNC = 0o10000;
const O_SYNC = 0o4010000;

/** Contiguous data of one fd being gathered. Buffers are our own copies. */
interface Gather { fd: Fd; ctx: Ctx; off: number; bufs: Buffer[]; len: number }
interface Flight { off: number; end: number; len: number; done?: Promise<void>; mark: WriteMark }

/** Writes of one file that do not continue each other, sent together once this many wait. */
const BURST = 32;

/** Per gfid: what is gathered, what waits to be sent with it, and what is on its way to the child. */
class WbFile {
  gather?: Gather;
  /** Closed gathers, oldest first, sent before the open one. */
  queued: Gather[] = [];
  readonly flights = new Set<Flight>();
  bytes = 0;
  timer?: NodeJS.Timeout;
  waiters: (() => void)[] = [];
  readonly paths = new Set<string>();
  constructor(readonly gfid: string) {}
  get idle(): boolean { return !this.gather && this.queued.length === 0 && this.flights.size === 0; }
  overlaps(off: number, end: number): boolean {
    for (const g of this.gather ? [...this.queued, this.gather] : this.queued) if (off < g.off + g.len && g.off < end) return true;
    for (const f of this.flights) if (off < f.end && f.off < end) return true;
    return false;
  }
}

/** Per fd: the first error of a background write, not yet reported. */
interface FdState { error?: FsError }

export class WriteBehind extends PassThrough implements Xlator {
  readonly opts: Options;
  private readonly files = new Map<string, WbFile>();

  constructor(name: string, options: Record<string, unknown>, children: Xlator[], _xctx?: XlatorContext) {
    super(name, 'performance/write-behind', children);
    if (children.length !== 1) throw new FsError('EINVAL', `translator ${name}: write-behind takes exactly one child`);
    this.opts = parseOptions<Options>(OPTIONS, options, `translator ${name}`);
  }

  private get child(): Xlator { return this.children[0]; }

  /** Bytes written behind and not yet acknowledged by the child, over all files (for tests). */
  get pendingBytes(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.bytes;
    return n;
  }

  private state(fd: Fd): FdState {
    let s = fd.ctx.get(this) as FdState | undefined;
    if (!s) fd.ctx.set(this, (s = {}));
    return s;
  }

  private takeError(fd: Fd): void {
    const s = fd.ctx.get(this) as FdState | undefined;
    if (s?.error) {
      const e = s.error;
      s.error = undefined;
      throw e;
    }
  }

  private fileOf(fd: Fd): WbFile {
    let f = this.files.get(fd.gfid);
    if (!f) this.files.set(fd.gfid, (f = new WbFile(fd.gfid)));
    f.paths.add(fd.loc.path);
    return f;
  }

  private settle(f: WbFile): void {
    if (f.flights.size === 0 && f.queued.length) this.send(f); // trickle on
    const w = f.waiters;
    f.waiters = [];
    for (const r of w) r();
    if (f.idle && this.files.get(f.gfid) === f) this.files.delete(f.gfid);
  }

  /** Sends what is queued and gathered, in the order it was written. */
  private send(f: WbFile): void {
    clearTimeout(f.timer);
    f.timer = undefined;
    const all = f.gather ? [...f.queued, f.gather] : f.queued;
    f.queued = [];
    f.gather = undefined;
    for (const g of all) this.sendOne(f, g);
  }

  /** One child write; overlapping writes already on their way go first (order on the disk). */
  private sendOne(f: WbFile, g: Gather): void {
    const data = g.bufs.length === 1 ? g.bufs[0] : Buffer.concat(g.bufs, g.len);
    const flight: Flight = { off: g.off, end: g.off + g.len, len: g.len, mark: new WriteMark() };
    const before = [...f.flights].filter((o) => o.off < flight.end && flight.off < o.end).map((o) => o.done);
    f.flights.add(flight);
    flight.done = (async () => {
      if (before.length) await Promise.allSettled(before);
      try {
        const n = await this.child.write({ ...g.ctx, written: flight.mark }, g.fd, g.off, data);
        if (n < data.length) throw new FsError('ENOSPC', `${g.fd.loc.path}: short write behind (${n} of ${data.length} bytes)`);
      } catch (e) {
        const s = this.state(g.fd);
        s.error ??= toFsError(e);
      } finally {
        // Every layer below waits for all of its child writes, so nothing reads the data now: a
        // donated buffer from the bulk pool (a large FUSE WRITE's) goes back to it.
        for (const b of g.bufs) bulkBuffers.give(b);
        flight.mark.done();
        f.flights.delete(flight);
        f.bytes -= flight.len;
        this.settle(f);
      }
    })();
  }

  /** Writes out everything pending for the file and waits for it. */
  private async drain(f: WbFile | undefined): Promise<void> {
    while (f && !f.idle) {
      this.send(f);
      await Promise.allSettled([...f.flights].map((x) => x.done));
    }
  }

  private drainFd(fd: Fd): Promise<void> {
    return this.drain(this.files.get(fd.gfid));
  }

  /** The files with writes pending at loc (by gfid or by a path one was opened under). */
  private filesAt(loc: Loc): WbFile[] {
    if (this.files.size === 0) return [];
    return [...this.files.values()].filter((f) => (loc.gfid && f.gfid === loc.gfid) || f.paths.has(loc.path));
  }

  private async drainLoc(loc: Loc): Promise<void> {
    const hit = this.filesAt(loc);
    if (hit.length) await Promise.all(hit.map((f) => this.drain(f)));
  }

  private async drainAll(): Promise<void> {
    if (this.files.size === 0) return;
    await Promise.all([...this.files.values()].map((f) => this.drain(f)));
  }

  override async write(ctx: Ctx, fd: Fd, offset: number, data: Buffer): Promise<number> {
    if (!this.opts.enable || fd.flags & (O_SYNC | O_DSYNC)) {
      await this.drainFd(fd);
      return this.child.write(ctx, fd, offset, data);
    }
    this.takeError(fd);
    const f = this.fileOf(fd);
    const agg = this.opts['aggregate-size'];
    let g = f.gather;
    if (g && (g.fd !== fd || g.off + g.len !== offset || g.len + data.length > agg)) {
      const continued = g.fd === fd && g.off + g.len === offset; // a sequential writer's full gather
      f.gather = undefined;
      f.queued.push(g);
      if (continued || f.queued.length >= BURST) this.send(f);
      g = undefined;
    }
    if (!g) f.gather = g = { fd, ctx: { uid: ctx.uid, gid: ctx.gid, groups: ctx.groups, pid: ctx.pid }, off: offset, bufs: [], len: 0 };
    g.bufs.push(ownCopy(data)); // data stays the caller's unless donated: keep a copy
    g.len += data.length;
    f.bytes += data.length;
    if (g.len >= agg) this.send(f);
    else if (!f.timer) {
      f.timer = setTimeout(() => { f.timer = undefined; this.send(f); }, this.opts['flush-delay'] * 1000);
      f.timer.unref?.();
    }
    while (f.bytes > this.opts['window-size']) {
      if (f.gather || f.queued.length) this.send(f);
      await new Promise<void>((r) => f.waiters.push(r));
    }
    return data.length;
  }

  override async read(ctx: Ctx, fd: Fd, offset: number, size: number): Promise<Buffer> {
    const f = this.files.get(fd.gfid);
    if (f && f.overlaps(offset, offset + size)) await this.drain(f);
    return this.child.read(ctx, fd, offset, size);
  }

  override async flush(ctx: Ctx, fd: Fd): Promise<void> {
    await this.drainFd(fd);
    this.takeError(fd);
    return this.child.flush(ctx, fd);
  }

  override async fsync(ctx: Ctx, fd: Fd, datasync: boolean): Promise<void> {
    await this.drainFd(fd);
    this.takeError(fd);
    return this.child.fsync(ctx, fd, datasync);
  }

  override async release(ctx: Ctx, fd: Fd): Promise<void> {
    await this.drainFd(fd);
    fd.ctx.delete(this);
    return this.child.release(ctx, fd);
  }

  override async fstat(ctx: Ctx, fd: Fd): Promise<Iatt> { await this.drainFd(fd); return this.child.fstat(ctx, fd); }
  override async ftruncate(ctx: Ctx, fd: Fd, size: number): Promise<Iatt> { await this.drainFd(fd); return this.child.ftruncate(ctx, fd, size); }
  override async fallocate(ctx: Ctx, fd: Fd, mode: number, offset: number, len: number): Promise<void> { await this.drainFd(fd); return this.child.fallocate(ctx, fd, mode, offset, len); }
  override async lk(ctx: Ctx, fd: Fd, cmd: LockCmd, lock: Flock): Promise<Flock> { await this.drainFd(fd); return this.child.lk(ctx, fd, cmd, lock); }

  override async lookup(ctx: Ctx, loc: Loc, xattrs?: string[]): Promise<LookupReply> { await this.drainLoc(loc); return this.child.lookup(ctx, loc, xattrs); }
  override async stat(ctx: Ctx, loc: Loc): Promise<Iatt> { await this.drainLoc(loc); return this.child.stat(ctx, loc); }
  override async truncate(ctx: Ctx, loc: Loc, size: number): Promise<Iatt> { await this.drainLoc(loc); return this.child.truncate(ctx, loc, size); }

  /** What is pending leaves now, and the setattr right behind it: each brick applies it after the
   *  writes that reached it first (ctx.after), so it need not wait for their answers. It is
   *  answered once they are, as if it had waited. A size change waits (it reads the writes' end). */
  override async setattr(ctx: Ctx, loc: Loc, attrs: SetattrArgs): Promise<Iatt> {
    const hit = this.filesAt(loc);
    if (hit.length === 0) return this.child.setattr(ctx, loc, attrs);
    if (attrs.size !== undefined) {
      await this.drainLoc(loc);
      return this.child.setattr(ctx, loc, attrs);
    }
    for (const f of hit) this.send(f);
    const flights = hit.flatMap((f) => [...f.flights]);
    const [iatt] = await Promise.all([
      this.child.setattr({ ...ctx, after: flights.map((x) => x.mark) }, loc, attrs),
      Promise.allSettled(flights.map((x) => x.done)),
    ]);
    return iatt;
  }
  override async unlink(ctx: Ctx, loc: Loc): Promise<void> { await this.drainLoc(loc); return this.child.unlink(ctx, loc); }
  override async xattrop(ctx: Ctx, loc: Loc, name: string, add: Buffer): Promise<Buffer> { await this.drainLoc(loc); return this.child.xattrop(ctx, loc, name, add); }

  override async readdirp(ctx: Ctx, loc: Loc, xattrs?: string[]): Promise<Dirent[]> { await this.drainAll(); return this.child.readdirp(ctx, loc, xattrs); }
  override async rename(ctx: Ctx, from: Loc, to: Loc): Promise<void> { await this.drainAll(); return this.child.rename(ctx, from, to); }
  override async link(ctx: Ctx, from: Loc, to: Loc): Promise<Iatt> { await this.drainAll(); return this.child.link(ctx, from, to); }
  override async rmdir(ctx: Ctx, loc: Loc): Promise<void> { await this.drainAll(); return this.child.rmdir(ctx, loc); }

  override async fini(): Promise<void> {
    await this.drainAll().catch(() => undefined);
    await super.fini();
  }
}

export function create(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext): Xlator {
  return new WriteBehind(name, options, children, xctx);
}
