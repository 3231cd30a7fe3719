// performance/read-ahead: when an fd reads sequentially, the next page-count pages of page-size
// bytes are read from the child in parallel before they are asked for, and later reads are
// answered from them. Pages of a file are dropped when this client writes to, truncates or
// allocates in it through any fd, and go with the fd at release.
import { FsError } from '../../../../common/errors.js';
import { PassThrough, type Xlator } from '../../../../common/fops.js';
import { parseOptions, type OptionDef } from '../../../../common/options.js';
import type { Ctx, Fd, Flock, Iatt, LockCmd, Loc, SetattrArgs } from '../../../../common/types.js';
import type { XlatorContext } from '../../registry.js';

export const OPTIONS: readonly OptionDef[] = [
  { key: 'enable', type: 'bool', default: true, description: 'read ahead on sequential reads' },
  { key: 'page-size', type: 'size', default: 1024 * 1024, min: 4096, max: 16 * 1024 * 1024, description: 'size of one read-ahead request' },
  { key: 'page-count', type: 'int', default: 4, min: 1, max: 16, description: 'pages read ahead of a sequential reader' },
];

interface Options { enable: boolean; 'page-size': number; 'page-count': number }

interface Page { off: number; data: Promise<Buffer | null> }
interface RaFd { fd: Fd; next: number; seq: number; pages: Map<number, Page> }

export class ReadAhead extends PassThrough implements Xlator {
  readonly opts: Options;
  /** Open fds per gfid, to drop every fd's pages on a change of the file. */
  private readonly byGfid = new Map<string, Set<RaFd>>();
  hits = 0;

  constructor(name: string, options: Record<string, unknown>, children: Xlator[], _xctx?: XlatorContext) {
    super(name, 'performance/read-ahead', children);
    if (children.length !== 1) throw new FsError('EINVAL', `translator ${name}: read-ahead takes exactly one child`);
    this.opts = parseOptions<Options>(OPTIONS, options, `translator ${name}`);
  }

  private get child(): Xlator { return this.children[0]; }

  private state(fd: Fd): RaFd {
    let s = fd.ctx.get(this) as RaFd | undefined;
    if (!s) {
      s = { fd, next: -1, seq: 0, pages: new Map() };
      fd.ctx.set(this, s);
      let set = this.byGfid.get(fd.gfid);
      if (!set) this.byGfid.set(fd.gfid, (set = new Set()));
      set.add(s);
    }
    return s;
  }

  private dropFile(gfid: string): void {
    for (const s of this.byGfid.get(gfid) ?? []) { s.pages.clear(); s.seq = 0; }
  }

  private prefetch(ctx: Ctx, s: RaFd, from: number): void {
    const ps = this.opts['page-size'];
    const first = Math.floor(from / ps) * ps;
    for (const [off] of s.pages) if (off + ps <= from) s.pages.delete(off);
    const bg: Ctx = { uid: ctx.uid, gid: ctx.gid, groups: ctx.groups, pid: ctx.pid };
    for (let i = 0; i < this.opts['page-count']; i++) {
      const off = first + i * ps;
      if (s.pages.has(off)) continue;
      // A failed read ahead is no error: the reader asks the child itself.
      s.pages.set(off, { off, data: this.child.read(bg, s.fd, off, ps).catch(() => null) });
    }
  }

  /** The range from cached pages, or null when one of them is missing or failed. */
  private async fromPages(s: RaFd, offset: number, size: number): Promise<Buffer | null> {
    const ps = this.opts['page-size'];
    const parts: Buffer[] = [];
    let at = offset;
    const end = offset + size;
    while (at < end) {
      const base = Math.floor(at / ps) * ps;
      const page = s.pages.get(base);
      if (!page) return null;
      const data = await page.data;
      if (!data || s.pages.get(base) !== page) return null;
      const slice = data.subarray(at - base, Math.min(data.length, end - base));
      if (slice.length) parts.push(slice);
      at = base + ps;
      if (data.length < ps) break; // end of file
    }
    return parts.length === 1 ? Buffer.from(parts[0]) : Buffer.concat(parts);
  }

  override async read(ctx: Ctx, fd: Fd, offset: number, size: number): Promise<Buffer> {
    if (!this.opts.enable) return this.child.read(ctx, fd, offset, size);
    const s = this.state(fd);
    if (offset === s.next) s.seq++;
    else { s.seq = 0; s.pages.clear(); }
    s.next = offset + size;
    if (s.seq === 0) return this.child.read(ctx, fd, offset, size);
    this.prefetch(ctx, s, offset);
    const hit = await this.fromPages(s, offset, size);
    if (hit) {
      this.hits++;
      return hit;
    }
    return this.child.read(ctx, fd, offset, size);
  }

  override async write(ctx: Ctx, fd: Fd, offset: number, data: Buffer) { this.dropFile(fd.gfid); try { return await this.child.write(ctx, fd, offset, data); } finally { this.dropFile(fd.gfid); } }
  override async ftruncate(ctx: Ctx, fd: Fd, size: number): Promise<Iatt> { this.dropFile(fd.gfid); try { return await this.child.ftruncate(ctx, fd, size); } finally { this.dropFile(fd.gfid); } }
  override async fallocate(ctx: Ctx, fd: Fd, mode: number, offset: number, len: number) { this.dropFile(fd.gfid); try { return await this.child.fallocate(ctx, fd, mode, offset, len); } finally { this.dropFile(fd.gfid); } }
  override async lk(ctx: Ctx, fd: Fd, cmd: LockCmd, lock: Flock) { this.dropFile(fd.gfid); return this.child.lk(ctx, fd, cmd, lock); }
  override async truncate(ctx: Ctx, loc: Loc, size: number): Promise<Iatt> {
    if (loc.gfid) this.dropFile(loc.gfid); else for (const g of this.byGfid.keys()) this.dropFile(g);
    return this.child.truncate(ctx, loc, size);
  }
  override async setattr(ctx: Ctx, loc: Loc, attrs: SetattrArgs): Promise<Iatt> {
    if (attrs.size !== undefined) for (const g of this.byGfid.keys()) this.dropFile(g);
    return this.child.setattr(ctx, loc, attrs);
  }

  override async release(ctx: Ctx, fd: Fd): Promise<void> {
    const s = fd.ctx.get(this) as RaFd | undefined;
    if (s) {
      fd.ctx.delete(this);
      const set = this.byGfid.get(fd.gfid);
      set?.delete(s);
      if (set?.size === 0) this.byGfid.delete(fd.gfid);
      // Let reads still on their way finish before the fd goes.
      await Promise.allSettled([...s.pages.values()].map((p) => p.data));
      s.pages.clear();
    }
    return this.child.release(ctx, fd);
  }
}

export function create(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext): Xlator {
  return new ReadAhead(name, options, children, xctx);
}
