// cluster/replicate: every modifying operation goes to every child of the replica set inside a
// transaction that keeps a changelog of pending counters on the bricks (transaction.ts); reads come
// from one child whose copy is known good (read-child.ts); a stale copy heals from a good one on
// lookup and from the self-heal daemon (heal*.ts); copies that blame each other are split-brain:
// EIO until resolved (split-brain.ts); writes need client quorum (quorum.ts). GlusterFS's AFR.
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { FsError, isConnectionErrno, toErrno } from '../../../../common/errors.js';
import { cacheTtlMs, PassThrough, type UpcallEvent, type Xlator, type XlatorEvent } from '../../../../common/fops.js';
import type { Logger } from '../../../../common/log.js';
import { parseOptions, type OptionDef } from '../../../../common/options.js';
import {
  dirname, isDir, isReg, newFd, O_TRUNC, OPEN_IATT, OPEN_LOCKED, OPEN_XATTRS, ROOT_CTX,
  type CreateArgs, type Ctx, type Dirent, type Fd, type Flock, type Iatt, type LockCmd, type Loc,
  type LookupReply, type SetattrArgs, type Statfs,
} from '../../../../common/types.js';
import type { XlatorContext } from '../../registry.js';
import { AFR_PREFIX, changelogKeys, findDirection, matrixFrom, type Direction, type Matrix } from './changelog.js';
import { Healer, type HealResult } from './heal.js';
import { type QuorumConfig, type QuorumType } from './quorum.js';
import { readOrder } from './read-child.js';
import { POLICIES, type Policy } from './split-brain.js';
import { DataTxns, EntryTxns, createLockOwner, transact, txnLock, type ReplFd } from './transaction.js';

export const OPTIONS: readonly OptionDef[] = [
  { key: 'quorum-type', type: 'enum', values: ['none', 'auto', 'fixed'], description: 'client quorum: none; auto (more than half of the set up, or half including the first brick; the default for replica 3 and more); fixed (quorum-count)' },
  { key: 'quorum-count', type: 'int', default: 1, min: 1, max: 16, description: 'bricks that must be up for writes with quorum-type fixed' },
  { key: 'favorite-child-policy', type: 'enum', values: POLICIES, default: 'none', description: 'resolve split-brain automatically by size, mtime, ctime or majority' },
  { key: 'self-heal-daemon', type: 'bool', default: true, description: 'the self-heal daemon heals this set in the background' },
  { key: 'data-self-heal', type: 'bool', default: true, description: 'heal file data when a lookup finds it stale' },
  { key: 'metadata-self-heal', type: 'bool', default: true, description: 'heal mode, owner, times and xattrs when a lookup finds them stale' },
  { key: 'entry-self-heal', type: 'bool', default: true, description: 'heal directory entries when a lookup finds them stale' },
  { key: 'background-self-heal-count', type: 'int', default: 8, min: 0, max: 256, description: 'heals a client runs at once in the background; more are left to the daemon' },
  { key: 'post-op-delay-secs', type: 'time', default: 1, min: 0, max: 60, description: 'how long a data transaction stays open after the last write (eager lock, delayed post-op)' },
  { key: 'arbiter-count', type: 'int', default: 0, min: 0, max: 1, description: 'the last child of the set is an arbiter: names and metadata, no data' },
  { key: 'heal-timeout', type: 'time', default: 60, min: 1, description: 'seconds between the self-heal daemon\'s sweeps of the heal index' },
  { key: 'shd-max-threads', type: 'int', default: 8, min: 1, max: 64, description: 'heals the self-heal daemon runs at once per replica set (gluster\'s default is 1)' },
];

interface Options {
  'quorum-type'?: QuorumType; 'quorum-count': number; 'favorite-child-policy': Policy; 'self-heal-daemon': boolean;
  'data-self-heal': boolean; 'metadata-self-heal': boolean; 'entry-self-heal': boolean; 'background-self-heal-count': number;
  'post-op-delay-secs': number; 'arbiter-count': number; 'heal-timeout': number; 'shd-max-threads': number;
}

export type Settled<T> = { ok: true; value: T; i: number } | { ok: false; err: FsError; i: number };

/** What the last lookup learnt about an inode's copies. */
export interface InodeState { data?: Direction; metadata?: Direction; entry?: Direction }

/** A virtual xattr set through the graph on a file to resolve its split-brain (the CLI's helper). */
export const SPLIT_BRAIN_XATTR = 'trusted.gfs.heal.split-brain';

/** Seconds a directory found clean is trusted while the bricks tell of other clients' changes:
 *  less than the bricks remember a reader's interest (600 s), as the lookup noted it; without
 *  upcalls, a second. */
const CLEAN_TOLD_S = 540;
const CLEAN_UNTOLD_S = 1;
const O_ACCMODE = 3;
const O_WRONLY = 1;

export class Replicate extends PassThrough implements Xlator {
  readonly opts: Options;
  readonly log: Logger;
  readonly quorum: QuorumConfig;
  readonly arbiter: number;
  readonly clientId = randomUUID();
  readonly up: boolean[];
  readonly txns: DataTxns;
  readonly entryTxns: EntryTxns;
  readonly healer: Healer;
  readonly inodes = new LRUCache<string, InodeState>({ max: 50_000, ttl: 60_000 });
  /** Directories (path -> gfid) a lookup on every up child found alike (no entry pending): their
   *  listing is read from a child at once, without looking them up again (a READDIRPLUS costs
   *  two lookups less). A child's event or failure (but a missing name or xattr or a busy lock)
   *  forgets them all. Another client's entry operation there, failed on some child or not, is
   *  told by the bricks (upcall) and forgets the directory: so they are kept CLEAN_TOLD_S; where
   *  a brick sends no upcalls, a second, as md-cache does. */
  private readonly cleanDirs = new LRUCache<string, string>({ max: 10_000, ttl: CLEAN_UNTOLD_S * 1000 });
  /** A brick sends no upcalls: clean directories are trusted for a second only. */
  private untold = false;
  /** Bumped by every upcall: a lookup that an upcall overtook does not mark its directory clean. */
  private upcallGen = 0;
  /** Numbers the owners of the locks opens for writing take. */
  private openSeq = 0;
  private anyUp = true;

  constructor(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext) {
    super(name, 'cluster/replicate', children);
    if (children.length < 2) throw new FsError('EINVAL', `translator ${name}: replicate needs at least two children`);
    this.opts = parseOptions<Options>(OPTIONS, options, `translator ${name}`);
    this.log = xctx.log.child({ xl: name });
    const n = children.length;
    this.quorum = { type: this.opts['quorum-type'] ?? (n >= 3 ? 'auto' : 'none'), count: this.opts['quorum-count'], n };
    this.arbiter = this.opts['arbiter-count'] ? n - 1 : -1;
    this.up = children.map(() => true);
    this.txns = new DataTxns(this, this.opts['post-op-delay-secs'] * 1000);
    this.entryTxns = new EntryTxns(this);
    this.healer = new Healer(this);
  }

  get childNames(): string[] {
    return this.children.map((c) => c.name);
  }

  /** The changelog xattrs every lookup asks for. */
  get afrKeys(): string[] {
    return changelogKeys(this.childNames);
  }

  override async fini(): Promise<void> {
    await this.txns.closeAll();
    await this.entryTxns.flushAll();
    await Promise.allSettled([...this.postOps.values()].flatMap((set) => [...set]));
    await super.fini();
  }

  /** Post-ops on their way, by the path whose changelog they clear: the caller has its answer
   *  once the op is done everywhere (one round trip less); whoever reads that changelog next
   *  waits for them, so this client never takes its own marks for pending heals. */
  private readonly postOps = new Map<string, Set<Promise<void>>>();

  behind(locs: Loc[], p: Promise<void>): void {
    const done = p.catch((e: unknown) => { this.log.warn({ err: (e as Error)?.message }, 'post-op failed'); });
    for (const l of locs) {
      let set = this.postOps.get(l.path);
      if (!set) this.postOps.set(l.path, (set = new Set()));
      set.add(done);
    }
    void done.then(() => {
      for (const l of locs) {
        const set = this.postOps.get(l.path);
        set?.delete(done);
        if (set?.size === 0) this.postOps.delete(l.path);
      }
    });
  }

  private async postOpsDone(path: string): Promise<void> {
    const set = this.postOps.get(path);
    if (!set) return;
    void this.entryTxns.flush(path); // gathered entry post-ops of path go now
    await Promise.allSettled([...set]);
  }

  override notify(event: XlatorEvent, from: Xlator): void {
    if (typeof event === 'object') {
      this.upcall(event);
      this.parent?.notify(event, this);
      return;
    }
    const i = this.children.indexOf(from);
    if (i < 0) return;
    this.up[i] = event === 'child-up';
    this.cleanDirs.clear();
    if (event === 'child-up') this.inodes.clear();
    this.log.info({ child: from.name, event }, 'replica child state');
    const any = this.up.some(Boolean);
    if (any !== this.anyUp) {
      this.anyUp = any;
      this.parent?.notify(any ? 'child-up' : 'child-down', this);
    }
    if (event === 'child-up') this.healer.onChildUp(i);
  }

  /** Another client changed what the bricks say: its directories are no longer known clean. */
  private upcall(event: UpcallEvent): void {
    this.upcallGen++;
    if (event.unsupported) this.untold = true;
    if (event.all || event.changes.some((c) => c.tree)) { this.cleanDirs.clear(); return; }
    for (const c of event.changes) {
      this.cleanDirs.delete(c.path);
      this.cleanDirs.delete(dirname(c.path));
    }
  }

  /** dir's copies may differ now: its next listing looks them up first. */
  forgetClean(dir: string): void {
    this.cleanDirs.delete(dir);
  }

  // --- fan-out helpers ---

  upChildren(): number[] {
    return this.children.map((_, i) => i).filter((i) => this.up[i]);
  }

  async onAll<T>(fn: (c: Xlator, i: number) => Promise<T>, which: number[] = this.upChildren()): Promise<Settled<T>[]> {
    const res = await Promise.allSettled(which.map((i) => fn(this.children[i], i)));
    return res.map((r, k) => (r.status === 'fulfilled'
      ? { ok: true as const, value: r.value, i: which[k] }
      : { ok: false as const, err: r.reason instanceof FsError ? r.reason : new FsError(toErrno(r.reason), String(r.reason?.message ?? r.reason), { cause: r.reason }), i: which[k] }));
  }

  noteError(i: number, e: unknown): void {
    const errno = toErrno(e);
    if (errno !== 'ENOENT' && errno !== 'ENODATA' && errno !== 'EAGAIN') this.cleanDirs.clear();
    if ((errno === 'ENOTCONN' || errno === 'ECONNREFUSED' || errno === 'EHOSTUNREACH') && this.up[i]) {
      this.up[i] = false;
      this.log.warn({ child: this.children[i].name, err: (e as Error).message }, 'replica child unreachable');
    }
  }

  noteFailures(res: Settled<unknown>[]): void {
    for (const r of res) if (!r.ok) this.noteError(r.i, r.err);
  }

  /** The most telling failure: a real errno over a connection error. */
  bestError(res: Settled<unknown>[]): FsError {
    const errs = res.filter((r): r is Extract<Settled<unknown>, { ok: false }> => !r.ok).map((r) => r.err);
    return errs.find((e) => !isConnectionErrno(e.errno)) ?? errs[0] ?? new FsError('ENOTCONN', `${this.name}: no brick of the replica set is up`);
  }

  firstOk<T>(res: Settled<T>[], preferData = true): T {
    const ok = res.filter((r): r is Extract<Settled<T>, { ok: true }> => r.ok);
    const pick = (preferData ? ok.find((r) => r.i !== this.arbiter) : undefined) ?? ok[0];
    if (pick) return pick.value;
    throw this.bestError(res);
  }

  // --- lookup and the state of an inode's copies ---

  /** Looks a path up on every up child with the changelog keys. */
  async lookupAll(ctx: Ctx, loc: Loc, xattrs: string[] = []): Promise<Settled<LookupReply>[]> {
    if (this.postOps.size) await this.postOpsDone(loc.path);
    const res = await this.onAll((c) => c.lookup(ctx, loc, [...this.afrKeys, ...xattrs]));
    this.noteFailures(res);
    return res;
  }

  matrixOf(res: Settled<LookupReply>[], gfid?: string): Matrix {
    const rows: (Record<string, Buffer> | undefined)[] = this.children.map(() => undefined);
    for (const r of res) if (r.ok && (!gfid || r.value.iatt.gfid === gfid)) rows[r.i] = r.value.xattrs;
    return matrixFrom(this.childNames, rows);
  }

  /** Sources and sinks of each changelog type, from a set of lookup replies. */
  stateOf(res: Settled<LookupReply>[]): { state: InodeState; iatt: Iatt } | undefined {
    const ok = res.filter((r): r is Extract<Settled<LookupReply>, { ok: true }> => r.ok);
    const first = ok.find((r) => r.i !== this.arbiter) ?? ok[0];
    if (!first) return undefined;
    const m = this.matrixOf(res, first.value.iatt.gfid);
    const state: InodeState = { metadata: findDirection(m, 'metadata') };
    if (isDir(first.value.iatt.mode)) state.entry = findDirection(m, 'entry');
    else if (isReg(first.value.iatt.mode)) state.data = findDirection(m, 'data', (i) => i !== this.arbiter);
    return { state, iatt: first.value.iatt };
  }

  /** Children to read data of an inode from, best first. */
  readable(gfid: string, st?: InodeState): number[] {
    const failed = this.txns.failedOf(gfid);
    const state = st ?? this.inodes.get(gfid);
    let set = this.upChildren().filter((i) => i !== this.arbiter && !failed.has(i));
    if (state?.data?.pending) set = set.filter((i) => state.data!.sources.includes(i));
    return readOrder(gfid, set);
  }

  override async lookup(ctx: Ctx, loc: Loc, xattrs: string[] = []): Promise<LookupReply> {
    const res = await this.lookupAll(ctx, loc, xattrs);
    const found = this.stateOf(res);
    if (!found) throw this.bestError(res);
    const { state, iatt } = found;
    this.inodes.set(iatt.gfid, state);
    const missing = res.some((r) => !r.ok && r.err.errno === 'ENOENT');
    if (missing && loc.path !== '/') this.healer.background(dirname(loc.path));
    const needs = state.data?.pending || state.metadata?.pending || state.entry?.pending;
    if (needs && !this.txns.busy(iatt.gfid)) this.healer.background(loc.path);
    if (state.metadata?.splitBrain && this.opts['favorite-child-policy'] === 'none') {
      throw new FsError('EIO', `${loc.path}: metadata split-brain between the bricks of ${this.name}`);
    }
    // Answer from a good copy: data sources for files, metadata sources otherwise.
    const order = isReg(iatt.mode) ? this.readable(iatt.gfid, state) : (state.metadata?.pending ? state.metadata.sources : []);
    const pick = res.find((r) => r.ok && order.length > 0 && r.i === order[0]) ?? res.find((r) => r.ok && r.i !== this.arbiter) ?? res.find((r) => r.ok);
    const reply = (pick as { value: LookupReply }).value;
    return { iatt: reply.iatt, xattrs: stripAfr(reply.xattrs) };
  }

  /** As GlusterFS's AFR: an inode whose copies this client's last lookup found alike (no copy
   *  blamed: at most dirty, as its own writes leave it) is stat'ed on one good copy, its read
   *  child; others, and a copy that fails or names another inode, take a lookup of every child
   *  (which reads the changelogs and starts heals). dbench's stat after each write: one call. */
  override async stat(ctx: Ctx, loc: Loc): Promise<Iatt> {
    const st = loc.gfid ? this.inodes.get(loc.gfid) : undefined;
    const alike = st && [st.data, st.metadata, st.entry].every((d) => !d || (!d.splitBrain && d.sinks.length === 0));
    const i = alike ? this.readable(loc.gfid!, st)[0] : undefined;
    if (i !== undefined) {
      try {
        const iatt = await this.children[i].stat(ctx, loc);
        if (iatt.gfid === loc.gfid) return iatt;
      } catch (e) {
        this.noteError(i, e);
      }
    }
    return (await this.lookup(ctx, loc)).iatt;
  }

  /** Runs a read-type op on the readable children in turn until one answers. */
  async onReadable<T>(gfid: string, fn: (c: Xlator, i: number) => Promise<T>, what: string): Promise<T> {
    const st = this.inodes.get(gfid);
    if (st?.data?.splitBrain) throw new FsError('EIO', `${what}: data split-brain between the bricks of ${this.name}`);
    const order = this.readable(gfid, st);
    if (order.length === 0) {
      throw new FsError(this.upChildren().length ? 'EIO' : 'ENOTCONN', `${what}: no good copy of the file is up in ${this.name}`);
    }
    let last: unknown;
    for (const i of order) {
      try {
        return await fn(this.children[i], i);
      } catch (e) {
        last = e;
        this.noteError(i, e);
        const errno = toErrno(e);
        if (!isConnectionErrno(errno) && errno !== 'EBADF') throw e;
      }
    }
    throw last;
  }

  // --- fds ---

  rfd(fd: Fd): ReplFd {
    const r = fd.ctx.get(this) as ReplFd | undefined;
    if (!r) throw new FsError('EBADF', `${this.name}: fd not opened through replicate`);
    return r;
  }

  private wrapFds(loc: Loc, flags: number, gfid: string, res: Settled<Fd>[]): Fd {
    const fd = newFd(loc, flags, gfid);
    const fds: (Fd | undefined)[] = this.children.map(() => undefined);
    for (const r of res) if (r.ok) fds[r.i] = r.value;
    fd.ctx.set(this, { fds, gfid } satisfies ReplFd);
    return fd;
  }

  override async open(ctx: Ctx, loc: Loc, flags: number): Promise<Fd> {
    const opened = await this.openWithChangelog(ctx, loc, flags);
    if (opened) return opened;
    let look = await this.lookupAll(ctx, loc);
    let found = this.stateOf(look);
    if (found?.state.data?.splitBrain && this.opts['favorite-child-policy'] !== 'none') {
      await this.healer.healPath(loc.path);
      look = await this.lookupAll(ctx, loc);
      found = this.stateOf(look);
    }
    if (!found) throw this.bestError(look);
    this.inodes.set(found.iatt.gfid, found.state);
    if (found.state.data?.splitBrain) throw this.dataSplitBrain(loc);
    const openLock = this.openLock(flags);
    const res = await this.onAll((c) => c.open({ ...ctx, openLock }, loc, flags & ~O_TRUNC), look.filter((r) => r.ok).map((r) => r.i));
    this.noteFailures(res);
    if (!res.some((r) => r.ok)) throw this.bestError(res);
    return this.opened(ctx, this.wrapFds(loc, flags, found.iatt.gfid, res), flags, openLock);
  }

  /** The data transaction lock an open for writing takes on every brick (the first write then
   *  needs no lock call of its own), under an owner of its own. */
  private openLock(flags: number): Flock | undefined {
    if ((flags & O_ACCMODE) === 0 || this.opts['post-op-delay-secs'] <= 0) return undefined;
    return txnLock('write', `afr-open:${this.clientId}:${++this.openSeq}`);
  }

  /** The open as one call per child where every up child can read the changelog with it (lookup
   *  + open in one round trip). Undefined when some child cannot, or the copies are in a data
   *  split-brain that a favorite-child policy may heal: the caller looks up first then. */
  private async openWithChangelog(ctx: Ctx, loc: Loc, flags: number): Promise<Fd | undefined> {
    const up = this.upChildren();
    if (up.length === 0 || !up.every((i) => (this.children[i] as { openXattrsCompound?: boolean }).openXattrsCompound === true)) return undefined;
    if (this.postOps.size) await this.postOpsDone(loc.path);
    const openLock = this.openLock(flags);
    const res = await this.onAll((c) => c.open({ ...ctx, openXattrs: this.afrKeys, openLock }, loc, flags & ~O_TRUNC), up);
    this.noteFailures(res);
    const look: Settled<LookupReply>[] = res.map((r) => {
      if (!r.ok) return r;
      const iatt = r.value.ctx.get(OPEN_IATT) as Iatt | undefined;
      const xattrs = r.value.ctx.get(OPEN_XATTRS) as Record<string, Buffer> | undefined;
      return iatt && xattrs ? { ok: true as const, i: r.i, value: { iatt, xattrs } } : { ok: false as const, i: r.i, err: new FsError('EIO', 'open answered without the changelog') };
    });
    const found = this.stateOf(look);
    const good = !!found && !found.state.data?.splitBrain && res.every((r, k) => !r.ok || look[k].ok);
    if (!good) {
      await Promise.allSettled(res.map((r) => (r.ok ? this.children[r.i].release(ROOT_CTX, r.value) : undefined)));
      if (!found) throw this.bestError(res);
      if (found.state.data?.splitBrain && this.opts['favorite-child-policy'] === 'none') {
        this.inodes.set(found.iatt.gfid, found.state);
        throw this.dataSplitBrain(loc);
      }
      return undefined;
    }
    this.inodes.set(found.iatt.gfid, found.state);
    return this.opened(ctx, this.wrapFds(loc, flags, found.iatt.gfid, res), flags, openLock);
  }

  private dataSplitBrain(loc: Loc): FsError {
    return new FsError('EIO', `${loc.path}: data split-brain between the bricks of ${this.name}; resolve with gfs volume heal VOL split-brain`);
  }

  /** An open's fd, holding the data transaction lock its open took where it took it on every
   *  child (see DataTxns.holdPreLock), truncated first when it asked for O_TRUNC (in the inode's
   *  data transaction). */
  private async opened(ctx: Ctx, fd: Fd, flags: number, lock?: Flock): Promise<Fd> {
    const r = this.rfd(fd);
    if (lock) this.txns.holdPreLock(r, r.fds.flatMap((f, i) => (f?.ctx.get(OPEN_LOCKED) === true ? [i] : [])), lock.owner);
    if ((flags & O_ACCMODE) !== 0 && flags & O_TRUNC) await this.ftruncate(ctx, fd, 0);
    return fd;
  }

  override async create(ctx: Ctx, loc: Loc, flags: number, args: CreateArgs): Promise<{ fd: Fd; iatt: Iatt }> {
    // The new file's first write would lock it on every brick first: the create takes that lock.
    const lock = txnLock('write', createLockOwner(this.clientId, args.gfid));
    const withLock = (flags & O_ACCMODE) !== 0 && this.opts['post-op-delay-secs'] > 0 ? { ...args, lock } : args;
    const res = await transact(this, `create ${loc.path}`, 'entry', [{ path: dirname(loc.path) }], ctx, (i, cx) => this.children[i].create(cx, loc, flags, withLock));
    const iatt = this.firstOk(res.map((r) => (r.ok ? { ...r, value: r.value.iatt } : r)));
    const fd = this.wrapFds(loc, flags, iatt.gfid, res.map((r) => (r.ok ? { ...r, value: r.value.fd } : r)));
    const locked = res.filter((r) => r.ok && r.value.locked).map((r) => r.i);
    this.txns.holdPreLock(this.rfd(fd), locked, lock.owner);
    return { fd, iatt };
  }

  override async read(ctx: Ctx, fd: Fd, offset: number, size: number): Promise<Buffer> {
    const r = this.rfd(fd);
    return this.onReadable(r.gfid, (c, i) => {
      if (!r.fds[i]) throw new FsError('EBADF', 'not open on this child');
      return c.read(ctx, r.fds[i]!, offset, size);
    }, `read ${fd.loc.path}`);
  }

  override async fstat(ctx: Ctx, fd: Fd): Promise<Iatt> {
    const r = this.rfd(fd);
    return this.onReadable(r.gfid, (c, i) => {
      if (!r.fds[i]) throw new FsError('EBADF', 'not open on this child');
      return c.fstat(ctx, r.fds[i]!);
    }, `fstat ${fd.loc.path}`);
  }

  override async write(ctx: Ctx, fd: Fd, offset: number, data: Buffer): Promise<number> {
    const r = this.rfd(fd);
    return this.txns.run(`write ${fd.loc.path}`, fd, r, ctx, (i, cfd, cx) => (i === this.arbiter ? Promise.resolve(data.length) : this.children[i].write(cx, cfd, offset, data)));
  }

  override async ftruncate(ctx: Ctx, fd: Fd, size: number): Promise<Iatt> {
    const r = this.rfd(fd);
    return this.txns.run(`ftruncate ${fd.loc.path}`, fd, r, ctx, (i, cfd, cx) => (i === this.arbiter ? this.children[i].fstat(ctx, cfd) : this.children[i].ftruncate(cx, cfd, size)));
  }

  override async fallocate(ctx: Ctx, fd: Fd, mode: number, offset: number, len: number): Promise<void> {
    const r = this.rfd(fd);
    await this.txns.run(`fallocate ${fd.loc.path}`, fd, r, ctx, (i, cfd, cx) => (i === this.arbiter ? Promise.resolve() : this.children[i].fallocate(cx, cfd, mode, offset, len)));
  }

  override async flush(ctx: Ctx, fd: Fd): Promise<void> {
    const r = this.rfd(fd);
    // The writes are done everywhere: the close's post-op and unlock need not hold up the
    // caller (the release that follows waits for them; readers of the changelog here do too).
    this.behind([fd.loc], this.txns.close(r.gfid));
    await this.onAll((c, i) => c.flush(ctx, r.fds[i]!), r.fds.map((f, i) => (f ? i : -1)).filter((i) => i >= 0 && this.up[i]));
  }

  override async fsync(ctx: Ctx, fd: Fd, datasync: boolean): Promise<void> {
    const r = this.rfd(fd);
    await this.txns.close(r.gfid);
    const res = await this.onAll((c, i) => c.fsync(ctx, r.fds[i]!, datasync), r.fds.map((f, i) => (f ? i : -1)).filter((i) => i >= 0 && this.up[i]));
    if (!res.some((x) => x.ok) && res.length) throw this.bestError(res);
  }

  override async release(ctx: Ctx, fd: Fd): Promise<void> {
    const r = fd.ctx.get(this) as ReplFd | undefined;
    if (!r) return;
    this.txns.dropPreLock(r);
    await this.txns.close(r.gfid);
    fd.ctx.delete(this);
    await this.onAll((c, i) => c.release(ctx, r.fds[i]!), r.fds.map((f, i) => (f ? i : -1)).filter((i) => i >= 0));
  }

  override async lk(ctx: Ctx, fd: Fd, cmd: LockCmd, lock: Flock): Promise<Flock> {
    const r = this.rfd(fd);
    const which = r.fds.map((f, i) => (f ? i : -1)).filter((i) => i >= 0 && this.up[i]);
    if (cmd === 'getlk') return this.onReadable(r.gfid, (c, i) => c.lk(ctx, r.fds[i]!, cmd, lock), `getlk ${fd.loc.path}`);
    const res = await this.onAll((c, i) => c.lk(ctx, r.fds[i]!, cmd, lock), which);
    const failed = res.find((x) => !x.ok && !isConnectionErrno(x.err.errno));
    if (failed && !failed.ok) {
      // Undo the locks that were granted so no brick keeps a lock the caller does not hold.
      if (lock.type !== 'unlock') await this.onAll((c, i) => c.lk(ctx, r.fds[i]!, 'setlk', { ...lock, type: 'unlock' }), res.filter((x) => x.ok).map((x) => x.i));
      throw failed.err;
    }
    return this.firstOk(res);
  }

  // --- metadata operations ---

  private async metadataTxn<T>(what: string, ctx: Ctx, loc: Loc, op: (i: number, cx: Ctx) => Promise<T>): Promise<T> {
    // A file this client is writing: the change joins its data transaction (one post-op for both).
    const res = (await this.txns.runMeta(what, loc, ctx, op)) ?? (await transact(this, what, 'metadata', [loc], ctx, op));
    return this.firstOk(res);
  }

  override async setattr(ctx: Ctx, loc: Loc, attrs: SetattrArgs): Promise<Iatt> {
    const { size, ...meta } = attrs;
    let iatt: Iatt | undefined;
    if (size !== undefined) iatt = await this.truncate(ctx, loc, Number(size));
    if (Object.keys(meta).length === 0 && iatt) return iatt;
    return this.metadataTxn(`setattr ${loc.path}`, ctx, loc, (i, cx) => this.children[i].setattr(cx, loc, meta));
  }

  /** truncate by path goes through an fd, as open with O_TRUNC does: it runs in the inode's data
   *  transaction and takes its lock, so it waits for a data heal that holds the file instead of
   *  cutting the copy under it (the heal would level the copies to the old data and clear the
   *  marks). Like any open, it refuses a data split-brain. */
  override async truncate(ctx: Ctx, loc: Loc, size: number): Promise<Iatt> {
    const fd = await this.open(ctx, loc, O_WRONLY);
    try {
      return await this.ftruncate(ctx, fd, size);
    } finally {
      await this.release(ctx, fd);
    }
  }

  override async setxattr(ctx: Ctx, loc: Loc, name: string, value: Buffer, flags: number): Promise<void> {
    if (name === SPLIT_BRAIN_XATTR) {
      const req = JSON.parse(value.toString()) as { policy: Policy | 'source-brick'; child?: string };
      await this.healer.resolveSplitBrain(loc.path, req.policy, req.child);
      return;
    }
    if (name.startsWith(AFR_PREFIX)) throw new FsError('EPERM', `${name} belongs to replicate`);
    await this.metadataTxn(`setxattr ${loc.path}`, ctx, loc, (i, cx) => this.children[i].setxattr(cx, loc, name, value, flags));
  }

  override async removexattr(ctx: Ctx, loc: Loc, name: string): Promise<void> {
    if (name.startsWith(AFR_PREFIX)) throw new FsError('EPERM', `${name} belongs to replicate`);
    await this.metadataTxn(`removexattr ${loc.path}`, ctx, loc, (i, cx) => this.children[i].removexattr(cx, loc, name));
  }

  override async xattrop(ctx: Ctx, loc: Loc, name: string, add: Buffer): Promise<Buffer> {
    const res = await this.onAll((c) => c.xattrop(ctx, loc, name, add));
    this.noteFailures(res);
    return this.firstOk(res);
  }

  /** Reads a property from a good copy (metadata sources when known). */
  private async readMeta<T>(loc: Loc, fn: (c: Xlator) => Promise<T>): Promise<T> {
    const res = await this.onAll((c) => fn(c), this.upChildren().filter((i) => i !== this.arbiter).slice(0, 1));
    if (res.length && res[0].ok) return res[0].value;
    const all = await this.onAll((c) => fn(c));
    this.noteFailures(all);
    return this.firstOk(all);
  }

  override async getxattr(ctx: Ctx, loc: Loc, name: string): Promise<Buffer> {
    return this.readMeta(loc, (c) => c.getxattr(ctx, loc, name));
  }

  override async listxattr(ctx: Ctx, loc: Loc): Promise<string[]> {
    return (await this.readMeta(loc, (c) => c.listxattr(ctx, loc))).filter((n) => !n.startsWith(AFR_PREFIX));
  }

  override async readlink(ctx: Ctx, loc: Loc): Promise<string> {
    return this.readMeta(loc, (c) => c.readlink(ctx, loc));
  }

  override async statfs(ctx: Ctx, loc: Loc): Promise<Statfs> {
    const res = await this.onAll((c) => c.statfs(ctx, loc));
    this.noteFailures(res);
    return this.firstOk(res);
  }

  // --- entry operations: the changelog lives on the parent directory ---

  private parentLocs(...paths: string[]): Loc[] {
    const dirs = [...new Set(paths.map((p) => dirname(p)))];
    return dirs.map((path) => ({ path }));
  }

  override async mkdir(ctx: Ctx, loc: Loc, args: CreateArgs): Promise<Iatt> {
    return this.firstOk(await transact(this, `mkdir ${loc.path}`, 'entry', this.parentLocs(loc.path), ctx, (i, cx) => this.children[i].mkdir(cx, loc, args)));
  }

  override async symlink(ctx: Ctx, target: string, loc: Loc, args: CreateArgs): Promise<Iatt> {
    return this.firstOk(await transact(this, `symlink ${loc.path}`, 'entry', this.parentLocs(loc.path), ctx, (i, cx) => this.children[i].symlink(cx, target, loc, args)));
  }

  override async mknod(ctx: Ctx, loc: Loc, rdev: number, args: CreateArgs): Promise<Iatt> {
    return this.firstOk(await transact(this, `mknod ${loc.path}`, 'entry', this.parentLocs(loc.path), ctx, (i, cx) => this.children[i].mknod(cx, loc, rdev, args)));
  }

  override async link(ctx: Ctx, from: Loc, to: Loc): Promise<Iatt> {
    return this.firstOk(await transact(this, `link ${to.path}`, 'entry', this.parentLocs(to.path), ctx, (i, cx) => this.children[i].link(cx, from, to)));
  }

  override async unlink(ctx: Ctx, loc: Loc): Promise<void> {
    await transact(this, `unlink ${loc.path}`, 'entry', this.parentLocs(loc.path), ctx, (i, cx) => this.children[i].unlink(cx, loc));
  }

  override async rmdir(ctx: Ctx, loc: Loc): Promise<void> {
    await transact(this, `rmdir ${loc.path}`, 'entry', this.parentLocs(loc.path), ctx, (i, cx) => this.children[i].rmdir(cx, loc));
  }

  override async rename(ctx: Ctx, from: Loc, to: Loc): Promise<void> {
    await transact(this, `rename ${from.path}`, 'entry', this.parentLocs(from.path, to.path), ctx, (i, cx) => this.children[i].rename(cx, from, to));
  }

  override async readdirp(ctx: Ctx, loc: Loc, xattrs: string[] = []): Promise<Dirent[]> {
    // From a copy of the directory that is not stale, never the arbiter (its files are empty).
    let order: number[];
    let gfid = loc.gfid;
    let last: unknown = new FsError('ENOTCONN', `${this.name}: no brick of the replica set is up`);
    if (gfid && this.cleanDirs.get(loc.path) === gfid) {
      order = this.upChildren();
    } else {
      const since = this.upcallGen;
      const look = await this.lookupAll(ROOT_CTX, loc);
      const found = this.stateOf(look);
      if (!found) throw this.bestError(look);
      const entry = found.state.entry;
      gfid = found.iatt.gfid;
      order = this.upChildren().filter((i) => look.find((r) => r.i === i)?.ok);
      if (entry?.pending && entry.sources.length) order = order.filter((i) => entry.sources.includes(i));
      if (entry?.pending) this.healer.background(loc.path);
      else if (look.every((r) => r.ok) && order.length === this.children.length && since === this.upcallGen) {
        this.cleanDirs.set(loc.path, gfid, { ttl: cacheTtlMs(CLEAN_TOLD_S, CLEAN_UNTOLD_S, !this.untold) });
      }
      last = this.bestError(look);
    }
    const data = order.filter((i) => i !== this.arbiter);
    order = [...readOrder(gfid, data), ...order.filter((i) => i === this.arbiter)];
    for (const i of order) {
      try {
        const list = await this.children[i].readdirp(ctx, loc, xattrs);
        return list.map((e) => ({ ...e, xattrs: stripAfr(e.xattrs) }));
      } catch (e) {
        last = e;
        this.noteError(i, e);
        if (!isConnectionErrno(toErrno(e))) throw e;
      }
    }
    throw last;
  }

  /** Heals one path now (the self-heal daemon and the heal commands). */
  heal(path: string, full = false): Promise<HealResult> {
    return this.healer.healPath(path, { full });
  }
}

export function stripAfr(x: Record<string, Buffer>): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(x)) if (!k.startsWith(AFR_PREFIX)) out[k] = v;
  return out;
}

export function create(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext): Xlator {
  return new Replicate(name, options, children, xctx);
}

export function isReplicate(x: Xlator): x is Replicate {
  return x instanceof Replicate;
}
