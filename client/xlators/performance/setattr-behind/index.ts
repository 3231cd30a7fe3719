// performance/setattr-behind: write-behind for attributes. A chown, chmod or utimes of a file this
// client holds open (what tar, cp -p and rsync do before close) is answered at once with the
// attributes it makes and kept; the ones that follow merge into it, and one setattr goes to the
// bricks at flush (close), fsync or release, after the file's data (write-behind, below, writes
// pending data before any setattr). Anything that could observe the file first sends it. The
// kernel has checked the caller's right to the change (default_permissions), so what is left to
// fail is the brick itself: that error is reported by the close, as write-behind reports its own.
import { FsError, toFsError } from '../../../../common/errors.js';
import { PassThrough, type Xlator } from '../../../../common/fops.js';
import { parseOptions, type OptionDef } from '../../../../common/options.js';
import {
  OPEN_IATT, isReg, type CreateArgs, type Ctx, type Dirent, type Fd, type Iatt, type Loc, type LookupReply, type SetattrArgs,
} from '../../../../common/types.js';
import type { XlatorContext } from '../../registry.js';

export const OPTIONS: readonly OptionDef[] = [
  { key: 'enable', type: 'bool', default: true, description: 'hold attribute changes of open files until close; off passes every setattr straight through' },
];

interface Options { enable: boolean }

const S_IFMT = 0o170000;

/** A file this client has open: its attributes as they are after the held changes. */
interface Held {
  gfid: string;
  fds: number;
  iatt: Iatt;
  /** The changes not yet sent, merged, and where to send them. */
  pending?: { ctx: Ctx; loc: Loc; attrs: SetattrArgs };
  /** The failure of the last send, for the next flush, fsync or release to report. */
  error?: FsError;
  sending?: Promise<void>;
}

const nowNs = () => BigInt(Date.now()) * 1_000_000n;

export class SetattrBehind extends PassThrough implements Xlator {
  readonly opts: Options;
  private readonly files = new Map<string, Held>();

  constructor(name: string, options: Record<string, unknown>, children: Xlator[], _xctx?: XlatorContext) {
    super(name, 'performance/setattr-behind', children);
    if (children.length !== 1) throw new FsError('EINVAL', `translator ${name}: setattr-behind takes exactly one child`);
    this.opts = parseOptions<Options>(OPTIONS, options, `translator ${name}`);
  }

  private get child(): Xlator { return this.children[0]; }

  /** Changes held and not yet sent, over all files (for tests). */
  get heldCount(): number {
    let n = 0;
    for (const h of this.files.values()) if (h.pending) n++;
    return n;
  }

  private opened(fd: Fd, iatt: Iatt | undefined): void {
    if (!this.opts.enable || !iatt || !isReg(iatt.mode)) return;
    const h = this.files.get(fd.gfid);
    if (h) { h.fds++; return; }
    this.files.set(fd.gfid, { gfid: fd.gfid, fds: 1, iatt: { ...iatt } });
  }

  /** Sends the held changes of a file (once; concurrent callers wait for the same send). */
  private async send(h: Held): Promise<void> {
    while (h.sending) await h.sending;
    const p = h.pending;
    if (!p) return;
    h.pending = undefined;
    h.sending = this.child.setattr(p.ctx, p.loc, p.attrs).then(
      (iatt) => { h.iatt = { ...iatt }; },
      (e: unknown) => { h.error ??= toFsError(e); },
    ).finally(() => { h.sending = undefined; });
    await h.sending;
  }

  private takeError(h: Held): void {
    const e = h.error;
    if (e) { h.error = undefined; throw e; }
  }

  private heldFor(loc: Loc): Held | undefined {
    if (this.files.size === 0) return undefined;
    if (loc.gfid) return this.files.get(loc.gfid);
    for (const h of this.files.values()) if (h.pending?.loc.path === loc.path) return h;
    return undefined;
  }

  private async sendFor(loc: Loc): Promise<void> {
    const h = this.heldFor(loc);
    if (h?.pending || h?.sending) await this.send(h);
  }

  private async sendAll(): Promise<void> {
    await Promise.all([...this.files.values()].filter((h) => h.pending || h.sending).map((h) => this.send(h)));
  }

  // --- opening and closing ---

  override async create(ctx: Ctx, loc: Loc, flags: number, args: CreateArgs): Promise<{ fd: Fd; iatt: Iatt }> {
    const r = await this.child.create(ctx, loc, flags, args);
    this.opened(r.fd, r.iatt);
    return r;
  }

  override async open(ctx: Ctx, loc: Loc, flags: number): Promise<Fd> {
    const fd = await this.child.open(ctx, loc, flags);
    this.opened(fd, fd.ctx.get(OPEN_IATT) as Iatt | undefined);
    return fd;
  }

  override async flush(ctx: Ctx, fd: Fd): Promise<void> {
    const h = this.files.get(fd.gfid);
    if (h) await this.send(h);
    await this.child.flush(ctx, fd);
    if (h) this.takeError(h);
  }

  override async fsync(ctx: Ctx, fd: Fd, datasync: boolean): Promise<void> {
    const h = this.files.get(fd.gfid);
    if (h) await this.send(h);
    await this.child.fsync(ctx, fd, datasync);
    if (h) this.takeError(h);
  }

  override async release(ctx: Ctx, fd: Fd): Promise<void> {
    const h = this.files.get(fd.gfid);
    if (h) {
      await this.send(h);
      if (--h.fds <= 0) this.files.delete(fd.gfid);
    }
    await this.child.release(ctx, fd);
  }

  // --- the held changes ---

  override async write(ctx: Ctx, fd: Fd, offset: number, data: Buffer): Promise<number> {
    const n = await this.child.write(ctx, fd, offset, data);
    const h = this.files.get(fd.gfid);
    if (h) {
      const end = BigInt(offset + n);
      if (end > h.iatt.size) h.iatt.size = end;
      if (!h.pending?.attrs.mtime) h.iatt.mtime = nowNs();
      h.iatt.ctime = nowNs();
    }
    return n;
  }

  override async setattr(ctx: Ctx, loc: Loc, attrs: SetattrArgs): Promise<Iatt> {
    const h = this.heldFor(loc);
    // A size change, or a file not open here: it goes now, after what is held.
    if (!h || attrs.size !== undefined || (loc.gfid && loc.gfid !== h.gfid)) {
      if (h) await this.send(h);
      const iatt = await this.child.setattr(ctx, loc, attrs);
      if (h) h.iatt = { ...iatt };
      return iatt;
    }
    const now = nowNs();
    const a = h.iatt;
    const held: SetattrArgs = { ...h.pending?.attrs };
    if (attrs.uid !== undefined) { held.uid = attrs.uid; a.uid = attrs.uid; }
    if (attrs.gid !== undefined) { held.gid = attrs.gid; a.gid = attrs.gid; }
    if (attrs.mode !== undefined) {
      held.mode = attrs.mode & 0o7777;
      a.mode = (a.mode & S_IFMT) | held.mode;
    }
    // Times the caller left to "now" are fixed now, so what the bricks store is what was answered.
    if (attrs.atime !== undefined) { held.atime = attrs.atime === 'now' ? now : attrs.atime; a.atime = held.atime; }
    if (attrs.mtime !== undefined) { held.mtime = attrs.mtime === 'now' ? now : attrs.mtime; a.mtime = held.mtime; }
    a.ctime = now;
    const { signal: _s, ...bare } = ctx;
    h.pending = { ctx: bare, loc: { path: loc.path, gfid: loc.gfid ?? h.gfid }, attrs: held };
    return { ...a };
  }

  // --- whatever could observe the file sends what is held first ---

  override async fstat(ctx: Ctx, fd: Fd): Promise<Iatt> {
    const h = this.files.get(fd.gfid);
    if (h) await this.send(h);
    return this.child.fstat(ctx, fd);
  }

  override async lookup(ctx: Ctx, loc: Loc, xattrs?: string[]): Promise<LookupReply> { await this.sendFor(loc); return this.child.lookup(ctx, loc, xattrs); }
  override async stat(ctx: Ctx, loc: Loc): Promise<Iatt> { await this.sendFor(loc); return this.child.stat(ctx, loc); }
  override async truncate(ctx: Ctx, loc: Loc, size: number): Promise<Iatt> { await this.sendFor(loc); return this.child.truncate(ctx, loc, size); }
  override async getxattr(ctx: Ctx, loc: Loc, name: string): Promise<Buffer> { await this.sendFor(loc); return this.child.getxattr(ctx, loc, name); }
  override async setxattr(ctx: Ctx, loc: Loc, name: string, value: Buffer, flags: number): Promise<void> { await this.sendFor(loc); return this.child.setxattr(ctx, loc, name, value, flags); }
  override async listxattr(ctx: Ctx, loc: Loc): Promise<string[]> { await this.sendFor(loc); return this.child.listxattr(ctx, loc); }
  override async removexattr(ctx: Ctx, loc: Loc, name: string): Promise<void> { await this.sendFor(loc); return this.child.removexattr(ctx, loc, name); }
  override async unlink(ctx: Ctx, loc: Loc): Promise<void> { await this.sendFor(loc); return this.child.unlink(ctx, loc); }

  override async readdirp(ctx: Ctx, loc: Loc, xattrs?: string[]): Promise<Dirent[]> { await this.sendAll(); return this.child.readdirp(ctx, loc, xattrs); }
  override async rename(ctx: Ctx, from: Loc, to: Loc): Promise<void> { await this.sendAll(); return this.child.rename(ctx, from, to); }
  override async link(ctx: Ctx, from: Loc, to: Loc): Promise<Iatt> { await this.sendAll(); return this.child.link(ctx, from, to); }
  override async rmdir(ctx: Ctx, loc: Loc): Promise<void> { await this.sendAll(); return this.child.rmdir(ctx, loc); }

  override async fini(): Promise<void> {
    await this.sendAll();
    await super.fini();
  }
}

export function create(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext): Xlator {
  return new SetattrBehind(name, options, children, xctx);
}
