// Transactions: every modifying operation runs as pre-op (raise the dirty counter on every child
// it runs on; blame there the children it cannot run on), op (on those), post-op (where the op
// worked: lower the dirty counter, and blame the children it failed on). A child that failed or
// was down stays accused on the others, on their disks. Data writes share one
// transaction per inode while writes keep coming (eager lock + delayed post-op, as GlusterFS's
// AFR): the inode is locked on the bricks for the window, so a healer never runs in between.
// Metadata changes of a file this client is writing (tar's chmod and utimes before close) join
// that transaction: their post-op and lock go with its own, in one call per brick.
import { FsError, isConnectionErrno, toErrno } from '../../../../common/errors.js';
import type { Ctx, Fd, Flock, Loc } from '../../../../common/types.js';
import type { Xlator } from '../../../../common/fops.js';
import { ROOT_CTX } from '../../../../common/types.js';
import type { WriteMark } from '../../../../common/write-mark.js';
import { DIRTY_KEY, afrKey, delta, type TxnType } from './changelog.js';
import { hasQuorum, quorumError } from './quorum.js';
import type { Replicate, Settled } from './index.js';

/** The brick lock range replicate's transactions and healers take (far beyond any data): on a
 *  file's fd (data transactions, data heal) and as an inode lock (inodelk: entry transactions on
 *  their directory and metadata transactions on their inode take it 'read', shared; entry and
 *  metadata heals 'write', so no operation is half done under a heal). */
export const TXN_LOCK_START = 1n << 50n;
export function txnLock(type: 'read' | 'write' | 'unlock', owner: string): Flock {
  return { type, start: TXN_LOCK_START, len: 1n, pid: 0, owner };
}

/** A brick translator that applies ctx.pre before the operation, in one round trip. */
const compoundCapable = (x: unknown) => (x as { preOpCompound?: boolean }).preOpCompound === true;
/** One that also lets ctx.unlock's lock go after the operation. */
const unlockCapable = (x: unknown) => compoundCapable(x) && (x as { unlockCompound?: boolean }).unlockCompound === true;

type Adds = { loc: Loc; name: string; add: Buffer }[];

/** +1 to the blame of each given child on loc. */
function blames(r: Replicate, loc: Loc, type: TxnType, which: readonly number[]): Adds {
  const add = delta(type, 1);
  return which.map((j) => ({ loc, name: afrKey(r.children[j].name), add }));
}

/** A pre-op on loc of a transaction that runs on `participants`: +1 to the dirty counter, and
 *  the blame of every other child (down or not locked: it misses the operation, and a client
 *  that dies before the post-op must not lose that). */
function preAdds(r: Replicate, loc: Loc, type: TxnType, participants: readonly number[]): Adds {
  const out = r.children.map((_, j) => j).filter((j) => !participants.includes(j));
  return [{ loc, name: DIRTY_KEY, add: delta(type, 1) }, ...blames(r, loc, type, out)];
}

/** The post-op on loc of a child the operation worked on: -1 to the dirty counter, and the blame
 *  of the participants it did not work on (`ok`: those it did). */
function postAdds(r: Replicate, loc: Loc, type: TxnType, participants: readonly number[], ok: readonly number[]): Adds {
  return [{ loc, name: DIRTY_KEY, add: delta(type, -1) }, ...blames(r, loc, type, participants.filter((j) => !ok.includes(j)))];
}

/** a and b as one list: the addends of a name (one 12-byte changelog per child key) summed, so
 *  a data and a metadata post-op of one inode are one counter update per key. */
function mergeAdds(a: Adds, b: Adds): Adds {
  const out: Adds = a.map((x) => ({ ...x, add: Buffer.from(x.add) }));
  for (const y of b) {
    const x = out.find((o) => o.name === y.name && o.loc.path === y.loc.path);
    if (!x) { out.push(y); continue; }
    for (let k = 0; k + 4 <= x.add.length; k += 4) x.add.writeInt32BE(x.add.readInt32BE(k) + y.add.readInt32BE(k), k);
  }
  return out;
}

/** Applies adds on child c: one compound call where the child can, else all at once. */
export async function applyAdds(c: Xlator, adds: Adds): Promise<void> {
  if (adds.length === 0) return;
  if (compoundCapable(c)) {
    const [first, ...rest] = adds;
    await c.xattrop({ ...ROOT_CTX, pre: rest }, first.loc, first.name, first.add);
    return;
  }
  await Promise.all(adds.map((a) => c.xattrop(ROOT_CTX, a.loc, a.name, a.add)));
}

/** Pre-op on targets (the participants) for every loc; returns the targets where it worked. */
export async function preOp(r: Replicate, locs: Loc[], type: TxnType, targets: number[]): Promise<number[]> {
  const res = await r.onAll(async (c) => { for (const l of locs) await applyAdds(c, preAdds(r, l, type, targets)); }, targets);
  r.noteFailures(res);
  return res.filter((x) => x.ok).map((x) => x.i);
}

/** Post-op: on the marked children where the op worked (`ok`), of a transaction that ran on
 *  `participants`. */
export async function postOp(r: Replicate, locs: Loc[], type: TxnType, participants: number[], marked: number[], ok: number[]): Promise<void> {
  if (ok.length === 0) return;
  const res = await r.onAll(async (c) => { for (const l of locs) await applyAdds(c, postAdds(r, l, type, participants, ok)); }, ok.filter((i) => marked.includes(i)));
  r.noteFailures(res);
}

/** How long one directory's entry transaction stays open (its lock held, its marks set): each
 *  window costs a lock and a post-op call per brick, and an entry heal waits at most this long
 *  (250 ms: a 2 x 2 untar 8-18% faster than with 50 ms; GlusterFS's data post-op delay is 1 s). */
const ENTRY_TXN_MS = 250;
const ENTRY_TXN_MAX = 256;

/** One open entry transaction of a directory: its inode lock, held shared on `locked`; the
 *  pre-op marks that the first operation sent to each child carried; the children an operation
 *  failed on (they stay blamed). */
class EntryTxn {
  locked: number[] = [];
  readonly marked = new Set<number>();
  /** The first operation of each child, carrying the marks: later ones wait for it. */
  readonly first = new Map<number, Promise<void>>();
  readonly failed = new Set<number>();
  ops = 0;
  inflight = 0;
  closing = false;
  ready!: Promise<void>;
  timer?: NodeJS.Timeout;
  drained?: () => void;
  /** Resolves once the post-op and unlocks are sent. */
  readonly sent: Promise<void>;
  sentNow!: () => void;
  constructor(readonly dir: Loc, readonly owner: string) {
    this.sent = new Promise<void>((res) => { this.sentNow = res; });
  }
}

/** A locked transaction's post-op on child c: its clears and the inode unlock, in one call where
 *  the child can. The unlock goes even when the clears fail (they stay: the next heal sees them). */
async function clearAndUnlock(c: Xlator, loc: Loc, owner: string, adds: Adds): Promise<void> {
  const unlock = txnLock('unlock', owner);
  if (compoundCapable(c) && adds.length) {
    try {
      await c.inodelk({ ...ROOT_CTX, pre: adds }, loc, 'setlk', unlock);
      return;
    } catch (e) {
      if (preFailed(e)) { await c.inodelk(ROOT_CTX, loc, 'setlk', unlock).catch(() => undefined); throw e; }
      if (toErrno(e) !== 'ENOSYS') throw e;
    }
  }
  await applyAdds(c, adds);
  await c.inodelk(ROOT_CTX, loc, 'setlk', unlock).catch(() => undefined);
}

/**
 * Entry transactions, one open per directory at a time (GlusterFS's eager lock and delayed
 * post-op, applied to names): the first operation locks the directory on every up child (shared,
 * so other clients' transactions go on; an entry heal's exclusive lock waits for it, and new
 * transactions wait for a waiting heal); the first operation sent to each child marks the
 * directory there (in the same call), and the operations of the next ENTRY_TXN_MS join it
 * without marking again; then it closes, and each child's post-op (clearing the marks of the
 * children no operation failed on) and unlock go as one call. The answers never wait for the
 * post-op; this client's readers of the changelog flush it first.
 */
export class EntryTxns {
  private readonly open = new Map<string, EntryTxn>();
  private seq = 0;
  constructor(private readonly r: Replicate) {}

  /** Runs op on every up child of the directories' open transactions (opened and locked as
   *  needed). An op that fails on every child with the same errno changed nothing and blames
   *  nobody; any other failure blames that child until a heal. */
  async run<T>(what: string, dirs: Loc[], ctx: Ctx, op: (i: number, cx: Ctx) => Promise<T>): Promise<Settled<T>[]> {
    const r = this.r;
    const txns = await this.join(what, dirs);
    try {
      const targets = r.upChildren().filter((i) => txns.every((t) => t.locked.includes(i) && !t.failed.has(i)));
      // A child that went down meanwhile misses this op: it stays blamed.
      for (const t of txns) for (const i of t.locked) if (!targets.includes(i)) t.failed.add(i);
      if (!hasQuorum(r.quorum, targets)) throw quorumError(what, targets.length, r.children.length);
      const res = await r.onAll((_c, i) => this.withMarks(txns, i, ctx, (cx) => op(i, cx)), targets);
      r.noteFailures(res);
      const errs = res.filter((x): x is Extract<Settled<T>, { ok: false }> => !x.ok);
      const ok = res.filter((x) => x.ok).map((x) => x.i);
      const clean = ok.length === 0 && errs.length > 0 && errs.every((e) => e.err.errno === errs[0].err.errno && !isConnectionErrno(e.err.errno) && !preFailed(e.err));
      if (clean) throw errs[0].err;
      for (const e of errs) for (const t of txns) t.failed.add(e.i);
      // The copies of these directories now differ (until a heal): their listings need a look.
      if (errs.length) for (const t of txns) r.forgetClean(t.dir.path);
      if (ok.length === 0) throw r.bestError(res);
      if (!hasQuorum(r.quorum, ok)) throw quorumError(what, ok.length, r.children.length);
      return res;
    } finally {
      for (const t of txns) this.end(t);
      // The answer does not wait for the post-op; readers of these changelogs in this client do,
      // each for its own directory's (a rename's two are not one).
      for (const t of txns) r.behind([t.dir], t.sent);
    }
  }

  /** Runs op on child i; the first op sent to i in each transaction carries its marks (one round
   *  trip: the brick marks, then acts, and does not act if marking failed); later ones wait. */
  private async withMarks<T>(txns: EntryTxn[], i: number, ctx: Ctx, op: (cx: Ctx) => Promise<T>): Promise<T> {
    const c = this.r.children[i];
    const mine = txns.filter((t) => !t.first.has(i));
    const earlier = txns.filter((t) => t.first.has(i)).map((t) => t.first.get(i)!);
    let done!: () => void;
    const sent = new Promise<void>((res) => { done = res; });
    for (const t of mine) t.first.set(i, sent);
    try {
      await Promise.all(earlier);
      if (txns.some((t) => !mine.includes(t) && !t.marked.has(i))) throw new FsError('EIO', `${c.name}: its pre-op failed in this transaction`);
      const pre = mine.flatMap((t) => preAdds(this.r, t.dir, 'entry', t.locked));
      if (pre.length === 0) return await op(ctx);
      if (!compoundCapable(c)) {
        await applyAdds(c, pre);
        for (const t of mine) t.marked.add(i);
        return await op(ctx);
      }
      try {
        const v = await op({ ...ctx, pre });
        for (const t of mine) t.marked.add(i);
        return v;
      } catch (e) {
        if (!preFailed(e)) for (const t of mine) t.marked.add(i);
        throw e;
      }
    } finally {
      done();
    }
  }

  /** Joins the open transaction of every dir (opening and locking those that have none), all at
   *  once when every one is ready: an operation that waits for one directory's lock holds none of
   *  the others open meanwhile: the holder of that lock (a heal) may be waiting for one of them to
   *  close. (pjdfstest's rename/10.t on replicate hung so: the rename kept its target directory's
   *  transaction open while it waited for its source directory's lock.) */
  private async join(what: string, dirs: Loc[]): Promise<EntryTxn[]> {
    for (;;) {
      const txns = await Promise.all(dirs.map((d) => this.ready(what, d)));
      // One closed while another was being locked: take them again.
      if (txns.some((t) => t.closing || this.open.get(t.dir.path) !== t)) continue;
      for (const t of txns) {
        t.inflight++;
        if (++t.ops >= ENTRY_TXN_MAX) void this.close(t);
      }
      return txns;
    }
  }

  /** The open transaction of dir once it is locked (opened, locking the directory, if none is). */
  private async ready(what: string, dir: Loc): Promise<EntryTxn> {
    let t = this.open.get(dir.path);
    // A child that came up since it locked would go unlocked: start afresh.
    if (t && this.r.upChildren().some((i) => !t!.locked.includes(i))) { void this.close(t); t = undefined; }
    if (!t) {
      const fresh = new EntryTxn(dir, `afr-entry:${this.r.clientId}:${++this.seq}`);
      this.open.set(dir.path, fresh);
      fresh.ready = this.lock(what, fresh).then(
        () => { fresh.timer = setTimeout(() => void this.close(fresh), ENTRY_TXN_MS); },
        (e) => {
          if (this.open.get(dir.path) === fresh) this.open.delete(dir.path);
          fresh.locked = [];
          fresh.sentNow(); // not locked: no post-op to wait for
          throw e;
        },
      );
      t = fresh;
    }
    await t.ready;
    return t;
  }

  private end(t: EntryTxn): void {
    t.inflight--;
    if (t.inflight === 0) t.drained?.();
  }

  /** Locks t's directory on every up child: all at once without waiting; when some child's lock
   *  is held (or a heal waits for it), in child order, waiting, as data transactions do. */
  private async lock(what: string, t: EntryTxn): Promise<void> {
    const r = this.r;
    const targets = r.upChildren();
    if (!hasQuorum(r.quorum, targets)) throw quorumError(what, targets.length, r.children.length);
    const res = await r.onAll((c) => c.inodelk(ROOT_CTX, t.dir, 'setlk', txnLock('read', t.owner)), targets);
    let locked = res.filter((x) => x.ok || x.err.errno === 'ENOSYS').map((x) => x.i);
    if (res.some((x) => !x.ok && x.err.errno === 'EAGAIN')) {
      await Promise.all(locked.map((i) => this.unlock(t, i)));
      locked = [];
      for (const i of targets) {
        try {
          await r.children[i].inodelk(ROOT_CTX, t.dir, 'setlkw', txnLock('read', t.owner));
          locked.push(i);
        } catch (e) {
          if (toErrno(e) === 'ENOSYS') locked.push(i); // a brick without inode locks
          else r.noteError(i, e);
        }
      }
    } else {
      for (const x of res) if (!x.ok && x.err.errno !== 'ENOSYS') r.noteError(x.i, x.err);
    }
    t.locked = locked;
    if (!hasQuorum(r.quorum, locked)) {
      await Promise.all(locked.map((i) => this.unlock(t, i)));
      throw locked.length ? quorumError(what, locked.length, r.children.length) : new FsError('ENOTCONN', `${what}: no brick of the replica set is up`);
    }
  }

  private async unlock(t: EntryTxn, i: number): Promise<void> {
    await this.r.children[i].inodelk(ROOT_CTX, t.dir, 'setlk', txnLock('unlock', t.owner)).catch(() => undefined);
  }

  /** Closes t: no new operation joins; once its operations are done, each child gets its
   *  post-op and its unlock in one call. */
  private close(t: EntryTxn): Promise<void> {
    if (t.closing) return t.sent;
    t.closing = true;
    clearTimeout(t.timer);
    if (this.open.get(t.dir.path) === t) this.open.delete(t.dir.path);
    void (async () => {
      await t.ready.catch(() => undefined);
      if (t.inflight > 0) await new Promise<void>((res) => { t.drained = res; });
      const ok = t.locked.filter((i) => t.marked.has(i) && !t.failed.has(i));
      // A child an operation failed on keeps its marks (all of them: it blames itself).
      const res = await this.r.onAll((c, i) => clearAndUnlock(c, t.dir, t.owner, ok.includes(i) ? postAdds(this.r, t.dir, 'entry', t.locked, ok) : []), t.locked);
      this.r.noteFailures(res);
      t.sentNow();
    })();
    return t.sent;
  }

  /** Closes dir's open transaction now; resolves when its post-ops are sent. */
  flush(path: string): Promise<void> {
    const t = this.open.get(path);
    return t ? this.close(t) : Promise.resolve();
  }

  flushAll(): Promise<void> {
    return Promise.allSettled([...this.open.values()].map((t) => this.close(t))).then(() => undefined);
  }
}

let metaSeq = 0;

/** A locked transaction's post-op: on each marked child, its post-op where it is one of `ok`,
 *  and the unlock. */
async function postOpUnlock(r: Replicate, lock: { loc: Loc; lock: Flock }, type: TxnType, participants: number[], marked: number[], ok: number[]): Promise<void> {
  const res = await r.onAll((c, i) => clearAndUnlock(c, lock.loc, lock.lock.owner, ok.includes(i) ? postAdds(r, lock.loc, type, participants, ok) : []), marked);
  r.noteFailures(res);
}

const preFailed = (e: unknown) => (e as { preFailed?: boolean }).preFailed === true;

/**
 * Runs op on every up child inside a transaction whose changelog lives on `locs` (the inode for
 * metadata; entry operations go to their parent directories' EntryTxns, data ones to DataTxns).
 * An op that fails on every child with the same errno changed nothing: its marks are cleared
 * everywhere and the error is returned. Where every child can, the pre-op travels with the op
 * (one round trip: the brick marks, then acts, and does not act if marking failed); the post-op
 * follows without the caller waiting for it.
 */
export async function transact<T>(r: Replicate, what: string, type: TxnType, locs: Loc[], ctx: Ctx, op: (i: number, cx: Ctx) => Promise<T>): Promise<Settled<T>[]> {
  if (type === 'entry') return r.entryTxns.run(what, locs, ctx, op);
  const targets = r.upChildren();
  if (!hasQuorum(r.quorum, targets)) throw quorumError(what, targets.length, r.children.length);
  let marked: number[];
  let res: Settled<T>[];
  // A metadata transaction holds the inode's lock (shared) from its operation to its post-op,
  // taken in the same call: a metadata heal, which takes it exclusively, never sees it half done.
  const compound = targets.every((i) => compoundCapable(r.children[i]));
  const lock = type === 'metadata' && compound ? { loc: locs[0], lock: txnLock('read', `afr-meta:${r.clientId}:${++metaSeq}`) } : undefined;
  if (compound) {
    const pre = locs.flatMap((loc) => preAdds(r, loc, type, targets));
    let all = await r.onAll((_c, i) => op(i, { ...ctx, pre, lock }), targets);
    const busy = (x: Settled<T>) => !x.ok && preFailed(x.err) && x.err.errno === 'EAGAIN';
    if (lock && all.every(busy)) {
      // A heal holds the inode everywhere: wait for it (in child order), then go.
      for (const i of targets) await r.children[i].inodelk(ROOT_CTX, lock.loc, 'setlkw', lock.lock).catch((e) => r.noteError(i, e));
      all = await r.onAll((_c, i) => op(i, { ...ctx, pre, lock }), targets);
    }
    r.noteFailures(all);
    // A child whose marking failed (or whose lock a heal holds) did not act either: it is out of
    // this transaction, blamed by the others.
    marked = all.filter((x) => x.ok || !preFailed(x.err)).map((x) => x.i);
    if (lock) void Promise.all(all.filter((x) => !marked.includes(x.i)).map((x) => r.children[x.i].inodelk(ROOT_CTX, lock.loc, 'setlk', txnLock('unlock', lock.lock.owner)).catch(() => undefined)));
    if (marked.length === 0) throw r.bestError(all);
    res = all.filter((x) => marked.includes(x.i));
  } else {
    marked = await preOp(r, locs, type, targets);
    if (!hasQuorum(r.quorum, marked)) {
      await postOp(r, locs, type, targets, marked, marked);
      throw marked.length ? quorumError(what, marked.length, r.children.length) : new FsError('ENOTCONN', `${what}: no brick of the replica set is up`);
    }
    res = await r.onAll((_c, i) => op(i, ctx), marked);
    r.noteFailures(res);
  }
  let ok = res.filter((x) => x.ok).map((x) => x.i);
  const errs = res.filter((x): x is Extract<Settled<T>, { ok: false }> => !x.ok);
  const clean = ok.length === 0 && errs.length > 0 && errs.every((e) => e.err.errno === errs[0].err.errno && !isConnectionErrno(e.err.errno));
  if (clean) ok = marked;
  // The answer does not wait for the post-op (the op is done where it worked); readers of
  // these changelogs in this client wait for it (Replicate.behind).
  r.behind(locs, lock ? postOpUnlock(r, lock, type, targets, marked, ok) : postOp(r, locs, type, targets, marked, ok));
  if (clean) throw errs[0].err;
  if (res.every((x) => !x.ok)) throw r.bestError(res);
  if (!hasQuorum(r.quorum, ok)) throw quorumError(what, ok.length, r.children.length);
  return res;
}

/** The per-child fds of a replicate fd. */
export interface ReplFd {
  fds: (Fd | undefined)[];
  gfid: string;
  /** The children whose create took the inode's transaction lock already, under its own owner
   *  (the first write's transaction through this fd adopts it), and the timer that lets it go if
   *  no write comes. */
  preLocked?: { children: number[]; owner: string };
  preLockTimer?: NodeJS.Timeout;
}

/** The owner of the data transaction lock a client takes on an inode. */
export const dataTxnOwner = (clientId: string, gfid: string) => `afr:${clientId}:${gfid}`;
/** The owner of the lock a create takes for the transaction of the first write. */
export const createLockOwner = (clientId: string, gfid: string) => `afr-create:${clientId}:${gfid}`;

/** One open data transaction of an inode: locked on `locked`, marked on `marked`, `failed` fell out. */
class DataTxn {
  /** Children locked for the transaction (its ops go to these, less the failed). */
  locked: number[] = [];
  /** Children whose pre-op is done (it travels with the first op sent to each). */
  readonly marked: number[] = [];
  /** The first op of each child, carrying its pre-op: later ops of that child wait for it. */
  readonly first = new Map<number, Promise<void>>();
  readonly failed = new Set<number>();
  inflight = 0;
  timer?: NodeJS.Timeout;
  closing?: Promise<void>;
  drained?: () => void;
  ready!: Promise<void>;
  /** Metadata operations of the inode that joined this transaction (see DataTxns.runMeta). */
  meta?: MetaPart;
  /** The file was created through this fd: its first writes take the metadata part too (see
   *  withPreOp). */
  fresh = false;
  constructor(readonly gfid: string, readonly loc: Loc, readonly rfd: ReplFd, public owner: string) {}
  get active(): number[] { return this.locked.filter((i) => !this.failed.has(i)); }
}

/** The metadata side of a data transaction: the inode's metadata lock (shared, under its own
 *  owner) that each child took with its first metadata operation (`lockSent`: asked for, let go
 *  at the close); the children whose metadata pre-op is set (`marked`), the first operation of
 *  each child (later ones wait for it) and the children a metadata operation failed on. */
interface MetaPart {
  owner: string;
  /** The children it runs on (those of the first metadata operation; later ones run on fewer). */
  readonly participants: number[];
  readonly first: Map<number, Promise<void>>;
  readonly lockSent: Set<number>;
  readonly marked: Set<number>;
  readonly failed: Set<number>;
  /** The write that carries each child's lock and pre-op, while it is the first (freshMeta). */
  readonly carriers: Map<number, WriteMark>;
}

export class DataTxns {
  private readonly open = new Map<string, DataTxn>();
  constructor(private readonly r: Replicate, private readonly delayMs: number) {}

  /** True while this client has a data transaction open on the inode (no heal then). */
  busy(gfid: string): boolean {
    return this.open.has(gfid);
  }

  /** Children that fell out of the inode's open transaction (not readable until healed). */
  failedOf(gfid: string): ReadonlySet<number> {
    return this.open.get(gfid)?.failed ?? new Set();
  }

  /** Runs one data op (write, ftruncate) of fd inside the inode's open transaction. */
  async run<T>(what: string, fd: Fd, rfd: ReplFd, ctx: Ctx, op: (i: number, childFd: Fd, cx: Ctx) => Promise<T>): Promise<T> {
    const t = await this.begin(what, fd, rfd);
    try {
      const targets = t.active.filter((i) => rfd.fds[i]);
      const res = await this.r.onAll((_c, i) => this.withPreOp(t, i, ctx, (cx) => op(i, rfd.fds[i]!, cx)), targets);
      this.r.noteFailures(res);
      for (const x of res) if (!x.ok) t.failed.add(x.i);
      const ok = res.filter((x) => x.ok);
      if (ok.length === 0) throw this.r.bestError(res);
      if (!hasQuorum(this.r.quorum, t.active)) throw quorumError(what, t.active.length, this.r.children.length);
      const data = ok.find((x) => x.i !== this.r.arbiter) ?? ok[0];
      return (data as { value: T }).value;
    } finally {
      this.end(t);
    }
  }

  private async begin(what: string, fd: Fd, rfd: ReplFd): Promise<DataTxn> {
    for (;;) {
      const cur = this.open.get(rfd.gfid);
      if (cur?.closing) { await cur.closing; continue; }
      let t = cur;
      if (!t) {
        t = new DataTxn(rfd.gfid, fd.loc, rfd, dataTxnOwner(this.r.clientId, rfd.gfid));
        this.open.set(rfd.gfid, t);
        const fresh = t;
        t.ready = this.start(what, fresh).catch((e) => { this.open.delete(fresh.gfid); throw e; });
      }
      t.inflight++;
      clearTimeout(t.timer);
      try {
        await t.ready;
      } catch (e) {
        t.inflight--;
        throw e;
      }
      return t;
    }
  }

  /** Lock everywhere at once without waiting; when another holds the lock on some child, in
   *  child order, waiting (so two clients never deadlock), as GlusterFS's AFR does. The pre-op
   *  goes with each child's first op (withPreOp). */
  private async start(what: string, t: DataTxn): Promise<void> {
    const targets = this.r.upChildren().filter((i) => t.rfd.fds[i]);
    if (!hasQuorum(this.r.quorum, targets)) throw quorumError(what, targets.length, this.r.children.length);
    const pre = this.takePreLock(t.rfd);
    if (pre && targets.every((i) => pre.children.includes(i))) {
      t.owner = pre.owner; // the create locked it for this transaction
      t.locked = targets;
      t.fresh = true;
      return;
    }
    if (pre) this.unlockPreLock(t.rfd, pre);
    let locked = await this.tryLockAll(t, targets);
    if (!locked) {
      locked = [];
      for (const i of targets) {
        try {
          await this.r.children[i].lk(ROOT_CTX, t.rfd.fds[i]!, 'setlkw', txnLock('write', t.owner));
          locked.push(i);
        } catch (e) {
          this.r.noteError(i, e);
        }
      }
    }
    t.locked = locked;
    if (!hasQuorum(this.r.quorum, locked)) {
      for (const i of locked) await this.unlock(t, i);
      throw locked.length ? quorumError(what, locked.length, this.r.children.length) : new FsError('ENOTCONN', `${what}: no brick of the replica set is up`);
    }
  }

  /** Runs op on child i; the first op of each child carries the pre-op (one round trip: the
   *  brick marks, then acts, and does not act if marking failed); later ones wait for it. */
  private async withPreOp<T>(t: DataTxn, i: number, ctx: Ctx, op: (cx: Ctx) => Promise<T>): Promise<T> {
    const first = t.first.get(i);
    if (first) {
      await first;
      if (t.failed.has(i)) throw new FsError('EIO', `${this.r.children[i].name} fell out of the transaction`);
      return op(ctx);
    }
    let done!: () => void;
    t.first.set(i, new Promise<void>((res) => { done = res; }));
    try {
      if (i === this.r.arbiter || !compoundCapable(this.r.children[i])) {
        // The arbiter's data ops need no brick call to carry it (and some children cannot).
        await applyAdds(this.r.children[i], preAdds(this.r, t.loc, 'data', t.locked));
        t.marked.push(i);
        return await op(ctx);
      }
      const meta = this.freshMeta(t, i, ctx.written);
      if (meta) {
        try {
          const v = await op({ ...ctx, pre: mergeAdds(preAdds(this.r, t.loc, 'data', t.locked), preAdds(this.r, t.loc, 'metadata', meta.m.participants)), lock: meta.lock });
          t.marked.push(i);
          meta.taken(true);
          return v;
        } catch (e) {
          const busy = preFailed(e) && toErrno(e) === 'EAGAIN';
          meta.taken(!preFailed(e));
          if (!busy) {
            if (!preFailed(e)) t.marked.push(i);
            throw e;
          }
          // A metadata heal holds the inode: the write goes without the metadata part.
        }
      }
      try {
        const v = await op({ ...ctx, pre: preAdds(this.r, t.loc, 'data', t.locked) });
        t.marked.push(i);
        return v;
      } catch (e) {
        if (!preFailed(e)) t.marked.push(i);
        throw e;
      }
    } catch (e) {
      t.failed.add(i);
      throw e;
    } finally {
      done();
    }
  }

  /**
   * The metadata part a file created through this fd takes with its first write to child i:
   * tar, cp -p and rsync set the mode and times of each file they write before closing it, so
   * the write's call also takes the metadata lock and sets the metadata pre-op (one counter
   * update with the data's), and their setattr then goes bare. The post-op and the lock go with
   * the data transaction's, as runMeta's do; a file that gets no setattr pays nothing more than
   * those bytes. Undefined with an arbiter, a child down or without compound unlocks, or once
   * the part is set up for i.
   * `taken(sent)`: whether the brick took the lock and the marks (false: a heal held the lock,
   * so a later metadata operation tries again on its own).
   */
  private freshMeta(t: DataTxn, i: number, carrier?: WriteMark): { m: MetaPart; lock: { loc: Loc; lock: Flock }; taken: (sent: boolean) => void } | undefined {
    // Every child in: a metadata pre-op that blamed one (down) for a change never made would
    // cost it a metadata heal.
    if (!t.fresh || this.r.arbiter >= 0 || t.active.length !== this.r.children.length) return undefined;
    if (!this.r.children.every((c, j) => this.r.up[j] && unlockCapable(c))) return undefined;
    const m = (t.meta ??= this.metaPart(t.active));
    if (m.first.has(i) || m.lockSent.has(i)) return undefined;
    let done!: () => void;
    const mine = new Promise<void>((res) => { done = res; });
    m.first.set(i, mine);
    m.lockSent.add(i);
    if (carrier) m.carriers.set(i, carrier);
    return {
      m,
      lock: { loc: t.loc, lock: txnLock('read', m.owner) },
      taken: (sent) => {
        if (sent) m.marked.add(i);
        else if (m.first.get(i) === mine) m.first.delete(i);
        m.carriers.delete(i);
        done();
      },
    };
  }

  /**
   * Runs a metadata operation (setattr, setxattr) of an inode inside the inode's open data
   * transaction: what tar, cp -p and rsync do between a file's writes and its close. Each child's
   * first one takes the metadata lock (shared: a metadata heal waits) and sets the metadata
   * pre-op in the same call, as a transaction of its own would; the post-op and that lock go
   * with the data transaction's own post-op and unlock, in one call per child (close). Undefined
   * when no transaction of this client is open on the path's inode, or it does not cover every
   * up child, or some child cannot take compound calls with an unlock (a brick from before
   * those), or a heal holds the inode everywhere: the caller runs a transaction of its own then.
   */
  async runMeta<T>(what: string, loc: Loc, ctx: Ctx, op: (i: number, cx: Ctx) => Promise<T>): Promise<Settled<T>[] | undefined> {
    const t = loc.gfid ? this.open.get(loc.gfid) : undefined;
    if (!t || t.closing || t.loc.path !== loc.path) return undefined;
    const up = this.r.upChildren();
    if (!up.every((i) => unlockCapable(this.r.children[i]))) return undefined;
    t.inflight++;
    clearTimeout(t.timer);
    try {
      if (!(await t.ready.then(() => true, () => false))) return undefined;
      const targets = t.active;
      if (!up.every((i) => targets.includes(i))) return undefined;
      if (!hasQuorum(this.r.quorum, targets)) throw quorumError(what, targets.length, this.r.children.length);
      const m = (t.meta ??= this.metaPart(targets));
      const res = await this.r.onAll((_c, i) => this.withMetaPreOp(m, i, loc, ctx, (cx) => op(i, cx)), targets);
      this.r.noteFailures(res);
      const errs = res.filter((x): x is Extract<Settled<T>, { ok: false }> => !x.ok);
      // A heal holds the inode on every child: nothing was done; the caller's own transaction waits.
      if (errs.length === res.length && errs.every((e) => preFailed(e.err) && e.err.errno === 'EAGAIN')) return undefined;
      const ok = res.filter((x) => x.ok).map((x) => x.i);
      // Failed everywhere alike (EPERM, ENOENT...): nothing changed, nobody is blamed.
      const clean = ok.length === 0 && errs.every((e) => e.err.errno === errs[0].err.errno && !isConnectionErrno(e.err.errno) && !preFailed(e.err));
      if (clean) throw errs[0].err;
      for (const e of errs) m.failed.add(e.i);
      if (ok.length === 0) throw this.r.bestError(res);
      if (!hasQuorum(this.r.quorum, ok)) throw quorumError(what, ok.length, this.r.children.length);
      return res.filter((x) => x.ok);
    } finally {
      this.end(t);
    }
  }

  /** A data transaction's metadata part, not yet set up on any child, running on participants. */
  private metaPart(participants: number[]): MetaPart {
    return { owner: `afr-meta:${this.r.clientId}:${++metaSeq}`, participants, first: new Map(), lockSent: new Set(), marked: new Set(), failed: new Set(), carriers: new Map() };
  }

  /** Runs metadata op on child i; the first of each child carries the lock and the pre-op (one
   *  round trip); later ones wait for it, and go bare once it marked. */
  private async withMetaPreOp<T>(m: MetaPart, i: number, loc: Loc, ctx: Ctx, op: (cx: Ctx) => Promise<T>): Promise<T> {
    // The write carrying child i's lock and pre-op is still on its way (a small file's close:
    // write-behind sends its data and this setattr together): go right behind it, relying on its
    // marks, rather than after its answer. The brick refuses if they were not made; then the
    // loop below sets them up as for any other.
    const carrier = m.carriers.get(i);
    if (carrier) {
      const first = m.first.get(i);
      try {
        const v = await op({ ...ctx, marksOf: carrier });
        await first;
        return v;
      } catch (e) {
        if (!preFailed(e) || toErrno(e) !== 'EAGAIN') { await first; throw e; }
      }
    }
    for (let first = m.first.get(i); first; first = m.first.get(i)) {
      await first;
      if (m.marked.has(i)) return op(ctx);
    }
    let done!: () => void;
    const mine = new Promise<void>((res) => { done = res; });
    m.first.set(i, mine);
    m.lockSent.add(i);
    try {
      const v = await op({ ...ctx, pre: preAdds(this.r, loc, 'metadata', m.participants), lock: { loc, lock: txnLock('read', m.owner) } });
      m.marked.add(i);
      return v;
    } catch (e) {
      if (!preFailed(e)) m.marked.add(i);
      else if (m.first.get(i) === mine) m.first.delete(i); // not marked: the next one tries again
      throw e;
    } finally {
      done();
    }
  }

  /** The lock the create of rfd took, now the caller's (or undefined). */
  private takePreLock(rfd: ReplFd): ReplFd['preLocked'] {
    const pre = rfd.preLocked;
    rfd.preLocked = undefined;
    clearTimeout(rfd.preLockTimer);
    return pre;
  }

  private unlockPreLock(rfd: ReplFd, pre: NonNullable<ReplFd['preLocked']>): void {
    for (const i of pre.children) void this.r.children[i].lk(ROOT_CTX, rfd.fds[i]!, 'setlk', txnLock('unlock', pre.owner)).catch(() => undefined);
  }

  /** A create took the transaction lock for the write that usually follows: if none comes through
   *  its fd within the post-op delay, the lock goes (other writers of the file wait for it). */
  holdPreLock(rfd: ReplFd, children: number[], owner: string): void {
    if (children.length === 0) return;
    rfd.preLocked = { children, owner };
    rfd.preLockTimer = setTimeout(() => {
      const pre = this.takePreLock(rfd);
      if (pre) this.unlockPreLock(rfd, pre);
    }, this.delayMs);
    rfd.preLockTimer.unref?.();
  }

  /** Forgets rfd's create lock (its fds are being released: that drops it on the bricks). */
  dropPreLock(rfd: ReplFd): void {
    this.takePreLock(rfd);
  }

  /** The children locked at once, or undefined (none kept) when some child's lock is held. */
  private async tryLockAll(t: DataTxn, targets: number[]): Promise<number[] | undefined> {
    const res = await this.r.onAll((c, i) => c.lk(ROOT_CTX, t.rfd.fds[i]!, 'setlk', txnLock('write', t.owner)), targets);
    const got = res.filter((x) => x.ok).map((x) => x.i);
    if (res.some((x) => !x.ok && x.err.errno === 'EAGAIN')) {
      await Promise.all(got.map((i) => this.unlock(t, i)));
      return undefined;
    }
    for (const x of res) if (!x.ok) this.r.noteError(x.i, x.err);
    return got;
  }

  /** Post-op and unlock of one child: one compound call where the child can. `ok` are the
   *  children whose data marks this child clears (none: it only unlocks); the metadata part's
   *  clears and its lock go in the same call. */
  private async postOpUnlock(t: DataTxn, i: number, ok: number[]): Promise<void> {
    const c = this.r.children[i];
    const m = t.meta;
    if (!compoundCapable(c)) {
      if (ok.length) await postOp(this.r, [t.loc], 'data', t.locked, [i], ok);
      await this.unlock(t, i);
      return;
    }
    const dataClears = ok.length ? postAdds(this.r, t.loc, 'data', t.locked, ok) : [];
    const okMeta = m ? [...m.marked].filter((j) => !m.failed.has(j)) : [];
    // A child a metadata op failed on keeps its marks (all of them: it blames itself).
    const metaClears = m && okMeta.includes(i) ? postAdds(this.r, t.loc, 'metadata', m.participants, okMeta) : [];
    const adds = mergeAdds(dataClears, metaClears);
    const unlock = m?.lockSent.has(i) ? { loc: t.loc, lock: txnLock('unlock', m.owner) } : undefined;
    try {
      await c.lk({ ...ROOT_CTX, pre: adds.length ? adds : undefined, unlock }, t.rfd.fds[i]!, 'setlk', txnLock('unlock', t.owner));
    } catch (e) {
      this.r.noteError(i, e);
      if (preFailed(e)) await this.unlock(t, i); // the counters stay: the next heal sees them
    }
  }

  private async unlock(t: DataTxn, i: number): Promise<void> {
    await this.r.children[i].lk(ROOT_CTX, t.rfd.fds[i]!, 'setlk', txnLock('unlock', t.owner)).catch(() => undefined);
  }

  private end(t: DataTxn): void {
    t.inflight--;
    if (t.inflight > 0) return;
    if (t.drained) { t.drained(); return; }
    clearTimeout(t.timer);
    t.timer = setTimeout(() => void this.close(t.gfid), this.delayMs);
    t.timer.unref?.();
  }

  /** Ends the inode's open transaction now (flush, fsync, release, or the post-op delay). */
  async close(gfid: string): Promise<void> {
    const t = this.open.get(gfid);
    if (!t) return;
    t.closing ??= (async () => {
      clearTimeout(t.timer);
      await t.ready.catch(() => undefined);
      if (t.inflight > 0) await new Promise<void>((res) => { t.drained = res; });
      const ok = t.active.filter((i) => t.marked.includes(i));
      // Locked but never sent a data op (nothing marked there): unlocked (with the metadata part).
      const idle = t.active.filter((i) => !t.marked.includes(i));
      // A child that fell out still lets go of the metadata lock it took.
      const out = t.meta ? [...t.meta.lockSent].filter((i) => !t.active.includes(i)) : [];
      await Promise.all([
        ...ok.map((i) => this.postOpUnlock(t, i, ok)),
        ...idle.map((i) => (t.meta ? this.postOpUnlock(t, i, []) : this.unlock(t, i))),
        ...out.map((i) => this.r.children[i].inodelk(ROOT_CTX, t.loc, 'setlk', txnLock('unlock', t.meta!.owner)).catch(() => undefined)),
      ]);
      this.open.delete(gfid);
    })();
    await t.closing;
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.open.keys()].map((g) => this.close(g)));
  }
}

export { isConnectionErrno };
export type { Ctx };
