// performance/read-ahead: when an fd reads sequentially, the next page-count pages of page-size
// bytes are read from the child in parallel before they are asked for (kept in flight as the
// reader moves on, never past the end of file a short page showed), and later reads are
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

interface Page { off: number; data: Promise<Buffer | null>; used: number }
/** next: where a sequential reader reads next (the furthest end read so far); eof: the end of
 *  the file as a short page showed it (nothing is read ahead past it). */
interface RaFd { fd: Fd; next: number; seq: number; eof: number; pages: Map<number, Page> }

export class ReadAhead extends PassThrough implements Xlator {
  readonly opts: Options;
  /** Open fds per gfid, to drop every fd's pages on a change of the file. */
  private readonly byGfid = new Map<string, Set<RaFd>>();
  hits = 0;
  /** Pages asked of the child (for tests). */
  fetched = 0;

  constructor(name: string, options: Record<string, unknown>, children: Xlator[], _xctx?: XlatorContext) {
    super(name, 'performance/read-ahead', children);
    if (children.length !== 1) throw new FsError('EINVAL', `translator ${name}: read-ahead takes exactly one child`);
    this.opts = parseOptions<Options>(OPTIONS, options, `translator ${name}`);
  }

  private get child(): Xlator { return this.children[0]; }

  private state(fd: Fd): RaFd {
    let s = fd.ctx.get(this) as RaFd | undefined;
    if (!s) {
      s = { fd, next: -1, seq: 0, eof: Infinity, pages: new Map() };
      fd.ctx.set(this, s);
      let set = this.byGfid.get(fd.gfid);
      if (!set) this.byGfid.set(fd.gfid, (set = new Set()));
      set.add(s);
    }
    return s;
  }

  private dropFile(gfid: string): void {
    for (const s of this.byGfid.get(gfid) ?? []) { s.pages.clear(); s.seq = 0; s.eof = Infinity; }
  }

  /** Keeps page-count pages in flight from the page holding `from` on; pages far behind go. */
  private prefetch(ctx: Ctx, s: RaFd, from: number): void {
    const ps = this.opts['page-size'];
    const count = this.opts['page-count'];
    const first = Math.floor(from / ps) * ps;
    for (const [off] of s.pages) if (off + ps * (count + 1) <= from || off >= s.eof) s.pages.delete(off);
    const bg: Ctx = { uid: ctx.uid, gid: ctx.gid, groups: ctx.groups, pid: ctx.pid };
    for (let i = 0; i < count; i++) {
      const off = first + i * ps;
      if (off >= s.eof) break;
      if (s.pages.has(off)) continue;
      this.fetched++;
      // A failed read ahead is no error: the reader asks the child itself.
      const page: Page = { off, data: Promise.resolve(null), used: 0 };
      page.data = this.child.read(bg, s.fd, off, ps).then((d) => {
        if (d.length < ps && s.pages.get(off) === page) s.eof = Math.min(s.eof, off + d.length);
        return d;
      }, () => null);
      s.pages.set(off, page);
    }
  }

  /** The range from cached pages, or null when one of them is missing or failed. A page whose
   *  every byte was handed out goes (a sequential reader does not come back for it). */
  private async fromPages(s: RaFd, offset: number, size: number): Promise<Buffer | null> {
    const ps = this.opts['page-size'];
    const parts: Buffer[] = [];
    const used: Page[] = [];
    let at = offset;
    const end = offset + size;
    while (at < end) {
      const base = Math.floor(at / ps) * ps;
      const page = s.pages.get(base);
      if (!page) return null;
      const data = await page.data;
      if (!data || s.pages.get(base) !== page) return null;
      const slice = data.subarray(at - base, Math.min(data.length, end - base));
      if (slice.length) { parts.push(slice); used.push(page); }
      at = base + ps;
      if (data.length < ps) break; // end of file
    }
    for (let i = 0; i < used.length; i++) {
      const p = used[i];
      p.used += parts[i].length;
      if (p.used >= ps && s.pages.get(p.off) === p) s.pages.delete(p.off);
    }
    // Pages are never written into once read: hand out views, not copies.
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  override async read(ctx: Ctx, fd: Fd, offset: number, size: number): Promise<Buffer> {
    if (!this.opts.enable) return this.child.read(ctx, fd, offset, size);
    const s = this.state(fd);
    // The kernel sends a sequential reader's READs several at once, and they may arrive out of
    // order: a read where the last one ended, or one inside a page already read ahead, is
    // sequential; another read nearby leaves the pages be; a read far away drops them.
    const ps = this.opts['page-size'];
    const end = offset + size;
    const near = s.next >= 0 && Math.abs(offset - s.next) <= ps * this.opts['page-count'];
    if (offset === s.next || (near && s.seq > 0 && s.pages.has(Math.floor(offset / ps) * ps))) {
      s.seq++;
      s.next = Math.max(s.next, end);
    } else if (near) {
      s.next = s.seq > 0 ? Math.max(s.next, end) : end;
    } else {
      s.seq = 0;
      s.pages.clear();
      s.next = end;
    }
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
