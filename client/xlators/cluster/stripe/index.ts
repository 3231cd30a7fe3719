// cluster/stripe: a regular file is cut into fixed-size chunks stored round robin over the
// children, coalesced (chunk i on child i mod N at local offset floor(i / N) * B). Each piece
// records the file's block size, stripe count and logical size (size.ts), so another client or a
// changed block-size option reads old files right. Directories and symlinks live on every child.
// A piece alone is not the file: a child that is down fails reads of striped files.
import { FsError, toFsError } from '../../../../common/errors.js';
import { PassThrough, type Xlator } from '../../../../common/fops.js';
import type { Logger } from '../../../../common/log.js';
import { parseOptions, type OptionDef } from '../../../../common/options.js';
import {
  isDir, isReg, newFd, O_TRUNC, ROOT_CTX,
  type CreateArgs, type Ctx, type Dirent, type Fd, type Flock, type Iatt, type LockCmd, type Loc,
  type LookupReply, type SetattrArgs, type Statfs,
} from '../../../../common/types.js';
import type { XlatorContext } from '../../registry.js';
import type { Geometry } from './chunks.js';
import { all, fallocateStriped, OpenFile, readStriped, resizeStriped, writeStriped } from './io.js';
import { geometryOf, mergeIatt, pieceXattrs, STRIPE_XATTRS, type Piece } from './size.js';

export const OPTIONS: readonly OptionDef[] = [
  { key: 'block-size', type: 'size', default: 128 * 1024, min: 16 * 1024, max: 1024 ** 3, description: 'size of the chunks new files are cut into (old files keep theirs)' },
];

interface Options { 'block-size': number }

const O_APPEND = 0o2000;

/** What stripe keeps in a Fd it returns: the children's fds and the open file. */
interface StripeFd { fds: Fd[]; file: OpenFile }

type Settled<T> = { ok: true; value: T } | { ok: false; err: FsError };

export class Stripe extends PassThrough implements Xlator {
  readonly opts: Options;
  readonly log: Logger;
  /** Open files by gfid; an entry lives as long as an fd of it is open here. */
  private readonly open_ = new Map<string, OpenFile>();

  constructor(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext) {
    super(name, 'cluster/stripe', children);
    if (children.length < 2) throw new FsError('EINVAL', `translator ${name}: stripe needs at least two children`);
    this.opts = parseOptions<Options>(OPTIONS, options, `translator ${name}`);
    this.log = xctx.log.child({ xl: name });
  }

  /** The geometry new files get. */
  get geometry(): Geometry {
    return { block: this.opts['block-size'], count: this.children.length };
  }

  // --- fan-out helpers ---

  private async settle<T>(fn: (c: Xlator, k: number) => Promise<T>): Promise<Settled<T>[]> {
    const res = await Promise.allSettled(this.children.map((c, k) => fn(c, k)));
    return res.map((r) => (r.status === 'fulfilled' ? { ok: true as const, value: r.value } : { ok: false as const, err: toFsError(r.reason) }));
  }

  /** Runs fn on every child; all must succeed, else the first telling error. */
  private onAll<T>(fn: (c: Xlator, k: number) => Promise<T>): Promise<T[]> {
    return all(this.children.map((c, k) => fn(c, k)));
  }

  private knownSize(gfid: string): number | undefined {
    return this.open_.get(gfid)?.size;
  }

  /** Looks a path up on every child; the merged reply, with the pieces for a regular file. */
  private async lookupAll(ctx: Ctx, loc: Loc, xattrs: string[] = []): Promise<{ reply: LookupReply; pieces: (Piece | undefined)[]; geometry: Geometry }> {
    const res = await this.settle((c) => c.lookup(ctx, loc, [...new Set([...xattrs, ...STRIPE_XATTRS])]));
    const first = res.find((r) => r.ok);
    if (!first || !first.ok) throw pickError(res);
    const pieces = res.map((r) => (r.ok ? r.value : undefined));
    const missing = res.find((r) => !r.ok && r.err.errno === 'ENOENT');
    const base = first.value;
    const geometry = isReg(base.iatt.mode) ? geometryOf(base.xattrs, this.geometry) : this.geometry;
    if (isReg(base.iatt.mode) && missing) throw new FsError('EIO', `${loc.path}: a piece of the striped file is missing on ${this.children[res.indexOf(missing)].name}`);
    const iatt = isReg(base.iatt.mode) ? mergeIatt(pieces, geometry, this.knownSize(base.iatt.gfid)) : base.iatt;
    return { reply: { iatt, xattrs: pickXattrs(base.xattrs, xattrs) }, pieces, geometry };
  }

  override async lookup(ctx: Ctx, loc: Loc, xattrs: string[] = []): Promise<LookupReply> {
    return (await this.lookupAll(ctx, loc, xattrs)).reply;
  }

  override async stat(ctx: Ctx, loc: Loc): Promise<Iatt> {
    return (await this.lookupAll(ctx, loc)).reply.iatt;
  }

  override async readdirp(ctx: Ctx, loc: Loc, xattrs: string[] = []): Promise<Dirent[]> {
    const res = await this.settle((c) => c.readdirp(ctx, loc, [...new Set([...xattrs, ...STRIPE_XATTRS])]));
    const firstOk = res.find((r) => r.ok);
    if (!firstOk || !firstOk.ok) throw pickError(res);
    const byName = res.map((r) => (r.ok ? new Map(r.value.map((e) => [e.name, e])) : undefined));
    return firstOk.value.map((e) => {
      let iatt = e.iatt;
      if (isReg(e.iatt.mode)) {
        try {
          const pieces = byName.map((m) => m?.get(e.name));
          iatt = mergeIatt(pieces, geometryOf(e.xattrs, this.geometry), this.knownSize(e.iatt.gfid));
        } catch (err) {
          this.log.warn({ path: loc.path, name: e.name, err: (err as Error).message }, 'readdir: cannot merge pieces');
        }
      }
      return { name: e.name, iatt, xattrs: pickXattrs(e.xattrs, xattrs) };
    });
  }

  // --- open files ---

  private sfd(fd: Fd): StripeFd {
    const s = fd.ctx.get(this) as StripeFd | undefined;
    if (!s) throw new FsError('EBADF', `${this.name}: fd not opened through stripe`);
    return s;
  }

  /** Registers children's fds as one stripe fd, sharing the open file of that gfid. */
  private wrap(loc: Loc, flags: number, fds: Fd[], gfid: string, geometry: Geometry, size: number): Fd {
    let file = this.open_.get(gfid);
    if (!file) {
      file = new OpenFile(gfid, geometry, size, loc, this.children);
      this.open_.set(gfid, file);
    }
    file.loc = loc;
    file.refs++;
    const fd = newFd(loc, flags, gfid);
    fd.ctx.set(this, { fds, file } satisfies StripeFd);
    return fd;
  }

  private async openAll(fn: (c: Xlator, k: number) => Promise<Fd>): Promise<Fd[]> {
    const res = await Promise.allSettled(this.children.map((c, k) => fn(c, k)));
    if (res.every((r) => r.status === 'fulfilled')) return res.map((r) => (r as PromiseFulfilledResult<Fd>).value);
    await Promise.allSettled(res.map((r, k) => (r.status === 'fulfilled' ? this.children[k].release(ROOT_CTX, r.value) : undefined)));
    return all(res.map((r) => (r.status === 'fulfilled' ? Promise.resolve(r.value) : Promise.reject(r.reason))));
  }

  override async open(ctx: Ctx, loc: Loc, flags: number): Promise<Fd> {
    const childFlags = flags & ~O_APPEND;
    const [looked, opened] = await Promise.allSettled([
      this.lookupAll(ctx, loc),
      this.openAll((c) => c.open(ctx, loc, childFlags)),
    ]);
    if (looked.status === 'rejected') {
      if (opened.status === 'fulfilled') await Promise.allSettled(opened.value.map((f, k) => this.children[k].release(ROOT_CTX, f)));
      throw toFsError(looked.reason);
    }
    if (opened.status === 'rejected') throw toFsError(opened.reason);
    const found = looked.value;
    const fds = opened.value;
    const gfid = found.reply.iatt.gfid;
    if (!isReg(found.reply.iatt.mode)) return this.wrap(loc, flags, fds, gfid, found.geometry, 0);
    const fd = this.wrap(loc, flags, fds, gfid, found.geometry, Number(found.reply.iatt.size));
    if (flags & O_TRUNC) {
      const { file } = this.sfd(fd);
      await file.lock.run(async () => {
        await resizeStriped(this.children, file.geometry, loc, 0, (k) => this.children[k].ftruncate(ctx, fds[k], 0));
        file.recorded(0);
      });
    }
    return fd;
  }

  override async create(ctx: Ctx, loc: Loc, flags: number, args: CreateArgs): Promise<{ fd: Fd; iatt: Iatt }> {
    const g = this.geometry;
    const childFlags = flags & ~O_APPEND;
    const res = await Promise.allSettled(this.children.map((c, k) =>
      c.create(ctx, loc, childFlags, { ...args, xattrs: { ...(args.xattrs ?? {}), ...pieceXattrs(g, k) } })));
    if (!res.every((r) => r.status === 'fulfilled')) {
      // Undo the pieces this call made, so no half-striped file is left behind.
      await Promise.allSettled(res.map(async (r, k) => {
        if (r.status !== 'fulfilled') return;
        await this.children[k].release(ROOT_CTX, r.value.fd);
        if (r.value.iatt.gfid === args.gfid) await this.children[k].unlink(ROOT_CTX, loc);
      }));
      await all(res.map((r) => (r.status === 'fulfilled' ? Promise.resolve() : Promise.reject(r.reason))));
    }
    const made = res.map((r) => (r as PromiseFulfilledResult<{ fd: Fd; iatt: Iatt }>).value);
    const fds = made.map((m) => m.fd);
    const gfid = made[0].iatt.gfid;
    if (gfid !== args.gfid) {
      // The file existed: open it as it is.
      const found = await this.lookupAll(ctx, loc);
      return { fd: this.wrap(loc, flags, fds, gfid, found.geometry, Number(found.reply.iatt.size)), iatt: found.reply.iatt };
    }
    const fd = this.wrap(loc, flags, fds, gfid, g, 0);
    return { fd, iatt: mergeIatt(made.map((m) => ({ iatt: m.iatt, xattrs: {} })), g, 0) };
  }

  override async read(ctx: Ctx, fd: Fd, offset: number, size: number): Promise<Buffer> {
    const { fds, file } = this.sfd(fd);
    return readStriped(ctx, this.children, fds, file, offset, size);
  }

  override async write(ctx: Ctx, fd: Fd, offset: number, data: Buffer): Promise<number> {
    const { fds, file } = this.sfd(fd);
    return writeStriped(ctx, this.children, fds, file, fd.flags & O_APPEND ? 'append' : offset, data);
  }

  override async fallocate(ctx: Ctx, fd: Fd, mode: number, offset: number, len: number): Promise<void> {
    const { fds, file } = this.sfd(fd);
    await fallocateStriped(ctx, this.children, fds, file, mode, offset, len);
  }

  override async fstat(ctx: Ctx, fd: Fd): Promise<Iatt> {
    const { fds, file } = this.sfd(fd);
    const iatts = await this.onAll((c, k) => c.fstat(ctx, fds[k]));
    return mergeIatt(iatts.map((iatt) => ({ iatt, xattrs: {} })), file.geometry, file.size);
  }

  override async ftruncate(ctx: Ctx, fd: Fd, size: number): Promise<Iatt> {
    const { fds, file } = this.sfd(fd);
    return file.lock.run(async () => {
      const iatts = await resizeStriped(this.children, file.geometry, file.loc, size, (k, len) => this.children[k].ftruncate(ctx, fds[k], len));
      file.recorded(size);
      return mergeIatt(iatts.map((iatt) => ({ iatt, xattrs: {} })), file.geometry, size);
    });
  }

  override async flush(ctx: Ctx, fd: Fd): Promise<void> {
    const { fds, file } = this.sfd(fd);
    await all([file.settle(), ...this.children.map((c, k) => c.flush(ctx, fds[k]))]);
  }

  override async fsync(ctx: Ctx, fd: Fd, datasync: boolean): Promise<void> {
    const { fds, file } = this.sfd(fd);
    await file.settle();
    await this.onAll((c, k) => c.fsync(ctx, fds[k], datasync));
  }

  override async release(ctx: Ctx, fd: Fd): Promise<void> {
    const s = fd.ctx.get(this) as StripeFd | undefined;
    if (!s) return;
    fd.ctx.delete(this);
    const { fds, file } = s;
    try {
      await file.settle();
    } finally {
      if (--file.refs === 0 && this.open_.get(file.gfid) === file) this.open_.delete(file.gfid);
      await this.onAll((c, k) => c.release(ctx, fds[k]));
    }
  }

  override async lk(ctx: Ctx, fd: Fd, cmd: LockCmd, lock: Flock): Promise<Flock> {
    // Locks are taken on the first piece, so every client agrees on one lock table per file.
    return this.children[0].lk(ctx, this.sfd(fd).fds[0], cmd, lock);
  }

  // --- inode operations ---

  /** Sets a striped file's size by path: each piece to its exact length, then the recorded size. */
  private async resizePath(ctx: Ctx, loc: Loc, size: number): Promise<Iatt> {
    const found = await this.lookupAll(ctx, loc);
    if (!isReg(found.reply.iatt.mode)) throw new FsError(isDir(found.reply.iatt.mode) ? 'EISDIR' : 'EINVAL', loc.path);
    const file = this.open_.get(found.reply.iatt.gfid);
    const run = async () => {
      const iatts = await resizeStriped(this.children, found.geometry, loc, size, (k, len) => this.children[k].truncate(ctx, loc, len));
      file?.recorded(size);
      return mergeIatt(iatts.map((iatt) => ({ iatt, xattrs: {} })), found.geometry, size);
    };
    return file ? file.lock.run(run) : run();
  }

  override async truncate(ctx: Ctx, loc: Loc, size: number): Promise<Iatt> {
    return this.resizePath(ctx, loc, size);
  }

  override async setattr(ctx: Ctx, loc: Loc, attrs: SetattrArgs): Promise<Iatt> {
    const { size, ...rest } = attrs;
    let iatt: Iatt | undefined;
    if (size !== undefined) iatt = await this.resizePath(ctx, loc, Number(size));
    if (Object.keys(rest).length === 0 && iatt) return iatt;
    const iatts = await this.onAll((c) => c.setattr(ctx, loc, rest));
    if (!isReg(iatts[0].mode)) return iatts[0];
    const { geometry } = await this.lookupAll(ctx, loc).catch(() => ({ geometry: this.geometry }));
    return mergeIatt(iatts.map((i) => ({ iatt: i, xattrs: {} })), geometry, this.knownSize(iatts[0].gfid));
  }

  override async statfs(ctx: Ctx, loc: Loc): Promise<Statfs> {
    const res = await this.onAll((c) => c.statfs(ctx, loc));
    const frsize = res[0].frsize || res[0].bsize;
    const scale = (v: bigint, f: number) => (v * BigInt(f || frsize)) / BigInt(frsize);
    const sum = (k: 'blocks' | 'bfree' | 'bavail') => res.reduce((a, r) => a + scale(r[k], r.frsize), 0n);
    return {
      bsize: res[0].bsize, frsize, blocks: sum('blocks'), bfree: sum('bfree'), bavail: sum('bavail'),
      files: res.reduce((a, r) => (r.files < a ? r.files : a), res[0].files),
      ffree: res.reduce((a, r) => (r.ffree < a ? r.ffree : a), res[0].ffree),
      namemax: Math.min(...res.map((r) => r.namemax)),
    };
  }

  override async setxattr(ctx: Ctx, loc: Loc, name: string, value: Buffer, flags: number): Promise<void> {
    await this.onAll((c) => c.setxattr(ctx, loc, name, value, flags));
  }

  override async removexattr(ctx: Ctx, loc: Loc, name: string): Promise<void> {
    await this.onAll((c) => c.removexattr(ctx, loc, name));
  }

  // --- entry operations: the same on every child ---

  override async mkdir(ctx: Ctx, loc: Loc, args: CreateArgs): Promise<Iatt> {
    return (await this.onAll((c) => c.mkdir(ctx, loc, args)))[0];
  }

  override async symlink(ctx: Ctx, target: string, loc: Loc, args: CreateArgs): Promise<Iatt> {
    return (await this.onAll((c) => c.symlink(ctx, target, loc, args)))[0];
  }

  /** Special files live on every child, as symlinks do; a regular one is an empty striped file. */
  override async mknod(ctx: Ctx, loc: Loc, rdev: number, args: CreateArgs): Promise<Iatt> {
    const g = this.geometry;
    const iatts = await this.onAll((c, k) => c.mknod(ctx, loc, rdev, isReg(args.mode) ? { ...args, xattrs: { ...(args.xattrs ?? {}), ...pieceXattrs(g, k) } } : args));
    return isReg(iatts[0].mode) ? mergeIatt(iatts.map((iatt) => ({ iatt, xattrs: {} })), g, 0) : iatts[0];
  }

  override async unlink(ctx: Ctx, loc: Loc): Promise<void> {
    const res = await this.settle((c) => c.unlink(ctx, loc));
    // A piece already gone is not an error unless every piece is.
    if (res.every((r) => !r.ok) || res.some((r) => !r.ok && r.err.errno !== 'ENOENT')) throw pickError(res);
  }

  override async rmdir(ctx: Ctx, loc: Loc): Promise<void> {
    const res = await this.settle((c) => c.rmdir(ctx, loc));
    if (res.every((r) => !r.ok) || res.some((r) => !r.ok && r.err.errno !== 'ENOENT')) throw pickError(res);
  }

  override async rename(ctx: Ctx, from: Loc, to: Loc): Promise<void> {
    await this.onAll((c) => c.rename(ctx, from, to));
    for (const f of this.open_.values()) if (f.loc.path === from.path) f.loc = { ...to, gfid: f.gfid };
  }

  override async link(ctx: Ctx, from: Loc, to: Loc): Promise<Iatt> {
    const iatts = await this.onAll((c) => c.link(ctx, from, to));
    if (!isReg(iatts[0].mode)) return iatts[0];
    const { geometry } = await this.lookupAll(ctx, to).catch(() => ({ geometry: this.geometry }));
    return mergeIatt(iatts.map((i) => ({ iatt: i, xattrs: {} })), geometry, this.knownSize(iatts[0].gfid));
  }
}

function pickError<T>(res: Settled<T>[]): FsError {
  const errs = res.filter((r): r is { ok: false; err: FsError } => !r.ok).map((r) => r.err);
  return errs.find((e) => e.errno !== 'ENOTCONN') ?? errs[0] ?? new FsError('EIO', 'no child answered');
}

/** The xattrs the caller asked for; stripe's own stay below unless asked for by name. */
function pickXattrs(have: Record<string, Buffer>, asked: string[]): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(have).filter(([k]) => asked.includes(k)));
}

export function create(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext): Xlator {
  return new Stripe(name, options, children, xctx);
}
