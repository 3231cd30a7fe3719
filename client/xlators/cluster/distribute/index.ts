// cluster/distribute: a file lives whole on the one child its name hashes to in the parent
// directory's layout; directories live on every child. A file renamed or linked so that its new
// name hashes elsewhere stays where its data is, with a zero-byte linkto file on the new hashed
// child pointing at it (GlusterFS's DHT linkto).
import { LRUCache } from 'lru-cache';
import { FsError, toErrno } from '../../../../common/errors.js';
import { cacheTtlMs, PassThrough, type UpcallEvent, type Xlator, type XlatorEvent } from '../../../../common/fops.js';
import type { Logger } from '../../../../common/log.js';
import { parseOptions, type OptionDef } from '../../../../common/options.js';
import {
  basename, dirname, isDir, isReg, joinPath, ROOT_CTX, S_IFREG,
  type CreateArgs, type Ctx, type Dirent, type Fd, type Flock, type Iatt, type LockCmd, type Loc,
  type LookupReply, type SetattrArgs, type Statfs,
} from '../../../../common/types.js';
import type { XlatorContext } from '../../registry.js';
import { decodeRange, encodeRange, Layout, LAYOUT_XATTR, LINKTO_XATTR, newLayout } from './layout.js';
import { mergeDirents, mergeDirIatts } from './readdir.js';
import { renameFile, linkFile } from './rename.js';

export const OPTIONS: readonly OptionDef[] = [
  { key: 'lookup-optimize', type: 'bool', default: true, description: 'trust a miss on the hashed child when the parent layout is complete (no lookup on every child)' },
  { key: 'cache-timeout', type: 'time', default: 5, min: 0, description: 'how long layouts and file locations are cached (seconds)' },
];

interface Options { 'lookup-optimize': boolean; 'cache-timeout': number }

const LINKTO_MODE = 0o1000;
const O_WRONLY = 1;

export type Settled<T> = { ok: true; value: T; i: number } | { ok: false; err: FsError; i: number };

export function isLinkto(iatt: Iatt, xattrs: Record<string, Buffer>): boolean {
  return isReg(iatt.mode) && (iatt.mode & 0o7777) === LINKTO_MODE && iatt.size === 0n && LINKTO_XATTR in xattrs;
}


/** Seconds a file's place is kept while the bricks tell of changes: less than they remember a
 *  reader's interest (600 s). */
const LOCATED_TOLD_S = 540;

/** Where a name resolved: a directory (on every child) or a file on one child. */
export type Located = { dir: true; iatt: Iatt } | { dir: false; subvol: number; iatt: Iatt };

export class Distribute extends PassThrough implements Xlator {
  readonly opts: Options;
  readonly log: Logger;
  private readonly layouts: LRUCache<string, Layout>;
  private readonly located: LRUCache<string, Located>;
  private readonly up: boolean[];
  /** A brick sends no upcalls: file places are kept cache-timeout only. */
  private untold = false;

  constructor(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext) {
    super(name, 'cluster/distribute', children);
    if (children.length === 0) throw new FsError('EINVAL', `translator ${name}: distribute needs at least one child`);
    this.opts = parseOptions<Options>(OPTIONS, options, `translator ${name}`);
    this.log = xctx.log.child({ xl: name });
    const ttl = Math.max(1, this.opts['cache-timeout'] * 1000);
    this.layouts = new LRUCache({ max: 10_000, ttl });
    this.located = new LRUCache({ max: 100_000, ttl });
    this.up = children.map(() => true);
  }

  override async init(): Promise<void> {
    await super.init();
  }

  /** Tells the parents whether every child is up: a listing or a miss while one is down may
   *  lack names (the caches above, nl-cache, trust neither then). */
  override notify(event: XlatorEvent, from: Xlator): void {
    if (typeof event === 'object') {
      this.upcall(event);
      this.parent?.notify(event, this);
      return;
    }
    const i = this.children.indexOf(from);
    if (i >= 0) this.up[i] = event === 'child-up';
    if (event === 'child-up') this.layouts.clear();
    this.parent?.notify(this.up.every(Boolean) ? 'child-up' : 'child-down', this);
  }

  /** Another client changed what the bricks name: where those are is looked up again. */
  private upcall(event: UpcallEvent): void {
    if (event.unsupported) this.untold = true;
    if (event.all || event.changes.some((c) => c.tree)) { this.located.clear(); return; }
    for (const c of event.changes) this.located.delete(c.path);
  }

  // --- fan-out helpers ---

  async onAll<T>(fn: (c: Xlator, i: number) => Promise<T>, which: number[] = this.children.map((_, i) => i)): Promise<Settled<T>[]> {
    const res = await Promise.allSettled(which.map((i) => fn(this.children[i], i)));
    return res.map((r, k) => (r.status === 'fulfilled'
      ? { ok: true as const, value: r.value, i: which[k] }
      : { ok: false as const, err: r.reason instanceof FsError ? r.reason : new FsError(toErrno(r.reason), String(r.reason?.message ?? r.reason)), i: which[k] }));
  }

  /** The first success; else the most telling failure (a real errno over ENOTCONN). */
  firstOk<T>(results: Settled<T>[]): T {
    const ok = results.find((r) => r.ok);
    if (ok && ok.ok) return ok.value;
    const errs = results.filter((r): r is Extract<Settled<T>, { ok: false }> => !r.ok).map((r) => r.err);
    throw errs.find((e) => e.errno !== 'ENOTCONN') ?? errs[0] ?? new FsError('EIO', 'no child answered');
  }

  childIndex(name: string): number {
    return this.children.findIndex((c) => c.name === name);
  }

  // --- layouts ---

  /** The layout of a directory, read from every child and repaired when it is missing or broken. */
  async layoutOf(ctx: Ctx, dir: string): Promise<Layout> {
    const cached = this.layouts.get(dir);
    if (cached) return cached;
    const res = await this.onAll((c) => c.lookup(ROOT_CTX, { path: dir }, [LAYOUT_XATTR]));
    const present = res.filter((r) => r.ok) as Extract<Settled<LookupReply>, { ok: true }>[];
    if (present.length === 0) throw this.firstOkError(res);
    const first = present[0].value.iatt;
    if (!isDir(first.mode)) throw new FsError('ENOTDIR', `${dir} is not a directory`);
    // A child that answered ENOENT lacks the directory: recreate it there (directory self-heal).
    const missing = res.filter((r) => !r.ok && r.err.errno === 'ENOENT').map((r) => r.i);
    if (missing.length) {
      const healed = await this.onAll((c) => c.mkdir(ROOT_CTX, { path: dir }, { mode: first.mode & 0o7777, umask: 0, gfid: first.gfid }), missing);
      for (const h of healed) {
        if (h.ok) {
          present.push({ ok: true, value: { iatt: h.value, xattrs: {} }, i: h.i });
          await this.children[h.i].setattr(ROOT_CTX, { path: dir }, { uid: first.uid, gid: first.gid }).catch(() => {});
        }
      }
    }
    const layout = new Layout(present.map((p) => decodeRange(p.i, p.value.xattrs[LAYOUT_XATTR])).filter((r) => r !== undefined));
    const allThere = present.length === this.children.length;
    if (layout.complete) {
      if (allThere || !layout.ranges.some((r) => !present.find((p) => p.i === r.subvol))) this.layouts.set(dir, layout);
      return layout;
    }
    if (!allThere) return layout; // a child is down: do not rewrite the layout without it
    // Names already in the directory were not placed by the new layout (e.g. bricks were added):
    // commit it only when every copy is empty, else misses on the hashed child search all children.
    const listings = await this.onAll((c) => c.readdirp(ROOT_CTX, { path: dir }), present.map((p) => p.i));
    const empty = listings.every((l) => l.ok && l.value.length === 0);
    const fresh = newLayout(dir, present.map((p) => p.i).sort((a, b) => a - b), empty);
    await this.writeLayout(dir, fresh);
    this.layouts.set(dir, fresh);
    return fresh;
  }

  private firstOkError(res: Settled<unknown>[]): FsError {
    try {
      this.firstOk(res);
    } catch (e) {
      return e as FsError;
    }
    return new FsError('EIO');
  }

  async writeLayout(dir: string, layout: Layout): Promise<void> {
    await Promise.all(layout.ranges.map((r) =>
      this.children[r.subvol].setxattr(ROOT_CTX, { path: dir }, LAYOUT_XATTR, encodeRange(r), 0)));
  }

  forgetDir(dir: string): void {
    const prefix = dir === '/' ? '/' : `${dir}/`;
    for (const k of this.layouts.keys()) if (k === dir || k.startsWith(prefix)) this.layouts.delete(k);
    for (const k of this.located.keys()) if (k === dir || k.startsWith(prefix)) this.located.delete(k);
  }

  forget(path: string): void {
    this.located.delete(path);
  }

  /** The child a new name in dir hashes to. */
  async hashedFor(ctx: Ctx, path: string): Promise<number> {
    const layout = await this.layoutOf(ctx, dirname(path));
    const i = layout.subvolFor(basename(path));
    if (i === undefined) throw new FsError('ENOTCONN', `no brick of ${dirname(path)} is up for the hash of '${basename(path)}'`);
    return i;
  }

  // --- lookup ---

  private async lookupEverywhere(ctx: Ctx, loc: Loc, xattrs: string[]): Promise<{ reply: LookupReply; loc: Located }> {
    const res = await this.onAll((c) => c.lookup(ctx, loc, [LINKTO_XATTR, ...xattrs]));
    for (const r of res) if (r.ok && isDir(r.value.iatt.mode)) return { reply: r.value, loc: { dir: true, iatt: r.value.iatt } };
    for (const r of res) {
      if (r.ok && !isLinkto(r.value.iatt, r.value.xattrs)) return { reply: r.value, loc: { dir: false, subvol: r.i, iatt: r.value.iatt } };
    }
    if (res.some((r) => !r.ok && r.err.errno === 'ENOTCONN')) throw new FsError('ENOTCONN', `${loc.path}: a brick that may hold it is down`);
    throw new FsError('ENOENT', loc.path);
  }

  private async resolve(ctx: Ctx, loc: Loc, xattrs: string[] = []): Promise<{ reply: LookupReply; loc: Located }> {
    if (loc.path === '/') {
      await this.layoutOf(ctx, '/');
      const res = await this.onAll((c) => c.lookup(ctx, loc, xattrs));
      const reply = this.firstOk(res);
      return { reply, loc: { dir: true, iatt: reply.iatt } };
    }
    const layout = await this.layoutOf(ctx, dirname(loc.path));
    const hashed = layout.subvolFor(basename(loc.path));
    if (hashed === undefined) return this.lookupEverywhere(ctx, loc, xattrs);
    let reply: LookupReply;
    try {
      reply = await this.children[hashed].lookup(ctx, loc, [LINKTO_XATTR, ...xattrs]);
    } catch (e) {
      const errno = toErrno(e);
      if (errno === 'ENOENT' && this.opts['lookup-optimize'] && layout.complete && layout.committed) throw e;
      if (errno === 'ENOENT' || errno === 'ENOTCONN') return this.lookupEverywhere(ctx, loc, xattrs);
      throw e;
    }
    if (isDir(reply.iatt.mode)) return { reply, loc: { dir: true, iatt: reply.iatt } };
    if (!isLinkto(reply.iatt, reply.xattrs)) return { reply, loc: { dir: false, subvol: hashed, iatt: reply.iatt } };
    const target = this.childIndex(reply.xattrs[LINKTO_XATTR].toString());
    if (target >= 0) {
      try {
        const real = await this.children[target].lookup(ctx, loc, xattrs);
        if (!isDir(real.iatt.mode)) return { reply: real, loc: { dir: false, subvol: target, iatt: real.iatt } };
      } catch (e) {
        if (toErrno(e) !== 'ENOENT') throw e;
      }
    }
    return this.lookupEverywhere(ctx, loc, xattrs); // a stale linkto
  }

  async locate(ctx: Ctx, loc: Loc): Promise<Located> {
    const cached = this.located.get(loc.path);
    if (cached) return cached;
    const { loc: where } = await this.resolve(ctx, loc);
    this.remember(loc.path, where);
    return where;
  }

  /** Notes where path is. A file's place is kept LOCATED_TOLD_S while the bricks tell of other
   *  clients' changes (a rename, a removal, a migration by rebalance drop it at once; a place
   *  gone stale anyway fails with ENOENT and is looked up again); a directory's, or any where a
   *  brick sends no upcalls, for cache-timeout. */
  remember(path: string, where: Located): void {
    const timeout = this.opts['cache-timeout'];
    this.located.set(path, where, { ttl: cacheTtlMs(Math.max(LOCATED_TOLD_S, timeout), timeout, !where.dir && !this.untold) });
  }

  override async lookup(ctx: Ctx, loc: Loc, xattrs: string[] = []): Promise<LookupReply> {
    // A known directory: one parallel round to every copy, merged (no hashed lookup first).
    if (this.located.get(loc.path)?.dir && this.children.length > 1) {
      const res = await this.onAll((c) => c.lookup(ctx, loc, xattrs));
      const dirs = res.filter((r) => r.ok && isDir(r.value.iatt.mode)) as Extract<Settled<LookupReply>, { ok: true }>[];
      if (dirs.length) {
        const iatt = mergeDirIatts(dirs.map((d) => d.value.iatt));
        this.remember(loc.path, { dir: true, iatt });
        return { iatt, xattrs: dirs[0].value.xattrs };
      }
      this.located.delete(loc.path);
    }
    const { reply, loc: where } = await this.resolve(ctx, loc, xattrs);
    this.remember(loc.path, where);
    const { [LINKTO_XATTR]: _l, ...rest } = reply.xattrs;
    const iatt = where.dir && this.children.length > 1 ? await this.mergedDirIatt(ctx, loc, reply.iatt) : reply.iatt;
    return { iatt, xattrs: rest };
  }

  /** A directory's times are the latest of its copies: an entry made on any child changes them
   *  there only (GlusterFS's dht_iatt_merge). */
  private async mergedDirIatt(ctx: Ctx, loc: Loc, first: Iatt): Promise<Iatt> {
    const res = await this.onAll((c) => c.stat(ctx, loc));
    const copies = res.filter((r) => r.ok && isDir(r.value.mode)).map((r) => (r as { value: Iatt }).value);
    return copies.length ? mergeDirIatts(copies) : first;
  }

  override async stat(ctx: Ctx, loc: Loc): Promise<Iatt> {
    return (await this.lookup(ctx, loc)).iatt;
  }

  /** Runs fn on the child holding a file (or fails with EISDIR semantics left to fn for dirs);
   *  a cached location that went stale is looked up once more. */
  async onFile<T>(ctx: Ctx, loc: Loc, fn: (c: Xlator, i: number) => Promise<T>, onDir?: () => Promise<T>): Promise<T> {
    const fromCache = this.located.has(loc.path);
    let where = await this.locate(ctx, loc);
    if (where.dir && onDir) return onDir();
    const run = (w: Located) => (w.dir ? fn(this.children[0], 0) : fn(this.children[w.subvol], w.subvol));
    try {
      return await run(where);
    } catch (e) {
      if (!fromCache || toErrno(e) !== 'ENOENT') throw e;
      this.located.delete(loc.path);
      where = await this.locate(ctx, loc);
      if (where.dir && onDir) return onDir();
      return run(where);
    }
  }

  /** Runs fn on every child holding a directory; returns the hashed-most answer. */
  async onDir<T>(fn: (c: Xlator, i: number) => Promise<T>): Promise<T> {
    return this.firstOk(await this.onAll(fn));
  }

  // --- fd operations go to the child the file was opened on ---

  private fdChild(fd: Fd): Xlator {
    const i = fd.ctx.get(this) as number | undefined;
    if (i === undefined) throw new FsError('EBADF', 'fd not opened through distribute');
    return this.children[i];
  }

  override async open(ctx: Ctx, loc: Loc, flags: number): Promise<Fd> {
    return this.onFile(ctx, loc, async (c, i) => {
      const fd = await c.open(ctx, loc, flags);
      fd.ctx.set(this, i);
      return fd;
    });
  }

  override async create(ctx: Ctx, loc: Loc, flags: number, args: CreateArgs): Promise<{ fd: Fd; iatt: Iatt }> {
    const i = await this.hashedFor(ctx, loc.path);
    const r = await this.children[i].create(ctx, loc, flags, args);
    r.fd.ctx.set(this, i);
    this.remember(loc.path, { dir: false, subvol: i, iatt: r.iatt });
    return r;
  }

  override fstat(ctx: Ctx, fd: Fd) { return this.fdChild(fd).fstat(ctx, fd); }
  override read(ctx: Ctx, fd: Fd, offset: number, size: number) { return this.fdChild(fd).read(ctx, fd, offset, size); }
  override write(ctx: Ctx, fd: Fd, offset: number, data: Buffer) { return this.fdChild(fd).write(ctx, fd, offset, data); }
  override ftruncate(ctx: Ctx, fd: Fd, size: number) { return this.fdChild(fd).ftruncate(ctx, fd, size); }
  override flush(ctx: Ctx, fd: Fd) { return this.fdChild(fd).flush(ctx, fd); }
  override fsync(ctx: Ctx, fd: Fd, datasync: boolean) { return this.fdChild(fd).fsync(ctx, fd, datasync); }
  override lk(ctx: Ctx, fd: Fd, cmd: LockCmd, lock: Flock) { return this.fdChild(fd).lk(ctx, fd, cmd, lock); }
  override fallocate(ctx: Ctx, fd: Fd, mode: number, offset: number, len: number) { return this.fdChild(fd).fallocate(ctx, fd, mode, offset, len); }
  override async release(ctx: Ctx, fd: Fd) {
    if (fd.ctx.has(this)) await this.fdChild(fd).release(ctx, fd);
  }

  // --- inode operations: on the file's child, or on every child for a directory ---

  override async setattr(ctx: Ctx, loc: Loc, attrs: SetattrArgs): Promise<Iatt> {
    return this.onFile(ctx, loc, (c) => c.setattr(ctx, loc, attrs), () => this.onDir((c) => c.setattr(ctx, loc, attrs)));
  }

  override async truncate(ctx: Ctx, loc: Loc, size: number): Promise<Iatt> {
    return this.onFile(ctx, loc, (c) => c.truncate(ctx, loc, size));
  }

  override async readlink(ctx: Ctx, loc: Loc): Promise<string> {
    return this.onFile(ctx, loc, (c) => c.readlink(ctx, loc));
  }

  override async getxattr(ctx: Ctx, loc: Loc, name: string): Promise<Buffer> {
    return this.onFile(ctx, loc, (c) => c.getxattr(ctx, loc, name));
  }

  override async listxattr(ctx: Ctx, loc: Loc): Promise<string[]> {
    return this.onFile(ctx, loc, (c) => c.listxattr(ctx, loc));
  }

  override async setxattr(ctx: Ctx, loc: Loc, name: string, value: Buffer, flags: number): Promise<void> {
    return this.onFile(ctx, loc, (c) => c.setxattr(ctx, loc, name, value, flags), () => this.onDir((c) => c.setxattr(ctx, loc, name, value, flags)));
  }

  override async removexattr(ctx: Ctx, loc: Loc, name: string): Promise<void> {
    return this.onFile(ctx, loc, (c) => c.removexattr(ctx, loc, name), () => this.onDir((c) => c.removexattr(ctx, loc, name)));
  }

  override async xattrop(ctx: Ctx, loc: Loc, name: string, add: Buffer): Promise<Buffer> {
    return this.onFile(ctx, loc, (c) => c.xattrop(ctx, loc, name, add));
  }

  override async statfs(ctx: Ctx, loc: Loc): Promise<Statfs> {
    const res = (await this.onAll((c) => c.statfs(ctx, loc))).filter((r) => r.ok) as Extract<Settled<Statfs>, { ok: true }>[];
    if (!res.length) throw new FsError('ENOTCONN', 'no brick of the volume is up');
    const frsize = res[0].value.frsize || res[0].value.bsize;
    const scale = (v: bigint, f: number) => (v * BigInt(f || frsize)) / BigInt(frsize);
    const sum = (k: 'blocks' | 'bfree' | 'bavail') => res.reduce((a, r) => a + scale(r.value[k], r.value.frsize), 0n);
    return {
      bsize: res[0].value.bsize, frsize, blocks: sum('blocks'), bfree: sum('bfree'), bavail: sum('bavail'),
      files: res.reduce((a, r) => a + r.value.files, 0n), ffree: res.reduce((a, r) => a + r.value.ffree, 0n),
      namemax: Math.min(...res.map((r) => r.value.namemax)),
    };
  }

  // --- entry operations ---

  override async mkdir(ctx: Ctx, loc: Loc, args: CreateArgs): Promise<Iatt> {
    const hashed = await this.hashedFor(ctx, loc.path);
    const upSubvols = this.children.map((_, i) => i).filter((i) => this.up[i] || i === hashed);
    let layout = newLayout(loc.path, upSubvols);
    const withRange = (i: number): CreateArgs => {
      const r = layout.rangeOf(i);
      return { ...args, xattrs: { ...(args.xattrs ?? {}), ...(r ? { [LAYOUT_XATTR]: encodeRange(r) } : {}) } };
    };
    const iatt = await this.children[hashed].mkdir(ctx, loc, withRange(hashed));
    const others = upSubvols.filter((i) => i !== hashed);
    const res = await this.onAll((c, i) => c.mkdir(ctx, loc, withRange(i)), others);
    const failed = res.filter((r) => !r.ok && r.err.errno !== 'EEXIST');
    for (const r of res) if (!r.ok && r.err.errno === 'EEXIST') await this.children[r.i].setxattr(ROOT_CTX, loc, LAYOUT_XATTR, encodeRange(layout.rangeOf(r.i)!), 0).catch(() => {});
    if (failed.length) {
      // Leave the children that failed out of the layout, so no name hashes to a missing directory.
      this.log.warn({ path: loc.path, failed: failed.map((f) => this.children[f.i].name) }, 'mkdir failed on some bricks');
      layout = newLayout(loc.path, upSubvols.filter((i) => !failed.find((f) => f.i === i)));
      await this.writeLayout(loc.path, layout);
    }
    this.layouts.set(loc.path, layout);
    this.remember(loc.path, { dir: true, iatt });
    return iatt;
  }

  override async symlink(ctx: Ctx, target: string, loc: Loc, args: CreateArgs): Promise<Iatt> {
    const i = await this.hashedFor(ctx, loc.path);
    const iatt = await this.children[i].symlink(ctx, target, loc, args);
    this.remember(loc.path, { dir: false, subvol: i, iatt });
    return iatt;
  }

  override async mknod(ctx: Ctx, loc: Loc, rdev: number, args: CreateArgs): Promise<Iatt> {
    const i = await this.hashedFor(ctx, loc.path);
    const iatt = await this.children[i].mknod(ctx, loc, rdev, args);
    this.remember(loc.path, { dir: false, subvol: i, iatt });
    return iatt;
  }

  /** Creates a linkto file at loc on child `on`, pointing at child `target`. */
  async createLinkto(loc: Loc, on: number, target: number, gfid: string): Promise<void> {
    const { fd } = await this.children[on].create(ROOT_CTX, loc, O_WRONLY, {
      mode: S_IFREG | LINKTO_MODE, umask: 0, gfid, xattrs: { [LINKTO_XATTR]: Buffer.from(this.children[target].name) },
    });
    await this.children[on].release(ROOT_CTX, fd);
  }

  override async unlink(ctx: Ctx, loc: Loc): Promise<void> {
    await this.onFile(ctx, loc, async (c, i) => {
      await c.unlink(ctx, loc);
      const hashed = await this.hashedFor(ctx, loc.path).catch(() => i);
      if (hashed !== i) await this.children[hashed].unlink(ROOT_CTX, loc).catch(() => {});
    }, async () => { throw new FsError('EISDIR', loc.path); });
    this.located.delete(loc.path);
  }

  override async rmdir(ctx: Ctx, loc: Loc): Promise<void> {
    if (loc.path === '/') throw new FsError('EBUSY', 'cannot remove the volume root');
    const where = await this.locate(ctx, loc);
    if (!where.dir) throw new FsError('ENOTDIR', loc.path);
    const lists = await this.onAll((c) => c.readdirp(ROOT_CTX, loc, [LINKTO_XATTR]));
    for (const l of lists) {
      if (l.ok && l.value.some((e) => !isLinkto(e.iatt, e.xattrs))) throw new FsError('ENOTEMPTY', loc.path);
    }
    // Stale linkto files are ours to clean, as GlusterFS does.
    for (const l of lists) {
      if (l.ok) for (const e of l.value) await this.children[l.i].unlink(ROOT_CTX, { path: joinPath(loc.path, e.name) }).catch(() => {});
    }
    const hashed = await this.hashedFor(ctx, loc.path);
    const others = this.children.map((_, i) => i).filter((i) => i !== hashed);
    const res = await this.onAll((c) => c.rmdir(ctx, loc), others);
    const bad = res.find((r) => !r.ok && r.err.errno !== 'ENOENT' && r.err.errno !== 'ENOTCONN');
    if (bad && !bad.ok) throw bad.err;
    await this.children[hashed].rmdir(ctx, loc).catch((e) => {
      if (toErrno(e) !== 'ENOENT') throw e;
    });
    this.forgetDir(loc.path);
  }

  override async rename(ctx: Ctx, from: Loc, to: Loc): Promise<void> {
    const src = await this.locate(ctx, from);
    if (src.dir) {
      await this.checkDirRenameTarget(ctx, to);
      const hashed = await this.hashedFor(ctx, to.path);
      await this.children[hashed].rename(ctx, from, to);
      const others = this.children.map((_, i) => i).filter((i) => i !== hashed);
      const res = await this.onAll((c) => c.rename(ctx, from, to), others);
      for (const r of res) if (!r.ok && r.err.errno !== 'ENOTCONN') this.log.warn({ from: from.path, to: to.path, err: r.err.message }, 'directory rename failed on a brick');
      this.forgetDir(from.path);
      this.forgetDir(to.path);
      return;
    }
    await renameFile(this, ctx, from, to, src);
  }

  /** A directory may replace only an empty directory. Each brick sees only its own entries, so the
   *  whole volume is checked before any brick renames (else one brick would rename and another refuse). */
  private async checkDirRenameTarget(ctx: Ctx, to: Loc): Promise<void> {
    this.located.delete(to.path);
    let dst: Located;
    try {
      dst = await this.locate(ctx, to);
    } catch (e) {
      if (toErrno(e) === 'ENOENT') return;
      throw e;
    }
    if (!dst.dir) throw new FsError('ENOTDIR', `${to.path} is not a directory`);
    const lists = await this.onAll((c) => c.readdirp(ROOT_CTX, to, [LINKTO_XATTR]));
    if (lists.some((l) => l.ok && l.value.some((e) => !isLinkto(e.iatt, e.xattrs)))) throw new FsError('ENOTEMPTY', to.path);
    const down = lists.find((l) => !l.ok && l.err.errno !== 'ENOENT');
    if (down && !down.ok) throw down.err;
  }

  override async link(ctx: Ctx, from: Loc, to: Loc): Promise<Iatt> {
    return linkFile(this, ctx, from, to);
  }

  override async readdirp(ctx: Ctx, loc: Loc, xattrs: string[] = []): Promise<Dirent[]> {
    const res = await this.onAll((c) => c.readdirp(ctx, loc, [LINKTO_XATTR, ...xattrs]));
    if (!res.some((r) => r.ok)) throw this.firstOkError(res);
    for (const r of res) if (!r.ok) this.log.warn({ path: loc.path, brick: this.children[r.i].name, err: r.err.message }, 'readdir: brick missing from listing');
    // A partial listing: the parents must not take it for the directory's every name.
    if (res.some((r) => !r.ok)) this.parent?.notify('child-down', this);
    const merged = mergeDirents(res.filter((r) => r.ok).map((r) => ({ i: r.i, entries: (r as { value: Dirent[] }).value })), isLinkto);
    for (const m of merged) {
      const path = joinPath(loc.path, m.entry.name);
      this.remember(path, isDir(m.entry.iatt.mode) ? { dir: true, iatt: m.entry.iatt } : { dir: false, subvol: m.subvol, iatt: m.entry.iatt });
    }
    return merged.map((m) => {
      const { [LINKTO_XATTR]: _l, ...rest } = m.entry.xattrs;
      return { ...m.entry, xattrs: rest };
    });
  }
}

export function create(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext): Xlator {
  return new Distribute(name, options, children, xctx);
}
