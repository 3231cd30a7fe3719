// performance/md-cache: a bounded, timed cache (lru-cache) of attributes and of the presence of a
// few extended attributes the kernel asks for on every file (security.*, POSIX ACLs: `ls -l` asks
// each of them once per entry), filled by lookup, stat and readdirp and by the attributes that
// create, symlink, mknod, link, setattr and truncate answer. An entry operation keeps its
// directory's attributes, updated as it changed them (times, link count), so the kernel's refresh
// of the directory after each create or unlink costs no round trip; other changes drop what they
// touch. Changes by other clients come from the bricks (upcalls, GlusterFS's cache-invalidation):
// what they name is dropped at once, so metadata can be kept `timeout` (600 s) seconds; where a
// brick sends none, or cache-invalidation is off, changes by others show after at most 1 s
// (`timeout` when set). A brick whose session ends may have missed telling: all is dropped.
// A directory's listing (its names, in the order readdirp gave them) is kept the same way: while
// every entry's attributes are cached too, a readdirp is answered without a round trip (`ls` and
// a program's scans of a directory it works in); this client's own entry operations there edit
// it, an upcall about the directory or one of its entries drops it. An answer read while its path
// changed is not cached (each drop is a tick of a clock kept per path while reads are in flight).
import { LRUCache } from 'lru-cache';
import { FsError, toErrno } from '../../../../common/errors.js';
import { cacheTtlMs, PassThrough, type UpcallEvent, type Xlator, type XlatorEvent } from '../../../../common/fops.js';
import { parseOptions, type OptionDef } from '../../../../common/options.js';
import {
  basename, dirname, isDir, joinPath, O_TRUNC,
  type CreateArgs, type Ctx, type Dirent, type Fd, type Iatt, type Loc, type LookupReply, type Nanos, type SetattrArgs,
} from '../../../../common/types.js';
import type { Logger } from '../../../../common/log.js';
import type { XlatorContext } from '../../registry.js';

export const OPTIONS: readonly OptionDef[] = [
  { key: 'enable', type: 'bool', default: true, description: 'cache attributes and xattr presence; off passes everything through' },
  { key: 'timeout', type: 'time', default: 600, min: 0, max: 600, description: 'seconds cached metadata stays valid while the bricks tell of other clients\' changes (without that: 1 s unless set)' },
  { key: 'cache-invalidation', type: 'bool', default: true, description: 'drop what the bricks say another client changed, and so keep the rest for timeout' },
  { key: 'max-entries', type: 'int', default: 100_000, min: 16, max: 10_000_000, description: 'most entries kept' },
  { key: 'cache-xattrs', type: 'bool', default: true, description: 'fetch and cache the presence of security.* and POSIX ACL xattrs with lookups and listings' },
  { key: 'listings', type: 'bool', default: true, description: 'answer a directory listing from the cache while its names and every entry\'s attributes are cached' },
];

interface Options { enable: boolean; timeout: number; 'max-entries': number; 'cache-xattrs': boolean; 'cache-invalidation': boolean; listings: boolean }

/** Seconds metadata is trusted when no brick tells of other clients' changes (GlusterFS's
 *  md-cache-timeout default). */
const UNTOLD_TIMEOUT = 1;

/** Asked of every file by ls -l, cp -a and the kernel's write path; almost always absent. */
export const CACHED_XATTRS = ['security.selinux', 'security.capability', 'system.posix_acl_access', 'system.posix_acl_default'];

interface Entry {
  gfid: string;
  /** Dropped by data changes (write, truncate), which leave the xattrs as they were. */
  iatt?: Iatt;
  /** Values of CACHED_XATTRS, null when absent; undefined when not known. */
  xattrs?: Map<string, Buffer | null>;
}


/** What an entry operation changed in its directories: the time, each one's link count delta
 *  (null: not known) and the entries it made or removed ([path, present]). */
interface EntryChange { when: Nanos; nlink: (dir: string) => number | null; names: [string, boolean][] }

export class MdCache extends PassThrough implements Xlator {
  readonly opts: Options;
  private readonly cache: LRUCache<string, Entry>;
  /** Directory path -> its names as the last whole readdirp gave them. */
  private readonly lists: LRUCache<string, string[]>;
  private xattrNames: string[];
  /** The timeout set explicitly: kept even without upcalls. */
  private readonly timeoutGiven: boolean;
  /** Gfids cached with several names: an upcall on one drops them all. */
  private readonly linked = new Set<string>();
  hits = 0;
  /** Readdirps answered from the cache. */
  listHits = 0;
  /** A brick below is down: listings are not kept. */
  private degraded = false;

  private readonly log?: Logger;

  constructor(name: string, options: Record<string, unknown>, children: Xlator[], xctx?: XlatorContext) {
    super(name, 'performance/md-cache', children);
    this.log = xctx?.log;
    if (children.length !== 1) throw new FsError('EINVAL', `translator ${name}: md-cache takes exactly one child`);
    this.opts = parseOptions<Options>(OPTIONS, options, `translator ${name}`);
    this.timeoutGiven = options.timeout !== undefined;
    this.cache = new LRUCache({ max: this.opts['max-entries'], ttl: this.ttlMs(this.opts['cache-invalidation']) });
    // Bounded by names held, as the attributes are by entries (a larger listing cannot hit anyway).
    this.lists = new LRUCache({ maxSize: this.opts['max-entries'], sizeCalculation: (names) => Math.max(1, names.length), ttl: this.cache.ttl });
    this.xattrNames = this.opts['cache-xattrs'] ? CACHED_XATTRS : [];
  }

  private get child(): Xlator { return this.children[0]; }
  private get on(): boolean { return this.opts.enable && this.opts.timeout > 0; }

  private ttlMs(told: boolean): number {
    return cacheTtlMs(this.opts.timeout, UNTOLD_TIMEOUT, told, this.timeoutGiven);
  }

  /** How long entries are kept now, in ms. */
  get ttl(): number { return this.cache.ttl; }

  private set(path: string, e: Entry): void {
    if (e.iatt && e.iatt.nlink > 1 && !isDir(e.iatt.mode)) this.linked.add(e.gfid);
    this.cache.set(path, e);
  }

  override notify(event: XlatorEvent, from: Xlator): void {
    if (typeof event === 'object') this.upcall(event);
    else {
      // While a brick below is down a listing may lack its names; after, it may have more.
      this.markAll();
      this.lists.clear();
      this.degraded = event === 'child-down';
    }
    super.notify(event, from);
  }

  /** What a brick said another client changed goes (and its directory's attributes: they changed
   *  with any entry, and the brick tells of the directory no more until it is looked at again). */
  private upcall(event: UpcallEvent): void {
    if (event.unsupported && this.cache.ttl > this.ttlMs(false)) {
      this.cache.ttl = this.lists.ttl = this.ttlMs(false);
      this.log?.info({ ms: this.cache.ttl }, 'a brick sends no upcalls: metadata cached for less');
    }
    if (event.all) {
      this.markAll();
      this.cache.clear();
      this.lists.clear();
      this.linked.clear();
      return;
    }
    if (!this.opts['cache-invalidation']) return;
    for (const c of event.changes) {
      if (c.tree) this.dropTree(c.path);
      else this.drop(c.path);
      this.drop(dirname(c.path));
      this.lists.delete(c.path);
      this.lists.delete(dirname(c.path));
      if (c.gfid && this.linked.has(c.gfid)) this.dropLinks(c.gfid, []);
    }
  }

  // --- filling ---

  /** The invalidation clock: every drop is a tick. An answer is not cached for a path dropped
   *  (or everything dropped) after the answer's read began: it may be stale. The tick of each
   *  path is kept only while reads are in flight. */
  private tick = 0;
  private reading = 0;
  private readonly droppedAt = new Map<string, number>();
  private allDroppedAt = 0;

  private mark(path: string): void {
    this.tick++;
    if (!this.reading) return;
    // Reads never all done at once (a busy mount): past a bound, everything counts as dropped.
    if (this.droppedAt.size >= 10_000) { this.droppedAt.clear(); this.markAll(); return; }
    this.droppedAt.set(path, this.tick);
  }

  private markAll(): void {
    this.allDroppedAt = ++this.tick;
  }

  /** Runs a read that may fill the cache; `since` is its start on the clock. */
  private async reads<T>(run: (since: number) => Promise<T>): Promise<T> {
    this.reading++;
    try {
      return await run(this.tick);
    } finally {
      if (--this.reading === 0) this.droppedAt.clear();
    }
  }

  private unchanged(path: string, since: number): boolean {
    return this.allDroppedAt <= since && (this.droppedAt.get(path) ?? 0) <= since;
  }

  private put(path: string, iatt: Iatt, xattrs: Record<string, Buffer> | undefined, since: number): void {
    if (!this.unchanged(path, since)) return;
    const e: Entry = { gfid: iatt.gfid, iatt };
    if (xattrs && this.xattrNames.length) e.xattrs = new Map(this.xattrNames.map((n) => [n, xattrs[n] ?? null]));
    this.set(path, e);
  }

  private want(xattrs: string[] | undefined): string[] {
    if (!this.xattrNames.length) return xattrs ?? [];
    return [...new Set([...(xattrs ?? []), ...this.xattrNames])];
  }

  /** Keeps only the names the caller asked for. */
  private static pick(all: Record<string, Buffer>, asked: string[] | undefined): Record<string, Buffer> {
    const out: Record<string, Buffer> = {};
    for (const n of asked ?? []) if (all[n]) out[n] = all[n];
    return out;
  }

  /** A brick file system without security/ACL xattrs refuses the names: stop asking for them. */
  private async withXattrs<T>(run: (names: string[]) => Promise<T>, asked: string[] | undefined): Promise<T> {
    try {
      return await run(this.want(asked));
    } catch (e) {
      const errno = toErrno(e);
      if (!this.xattrNames.length || (errno !== 'EOPNOTSUPP' && errno !== 'ENOTSUP' && errno !== 'EPERM')) throw e;
      this.xattrNames = [];
      return run(asked ?? []);
    }
  }

  // --- dropping ---

  private drop(path: string): void {
    this.mark(path);
    this.cache.delete(path);
  }

  private dropTree(path: string): void {
    this.markAll();
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const k of [...this.cache.keys()]) if (k === path || k.startsWith(prefix)) this.cache.delete(k);
    for (const k of [...this.lists.keys()]) if (k === path || k.startsWith(prefix)) this.lists.delete(k);
  }

  private dropFd(fd: Fd): void {
    this.mark(fd.loc.path);
    const e = this.cache.get(fd.loc.path);
    if (!e) return;
    // The kernel asks for security.capability before every write: keep the xattrs, drop the iatt.
    const links = e.iatt?.nlink ?? 1;
    e.iatt = undefined;
    // Other names of the same inode (hard links) hold the same attributes.
    if (links > 1) {
      this.markAll();
      for (const o of this.cache.values()) if (o.gfid === fd.gfid) o.iatt = undefined;
    }
  }

  // --- reads of metadata ---

  override async lookup(ctx: Ctx, loc: Loc, xattrs?: string[]): Promise<LookupReply> {
    if (!this.on) return this.child.lookup(ctx, loc, xattrs);
    const e = this.cache.get(loc.path);
    if (e?.iatt && (!loc.gfid || loc.gfid === e.iatt.gfid) && (!xattrs?.length || (e.xattrs && xattrs.every((n) => e.xattrs!.has(n))))) {
      this.hits++;
      const out: Record<string, Buffer> = {};
      for (const n of xattrs ?? []) { const v = e.xattrs?.get(n); if (v) out[n] = v; }
      return { iatt: e.iatt, xattrs: out };
    }
    const r = await this.reads(async (since) => {
      const got = await this.withXattrs((names) => this.child.lookup(ctx, loc, names), xattrs);
      this.put(loc.path, got.iatt, got.xattrs, since);
      return got;
    });
    return { iatt: r.iatt, xattrs: MdCache.pick(r.xattrs, xattrs) };
  }

  override async stat(ctx: Ctx, loc: Loc): Promise<Iatt> {
    if (!this.on) return this.child.stat(ctx, loc);
    const e = this.cache.get(loc.path);
    if (e?.iatt && (!loc.gfid || loc.gfid === e.iatt.gfid)) {
      this.hits++;
      return e.iatt;
    }
    return this.reads(async (since) => {
      const iatt = await this.child.stat(ctx, loc);
      const old = this.cache.get(loc.path);
      if (this.unchanged(loc.path, since)) this.set(loc.path, { gfid: iatt.gfid, iatt, xattrs: old?.gfid === iatt.gfid ? old.xattrs : undefined });
      return iatt;
    });
  }

  override async readdirp(ctx: Ctx, loc: Loc, xattrs?: string[]): Promise<Dirent[]> {
    if (!this.on) return this.child.readdirp(ctx, loc, xattrs);
    const cached = this.listed(loc.path, xattrs);
    if (cached) {
      this.listHits++;
      return cached;
    }
    const list = await this.reads(async (since) => {
      const got = await this.withXattrs((names) => this.child.readdirp(ctx, loc, names), xattrs);
      for (const d of got) this.put(joinPath(loc.path, d.name), d.iatt, d.xattrs, since);
      if (this.opts.listings && !this.degraded && this.unchanged(loc.path, since)) this.lists.set(loc.path, got.map((d) => d.name));
      return got;
    });
    if (!this.xattrNames.length) return list;
    return list.map((d) => ({ ...d, xattrs: MdCache.pick(d.xattrs, xattrs) }));
  }

  /** The listing of dir from the cache: its names, each with attributes and the asked xattrs. */
  private listed(dir: string, xattrs: string[] | undefined): Dirent[] | undefined {
    const names = this.lists.get(dir);
    if (!names) return undefined;
    const out: Dirent[] = [];
    for (const name of names) {
      const e = this.cache.get(joinPath(dir, name));
      if (!e?.iatt || (xattrs?.length && !(e.xattrs && xattrs.every((n) => e.xattrs!.has(n))))) return undefined;
      const x: Record<string, Buffer> = {};
      for (const n of xattrs ?? []) { const v = e.xattrs?.get(n); if (v) x[n] = v; }
      out.push({ name, iatt: e.iatt, xattrs: x });
    }
    return out;
  }

  override async getxattr(ctx: Ctx, loc: Loc, name: string): Promise<Buffer> {
    if (this.on) {
      const e = this.cache.get(loc.path);
      const v = e?.xattrs?.get(name);
      if (v !== undefined && (!loc.gfid || loc.gfid === e?.gfid)) {
        this.hits++;
        if (v === null) throw new FsError('ENODATA', `${loc.path}: no ${name}`);
        return Buffer.from(v);
      }
    }
    if (!this.on || !this.xattrNames.includes(name)) return this.child.getxattr(ctx, loc, name);
    // A miss on a name the kernel asks before every write (security.capability): remember the
    // answer, else each write after the entry expired costs a round trip of its own.
    return this.reads(async (since) => {
      try {
        const v = await this.child.getxattr(ctx, loc, name);
        this.noteXattr(loc, name, Buffer.from(v), since);
        return v;
      } catch (e) {
        if (toErrno(e) === 'ENODATA') this.noteXattr(loc, name, null, since);
        throw e;
      }
    });
  }

  private noteXattr(loc: Loc, name: string, value: Buffer | null, since: number): void {
    if (!this.unchanged(loc.path, since)) return;
    let e = this.cache.get(loc.path);
    if (!e) {
      if (!loc.gfid) return;
      e = { gfid: loc.gfid };
      this.cache.set(loc.path, e);
    }
    if (loc.gfid && e.gfid !== loc.gfid) return;
    (e.xattrs ??= new Map()).set(name, value);
  }

  // --- changes: keep what they tell, drop what they touch ---

  /** Drops the attributes of other cached names of a hard-linked inode (they changed with it). */
  private dropLinks(gfid: string, keep: string[]): void {
    this.markAll();
    for (const [k, o] of this.cache.entries()) if (o.gfid === gfid && !keep.includes(k)) o.iatt = undefined;
  }

  /** Caches the complete attributes an operation answered; xattrs: what is known of CACHED_XATTRS. */
  private keep(path: string, iatt: Iatt, xattrs: Map<string, Buffer | null> | undefined): void {
    this.set(path, { gfid: iatt.gfid, iatt, xattrs });
    if (iatt.nlink > 1 && !isDir(iatt.mode)) this.dropLinks(iatt.gfid, [path]);
  }

  /**
   * Runs an operation on the entries `paths` in the directories `dirs`. The entries' cached
   * attributes are dropped before and after it (and every answer that started before either is not
   * cached: the clock). On success each directory keeps its cached attributes, with mtime and ctime moved
   * to the change time and nlink moved by the delta `change` gives it (null: not known, so dropped),
   * as GlusterFS's md-cache keeps the postparent of an entry fop; the directory's size is left as it
   * was (bricks differ in how they count it). A directory whose attributes were replaced while the
   * operation ran (a stat that read them meanwhile) is dropped: they may or may not show the change.
   * Its listing is kept with the names the operation made or removed, unless anything else changed
   * the directory meanwhile. On failure the entries and the directories are dropped.
   */
  private async entryOp<T>(
    paths: string[], dirs: string[], run: () => Promise<T>,
    change: (r: T) => EntryChange | null,
  ): Promise<T> {
    const uniq = [...new Set(dirs)];
    // With the time each has left: kept up to date, a listing still shows others' changes in time.
    const lists = uniq.map((d) => { const names = this.lists.get(d); return names && { names, ttl: this.lists.getRemainingTTL(d) }; });
    const touch = () => {
      for (const p of paths) this.drop(p);
      for (const d of uniq) { this.mark(d); this.lists.delete(d); }
    };
    return this.reads(async () => {
      touch();
      const since = this.tick;
      const before = uniq.map((d) => this.cache.get(d)?.iatt);
      let r: T;
      try {
        r = await run();
      } catch (e) {
        touch();
        for (const d of uniq) this.cache.delete(d);
        throw e;
      }
      // Listings nothing else changed meanwhile: kept, with the names this operation changed.
      const calm = uniq.map((d) => this.unchanged(d, since));
      touch();
      const c = change(r);
      uniq.forEach((d, i) => {
        const l = lists[i];
        if (l && l.ttl > 0 && calm[i] && !this.degraded) this.lists.set(d, c ? MdCache.edited(d, l.names, c.names) : l.names, { ttl: l.ttl });
        const e = this.cache.get(d);
        if (!e?.iatt || !c) return; // nothing cached, or nothing changed there
        const nlink = c.nlink(d);
        if (nlink === null || e.iatt !== before[i] || !isDir(e.iatt.mode)) { this.cache.delete(d); return; }
        const later = (a: Nanos) => (a > c.when ? a : c.when);
        // In place: the entry keeps the time it was fetched, so changes by others still show after `timeout`.
        e.iatt = { ...e.iatt, mtime: later(e.iatt.mtime), ctime: later(e.iatt.ctime), nlink: e.iatt.nlink + nlink };
      });
      return r;
    });
  }

  /** names of dir with the entries `changes` made ([path, present]) or removed. */
  private static edited(dir: string, names: string[], changes: [string, boolean][]): string[] {
    let out = names;
    for (const [path, present] of changes) {
      if (dirname(path) !== dir) continue;
      const name = basename(path);
      out = out.filter((n) => n !== name);
      if (present) out.push(name);
    }
    return out;
  }

  /** The change time of an operation whose reply has no new inode: this client's clock, as
   *  GlusterFS's ctime feature uses. */
  private static now(): Nanos {
    return BigInt(Date.now()) * 1_000_000n;
  }

  private static same = () => 0;

  override async create(ctx: Ctx, loc: Loc, flags: number, args: CreateArgs): Promise<{ fd: Fd; iatt: Iatt }> {
    if (!this.on) return this.child.create(ctx, loc, flags, args);
    let made = false;
    const r = await this.entryOp([loc.path], [dirname(loc.path)], () => this.child.create(ctx, loc, flags, args), (res) => {
      made = res.iatt.gfid === args.gfid;
      return made ? { when: res.iatt.ctime, nlink: MdCache.same, names: [[loc.path, true]] } : null; // an existing file opened: the directory did not change
    });
    // A new file has no security or ACL xattrs but those it was created with (the kernel asks).
    if (made) this.keep(loc.path, r.iatt, this.xattrNames.length ? new Map(this.xattrNames.map((n) => [n, args.xattrs?.[n] ?? null])) : undefined);
    else if (flags & O_TRUNC) this.dropInode(loc.path, r.iatt.gfid); // an existing file, cut
    return r;
  }

  override async open(ctx: Ctx, loc: Loc, flags: number): Promise<Fd> {
    if (flags & O_TRUNC) this.dropInode(loc.path, loc.gfid);
    const fd = await this.child.open(ctx, loc, flags);
    if (flags & O_TRUNC) this.dropInode(loc.path, fd.gfid);
    return fd;
  }

  /** A truncating open: the attributes change under every name of the inode (fsx: create with
   *  O_TRUNC of d1/f3 left its link d0/f1 at the old size). */
  private dropInode(path: string, gfid?: string): void {
    const e = this.cache.get(path);
    const g = gfid ?? e?.gfid;
    const links = e?.iatt?.nlink;
    this.drop(path);
    if (g && (links === undefined || links > 1)) this.dropLinks(g, []);
  }

  /** setattr, truncate: the answer is the inode's attributes after the change. */
  private async inodeOp(path: string, run: () => Promise<Iatt>): Promise<Iatt> {
    const old = this.cache.get(path);
    this.drop(path);
    let iatt: Iatt;
    try {
      iatt = await run();
    } catch (e) {
      this.drop(path);
      throw e;
    }
    this.drop(path);
    // distribute answers a directory's setattr from one copy (sizes not summed, times of one brick):
    // a directory is looked up afresh instead.
    if (!this.on || isDir(iatt.mode)) return iatt;
    // chmod rewrites an ACL, chown removes security.capability: only what was absent stays known.
    const absent = old?.gfid === iatt.gfid && old.xattrs ? new Map([...old.xattrs].filter(([, v]) => v === null)) : undefined;
    this.keep(path, iatt, absent);
    return iatt;
  }

  private async dropOp<T>(path: string, run: () => Promise<T>): Promise<T> {
    this.drop(path);
    try {
      return await run();
    } finally {
      this.drop(path);
    }
  }

  private async fdOp<T>(fd: Fd, run: () => Promise<T>): Promise<T> {
    this.dropFd(fd);
    try {
      return await run();
    } finally {
      this.dropFd(fd);
    }
  }

  override async mkdir(ctx: Ctx, loc: Loc, args: CreateArgs) {
    // The new directory's attributes are not kept: distribute answers a mkdir from one copy (size
    // and times of one brick), where a lookup merges every copy.
    return this.entryOp([loc.path], [dirname(loc.path)], () => this.child.mkdir(ctx, loc, args), (iatt) => ({ when: iatt.ctime, nlink: () => 1, names: [[loc.path, true]] }));
  }

  override async symlink(ctx: Ctx, target: string, loc: Loc, args: CreateArgs) {
    const iatt = await this.entryOp([loc.path], [dirname(loc.path)], () => this.child.symlink(ctx, target, loc, args), (i) => ({ when: i.ctime, nlink: MdCache.same, names: [[loc.path, true]] }));
    if (this.on) this.keep(loc.path, iatt, undefined);
    return iatt;
  }

  override async mknod(ctx: Ctx, loc: Loc, rdev: number, args: CreateArgs) {
    const iatt = await this.entryOp([loc.path], [dirname(loc.path)], () => this.child.mknod(ctx, loc, rdev, args), (i) => ({ when: i.ctime, nlink: MdCache.same, names: [[loc.path, true]] }));
    if (this.on) this.keep(loc.path, iatt, undefined);
    return iatt;
  }

  override async unlink(ctx: Ctx, loc: Loc) {
    const known = this.cache.get(loc.path);
    const old = known?.iatt;
    const gfid = old?.gfid ?? loc.gfid ?? known?.gfid;
    try {
      await this.entryOp([loc.path], [dirname(loc.path)], () => this.child.unlink(ctx, loc), () => ({ when: MdCache.now(), nlink: MdCache.same, names: [[loc.path, false]] }));
    } finally {
      // The inode's other names lost a link (and its ctime changed); with its link count not
      // known here, any other name of it may be cached.
      if (gfid && (!old || old.nlink > 1)) this.dropLinks(gfid, []);
      else if (!gfid) {
        this.markAll();
        for (const o of this.cache.values()) if (o.iatt && o.iatt.nlink > 1 && !isDir(o.iatt.mode)) o.iatt = undefined;
      }
    }
  }

  override async rmdir(ctx: Ctx, loc: Loc) {
    try {
      await this.entryOp([loc.path], [dirname(loc.path)], () => this.child.rmdir(ctx, loc), () => ({ when: MdCache.now(), nlink: () => -1, names: [[loc.path, false]] }));
    } finally {
      this.dropTree(loc.path);
    }
  }

  override async link(ctx: Ctx, from: Loc, to: Loc) {
    const iatt = await this.entryOp([from.path, to.path], [dirname(to.path)], () => this.child.link(ctx, from, to), (i) => ({ when: i.ctime, nlink: MdCache.same, names: [[to.path, true]] }));
    if (this.on && !isDir(iatt.mode)) {
      for (const p of [from.path, to.path]) this.set(p, { gfid: iatt.gfid, iatt });
      this.dropLinks(iatt.gfid, [from.path, to.path]);
    }
    return iatt;
  }

  override async rename(ctx: Ctx, from: Loc, to: Loc) {
    const src = this.cache.get(from.path)?.iatt;
    const dst = this.cache.get(to.path)?.iatt;
    const tree = !src || isDir(src.mode);
    const fromDir = dirname(from.path);
    const toDir = dirname(to.path);
    // A file moves no ".." link; a directory takes one from its old parent and gives one to the
    // new, less the one of an (empty) directory it replaces. Not knowing what moved: unknown.
    const delta = (d: string): number | null => {
      if (!src) return null;
      if (!isDir(src.mode)) return 0;
      let n = d === fromDir ? -1 : 0;
      if (d === toDir) {
        if (!dst) return null; // whether it replaced a directory is not known
        n += isDir(dst.mode) ? 0 : 1;
      }
      return n;
    };
    try {
      await this.entryOp([from.path, to.path], [fromDir, toDir], () => this.child.rename(ctx, from, to), () => ({ when: MdCache.now(), nlink: delta, names: [[from.path, false], [to.path, true]] }));
    } finally {
      if (tree) { this.dropTree(from.path); this.dropTree(to.path); }
      if (src && src.nlink > 1 && !isDir(src.mode)) this.dropLinks(src.gfid, []);
      // A file it replaced lost a link: its other names are stale (fsx: link(f2, d1/f1), then
      // rename(f3, f2) left d1/f1 at two links). Not knowing what it replaced: any linked file.
      const victim = dst?.gfid ?? to.gfid;
      const replacedDir = dst !== undefined && isDir(dst.mode); // an empty directory: no other name
      if (victim && !replacedDir) {
        if (!dst || dst.nlink > 1) this.dropLinks(victim, []);
      } else if (!replacedDir) {
        this.markAll();
        for (const o of this.cache.values()) if (o.iatt && o.iatt.nlink > 1 && !isDir(o.iatt.mode)) o.iatt = undefined;
      }
    }
  }

  override setattr(ctx: Ctx, loc: Loc, attrs: SetattrArgs) { return this.inodeOp(loc.path, () => this.child.setattr(ctx, loc, attrs)); }
  override truncate(ctx: Ctx, loc: Loc, size: number) { return this.inodeOp(loc.path, () => this.child.truncate(ctx, loc, size)); }
  override setxattr(ctx: Ctx, loc: Loc, name: string, value: Buffer, flags: number) { return this.dropOp(loc.path, () => this.child.setxattr(ctx, loc, name, value, flags)); }
  override removexattr(ctx: Ctx, loc: Loc, name: string) { return this.dropOp(loc.path, () => this.child.removexattr(ctx, loc, name)); }
  override xattrop(ctx: Ctx, loc: Loc, name: string, add: Buffer) { return this.dropOp(loc.path, () => this.child.xattrop(ctx, loc, name, add)); }

  override write(ctx: Ctx, fd: Fd, offset: number, data: Buffer) { return this.fdOp(fd, () => this.child.write(ctx, fd, offset, data)); }
  override ftruncate(ctx: Ctx, fd: Fd, size: number) { return this.fdOp(fd, () => this.child.ftruncate(ctx, fd, size)); }
  override fallocate(ctx: Ctx, fd: Fd, mode: number, offset: number, len: number) { return this.fdOp(fd, () => this.child.fallocate(ctx, fd, mode, offset, len)); }
  override flush(ctx: Ctx, fd: Fd) { return this.fdOp(fd, () => this.child.flush(ctx, fd)); }
  override fsync(ctx: Ctx, fd: Fd, datasync: boolean) { return this.fdOp(fd, () => this.child.fsync(ctx, fd, datasync)); }
}

export function create(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext): Xlator {
  return new MdCache(name, options, children, xctx);
}
