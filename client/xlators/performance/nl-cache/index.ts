// performance/nl-cache: a negative-lookup cache (GlusterFS's performance/nl-cache). When this client
// knows every name of a directory (it made the directory, or it read a whole listing with readdirp),
// a lookup of a name not among them fails with ENOENT without a round trip: the lookup the kernel
// sends before each create, mkdir or rename target in a new or listed directory. The client's own
// creates, mkdirs, links, renames and removals keep the list current; a failure or a change it cannot
// follow (a lookup that finds a name not in the list, an existing file where create made none) drops
// what it knew of that directory. Names made by other clients drop the directory's list as a brick
// tells of them (upcall, GlusterFS's cache-invalidation), so a list is trusted for `timeout` (600 s);
// without upcalls names made by others show after at most 5 s (`timeout` when set).
// When the list of a directory it knew has expired and a lookup there finds nothing (a burst of
// creates that outlasts the timeout), the directory is listed again in the background, so the
// lookups after it need no round trip either.
import { LRUCache } from 'lru-cache';
import { FsError, toErrno } from '../../../../common/errors.js';
import { cacheTtlMs, PassThrough, type UpcallEvent, type Xlator, type XlatorEvent } from '../../../../common/fops.js';
import { parseOptions, type OptionDef } from '../../../../common/options.js';
import {
  basename, dirname,
  type CreateArgs, type Ctx, type Dirent, type Fd, type Iatt, type Loc, type LookupReply,
} from '../../../../common/types.js';
import type { Logger } from '../../../../common/log.js';
import type { XlatorContext } from '../../registry.js';

export const OPTIONS: readonly OptionDef[] = [
  { key: 'enable', type: 'bool', default: true, description: 'answer lookups of names known to be absent; off passes everything through' },
  { key: 'timeout', type: 'time', default: 600, min: 0, max: 600, description: 'seconds a directory\'s list of names stays trusted while the bricks tell of other clients\' changes (without that: 5 s unless set)' },
  { key: 'cache-invalidation', type: 'bool', default: true, description: 'forget a directory\'s list when a brick says another client changed it, and so trust lists for timeout' },
  { key: 'limit', type: 'int', default: 100_000, min: 16, max: 10_000_000, description: 'most names kept, over all directories; a directory with more is not tracked' },
];

interface Options { enable: boolean; timeout: number; limit: number; 'cache-invalidation': boolean }

/** Seconds a list is trusted when no brick tells of other clients' changes. */
const UNTOLD_TIMEOUT = 5;

/** What this client knows of one directory: all of its names. */
interface Known { names: Set<string> }

/** A background re-listing: this client's own changes meanwhile, applied over what it lists. */
interface Refresh { changes: [string, boolean][]; dead: boolean }

export class NlCache extends PassThrough implements Xlator {
  readonly opts: Options;
  private readonly dirs: LRUCache<string, Known>;
  /** Lookups answered ENOENT without the child. */
  hits = 0;
  /** Bumped by every entry operation: a listing that started before one is not trusted. */
  private gen = 0;
  /** A brick below is down: listings may be partial. */
  private degraded = false;
  /** Directories known lately (their lists may have expired): re-listed when busy. */
  private readonly recent = new LRUCache<string, true>({ max: 1024 });
  private readonly refreshing = new Map<string, Refresh>();
  /** Background re-listings done. */
  refreshes = 0;

  private readonly log?: Logger;
  /** The timeout set explicitly: kept even without upcalls. */
  private readonly timeoutGiven: boolean;

  constructor(name: string, options: Record<string, unknown>, children: Xlator[], xctx?: XlatorContext) {
    super(name, 'performance/nl-cache', children);
    if (children.length !== 1) throw new FsError('EINVAL', `translator ${name}: nl-cache takes exactly one child`);
    this.opts = parseOptions<Options>(OPTIONS, options, `translator ${name}`);
    this.log = xctx?.log;
    this.timeoutGiven = options.timeout !== undefined;
    this.dirs = new LRUCache({
      maxSize: this.opts.limit,
      sizeCalculation: (k) => Math.max(1, k.names.size),
      ttl: this.ttlMs(this.opts['cache-invalidation']),
    });
  }

  private ttlMs(told: boolean): number {
    return cacheTtlMs(this.opts.timeout, UNTOLD_TIMEOUT, told, this.timeoutGiven);
  }

  /** How long lists are trusted now, in ms. */
  get ttl(): number { return this.dirs.ttl; }

  private get child(): Xlator { return this.children[0]; }
  private get on(): boolean { return this.opts.enable && this.opts.timeout > 0; }

  /** The names of a directory, when known and not expired. */
  private known(dir: string): Known | undefined {
    return this.on ? this.dirs.get(dir) : undefined;
  }

  /** Starts knowing a directory's names (for `timeout` from now); too many names: not tracked. */
  private learn(dir: string, names: Iterable<string>): void {
    if (this.degraded) return;
    const k: Known = { names: new Set(names) };
    if (k.names.size > this.opts.limit) { this.forget(dir); return; }
    this.dirs.set(dir, k);
    this.recent.set(dir, true);
  }

  /** Lists an expired directory again; own changes made meanwhile are applied over the listing
   *  (an operation that failed, or anything forgotten meanwhile, leaves it unlearnt). */
  private refresh(ctx: Ctx, dir: string): void {
    if (this.refreshing.has(dir) || this.degraded || !this.recent.has(dir)) return;
    const r: Refresh = { changes: [], dead: false };
    this.refreshing.set(dir, r);
    // As the caller (who may look up there), but not cancelled with the lookup that started it.
    const bg: Ctx = { uid: ctx.uid, gid: ctx.gid, groups: ctx.groups, pid: ctx.pid };
    void this.child.readdirp(bg, { path: dir }).then((list) => {
      if (r.dead || this.degraded || this.dirs.has(dir)) return;
      const names = new Set(list.map((d) => d.name));
      for (const [name, present] of r.changes) { if (present) names.add(name); else names.delete(name); }
      this.learn(dir, names);
      this.refreshes++;
    }, () => undefined).finally(() => this.refreshing.delete(dir));
  }

  /** A name came or went: the list follows, keeping the time it was learnt (lru-cache drops a
   *  directory grown past the limit, and the least used ones to make room). */
  private note(dir: string, name: string, present: boolean): void {
    this.refreshing.get(dir)?.changes.push([name, present]);
    const k = this.dirs.get(dir);
    if (!k) return;
    if (present) k.names.add(name);
    else k.names.delete(name);
    this.dirs.set(dir, k, { noUpdateTTL: true });
  }

  /** Forgets a directory's names: a listing under way may have missed the change that tells. */
  private forget(dir: string): void {
    this.gen++;
    this.dirs.delete(dir);
    const r = this.refreshing.get(dir);
    if (r) r.dead = true;
  }

  /** Forgets a directory and every directory below it (rmdir, rename). */
  private forgetTree(path: string): void {
    this.gen++;
    const prefix = path === '/' ? '/' : `${path}/`;
    for (const k of [...this.dirs.keys()]) if (k === path || k.startsWith(prefix)) this.dirs.delete(k);
    for (const [k, r] of this.refreshing) if (k === path || k.startsWith(prefix)) r.dead = true;
  }

  /** A brick came or went: a listing may have missed its names, or they may be back. While the
   *  child reports one down (child-down), nothing is learnt. */
  override notify(event: XlatorEvent, from: Xlator): void {
    if (typeof event === 'object') {
      this.upcall(event);
      super.notify(event, from);
      return;
    }
    this.gen++;
    this.dirs.clear();
    for (const r of this.refreshing.values()) r.dead = true;
    this.degraded = event === 'child-down';
    super.notify(event, from);
  }

  /** Another client changed something in a directory (a brick's upcall): its list goes; a brick
   *  that sends none leaves lists trusted for less. */
  private upcall(event: UpcallEvent): void {
    if (event.unsupported && this.dirs.ttl > this.ttlMs(false)) {
      this.dirs.ttl = this.ttlMs(false);
      this.log?.info({ ms: this.dirs.ttl }, 'a brick sends no upcalls: directory lists trusted for less');
    }
    if (event.all) {
      this.gen++;
      this.dirs.clear();
      for (const r of this.refreshing.values()) r.dead = true;
    }
    if (!this.opts['cache-invalidation']) return;
    for (const c of event.changes) {
      if (c.tree) this.forgetTree(c.path);
      this.forget(dirname(c.path));
    }
  }

  /** Runs an entry operation; on failure forgets the directories it was in. */
  private async entryOp<T>(dirs: string[], run: () => Promise<T>): Promise<T> {
    this.gen++;
    try {
      return await run();
    } catch (e) {
      for (const d of dirs) this.forget(d);
      throw e;
    } finally {
      this.gen++;
    }
  }

  // --- reads ---

  override async lookup(ctx: Ctx, loc: Loc, xattrs?: string[]): Promise<LookupReply> {
    if (loc.path === '/' || !this.on) return this.child.lookup(ctx, loc, xattrs);
    const dir = dirname(loc.path);
    const name = basename(loc.path);
    const k = this.known(dir);
    if (k && !k.names.has(name)) {
      this.hits++;
      throw new FsError('ENOENT', `${loc.path}: no such file or directory`);
    }
    try {
      const r = await this.child.lookup(ctx, loc, xattrs);
      // Found where the list has no such name: something changed that this client did not see.
      const now = this.dirs.get(dir);
      if (now && !now.names.has(name)) this.forget(dir);
      return r;
    } catch (e) {
      if (toErrno(e) === 'ENOENT') {
        if (this.dirs.get(dir)?.names.has(name)) this.forget(dir);
        else if (!this.dirs.has(dir)) this.refresh(ctx, dir);
      }
      throw e;
    }
  }

  override async readdirp(ctx: Ctx, loc: Loc, xattrs?: string[]): Promise<Dirent[]> {
    if (!this.on) return this.child.readdirp(ctx, loc, xattrs);
    const since = this.gen;
    const list = await this.child.readdirp(ctx, loc, xattrs);
    // Every name of the directory, unless an entry operation ran meanwhile (it may or may not show).
    if (since === this.gen) this.learn(loc.path, list.map((d) => d.name));
    return list;
  }

  // --- this client's own changes ---

  override async create(ctx: Ctx, loc: Loc, flags: number, args: CreateArgs): Promise<{ fd: Fd; iatt: Iatt }> {
    const dir = dirname(loc.path);
    const r = await this.entryOp([dir], () => this.child.create(ctx, loc, flags, args));
    // An existing file opened: made by someone this client did not see, unless it is on the list.
    if (r.iatt.gfid !== args.gfid && !this.dirs.get(dir)?.names.has(basename(loc.path))) this.forget(dir);
    else this.note(dir, basename(loc.path), true);
    return r;
  }

  override async mkdir(ctx: Ctx, loc: Loc, args: CreateArgs): Promise<Iatt> {
    const dir = dirname(loc.path);
    const iatt = await this.entryOp([dir], () => this.child.mkdir(ctx, loc, args));
    this.note(dir, basename(loc.path), true);
    // A directory this client just made is empty.
    if (this.on && iatt.gfid === args.gfid) this.learn(loc.path, []);
    return iatt;
  }

  override async symlink(ctx: Ctx, target: string, loc: Loc, args: CreateArgs): Promise<Iatt> {
    const dir = dirname(loc.path);
    const iatt = await this.entryOp([dir], () => this.child.symlink(ctx, target, loc, args));
    this.note(dir, basename(loc.path), true);
    return iatt;
  }

  override async mknod(ctx: Ctx, loc: Loc, rdev: number, args: CreateArgs): Promise<Iatt> {
    const dir = dirname(loc.path);
    const iatt = await this.entryOp([dir], () => this.child.mknod(ctx, loc, rdev, args));
    this.note(dir, basename(loc.path), true);
    return iatt;
  }

  override async link(ctx: Ctx, from: Loc, to: Loc): Promise<Iatt> {
    const dir = dirname(to.path);
    const iatt = await this.entryOp([dir], () => this.child.link(ctx, from, to));
    this.note(dir, basename(to.path), true);
    return iatt;
  }

  override async unlink(ctx: Ctx, loc: Loc): Promise<void> {
    const dir = dirname(loc.path);
    await this.entryOp([dir], () => this.child.unlink(ctx, loc));
    this.note(dir, basename(loc.path), false);
  }

  override async rmdir(ctx: Ctx, loc: Loc): Promise<void> {
    const dir = dirname(loc.path);
    try {
      await this.entryOp([dir], () => this.child.rmdir(ctx, loc));
      this.note(dir, basename(loc.path), false);
    } finally {
      this.forgetTree(loc.path);
    }
  }

  override async rename(ctx: Ctx, from: Loc, to: Loc): Promise<void> {
    const fromDir = dirname(from.path);
    const toDir = dirname(to.path);
    // rename onto another name of the same inode changes nothing: the old name goes only when the
    // new one is known not to have been there.
    const target = this.dirs.get(toDir);
    const replaced = !target || target.names.has(basename(to.path));
    try {
      await this.entryOp([fromDir, toDir], () => this.child.rename(ctx, from, to));
      if (replaced) this.forget(fromDir);
      else this.note(fromDir, basename(from.path), false);
      this.note(toDir, basename(to.path), true);
    } finally {
      // A directory moved: what was known below either name is not any more.
      this.forgetTree(from.path);
      this.forgetTree(to.path);
    }
  }
}

export function create(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext): Xlator {
  return new NlCache(name, options, children, xctx);
}
