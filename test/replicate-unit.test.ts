// cluster/replicate over in-memory children: the changelog around every operation, reads from a
// good copy, heals (data, metadata, entries, renames), split-brain, quorum and the arbiter.
import test from 'ava';
import { pino } from 'pino';
import { FsError } from '../common/errors.js';
import { LockTable } from '../brickd/locks.js';
import { OPEN_IATT, OPEN_XATTRS, ROOT_CTX as C, S_IFDIR, S_IFREG, type Ctx, type Fd, type Flock, type LockCmd, type Loc } from '../common/types.js';
import { DIRTY_KEY, afrKey, decode, findDirection, type Counts, type Matrix } from '../client/xlators/cluster/replicate/changelog.js';
import { Replicate, SPLIT_BRAIN_XATTR } from '../client/xlators/cluster/replicate/index.js';
import { hasQuorum } from '../client/xlators/cluster/replicate/quorum.js';
import { choose } from '../client/xlators/cluster/replicate/split-brain.js';
import { waitFor } from './harness.js';
import { MemXlator, newGfid } from './support/mem-xlator.js';

const log = pino({ level: 'silent' });
const xctx = { log, volume: 'v', volumeId: 'id', secret: 's', rootCtx: C };

/** A mem brick with xattrop, a brick-style lock table (owner-exclusive write locks) and the
 *  brick's own inode lock table. */
class AfrMem extends MemXlator {
  private readonly held = new Map<string, string>();
  /** Reads ctx.openXattrs with an open, as a brick with "open-xattrs" does. */
  openXattrsCompound = false;
  opens = 0;
  private readonly openFds = new Set<Fd>();
  get openCount(): number { return this.openFds.size; }
  override async release(_c: Ctx, fd: Fd): Promise<void> { this.openFds.delete(fd); }
  override async open(c: Ctx, loc: Loc, flags: number): Promise<Fd> {
    const fd = await super.open(c, loc, flags);
    this.opens++;
    this.openFds.add(fd);
    if (this.openXattrsCompound && c.openXattrs) {
      const r = await this.lookup(c, loc, [...c.openXattrs]);
      fd.ctx.set(OPEN_IATT, r.iatt);
      fd.ctx.set(OPEN_XATTRS, r.xattrs);
    }
    return fd;
  }
  inodeLocks = new LockTable();
  /** inodelk calls that took or waited for a lock, by type. */
  readonly inodelks: Flock[] = [];
  /** xattrop calls by path. */
  readonly xattrops = new Map<string, number>();
  override async xattrop(c: Ctx, loc: Loc, name: string, add: Buffer): Promise<Buffer> {
    this.xattrops.set(loc.path, (this.xattrops.get(loc.path) ?? 0) + 1);
    const cur = await this.getxattr(c, loc, name).catch(() => Buffer.alloc(add.length));
    const out = Buffer.alloc(add.length);
    for (let i = 0; i < add.length; i += 4) out.writeInt32BE(cur.readInt32BE(i) + add.readInt32BE(i), i);
    await this.setxattr(c, loc, name, out);
    return out;
  }
  override async lk(_c: Ctx, fd: Fd, _cmd: string, l: Flock): Promise<Flock> {
    if (this.down) throw new FsError('ENOTCONN');
    const k = `${fd.gfid}:${l.start}`;
    if (l.type === 'unlock') { if (this.held.get(k) === l.owner) this.held.delete(k); return l; }
    const h = this.held.get(k);
    if (h && h !== l.owner) throw new FsError('EAGAIN', 'locked');
    this.held.set(k, l.owner);
    return l;
  }
  override async inodelk(_c: Ctx, loc: Loc, cmd: LockCmd, l: Flock): Promise<Flock> {
    if (this.down) throw new FsError('ENOTCONN');
    if (l.type !== 'unlock') this.inodelks.push(l);
    return this.inodeLocks.lk(loc.path, -1, cmd, l, undefined, true);
  }
  /** The changelog cell for child: its blame, or for this brick itself its dirty counter. */
  counts(path: string, child: string): Counts {
    const x = this.names.get(path)?.xattrs;
    const c = decode(x?.get(afrKey(child)));
    if (child !== this.name) return c;
    const d = decode(x?.get(DIRTY_KEY));
    return [c[0] + d[0], c[1] + d[1], c[2] + d[2]];
  }
  data(path: string): string | undefined {
    return this.names.get(path)?.data.toString();
  }
}

async function setup(n = 2, options: Record<string, unknown> = {}, openXattrs = true) {
  const kids = Array.from({ length: n }, (_, i) => new AfrMem(`v-client-${i}`));
  for (const k of kids) k.openXattrsCompound = openXattrs;
  const r = new Replicate('v-replicate-0', { 'post-op-delay-secs': 0, 'background-self-heal-count': 0, ...options }, kids, xctx);
  await r.init();
  return { kids, r };
}

const file = (path: string) => ({ path });
async function writeFile(r: Replicate, path: string, data: string, append = false) {
  let fd: Fd;
  try {
    fd = await r.open(C, file(path), append ? 2 : 2 | 0o1000);
  } catch {
    fd = (await r.create(C, file(path), 2, { mode: S_IFREG | 0o644, umask: 0, gfid: newGfid() })).fd;
  }
  const off = append ? Number((await r.fstat(C, fd)).size) : 0;
  await r.write(C, fd, off, Buffer.from(data));
  await r.release(C, fd);
}
async function readFile(r: Replicate, path: string): Promise<string> {
  const fd = await r.open(C, file(path), 0);
  try {
    return (await r.read(C, fd, 0, 1 << 20)).toString();
  } finally {
    await r.release(C, fd);
  }
}
function down(r: Replicate, k: AfrMem) { k.down = true; r.notify('child-down', k); }
/** Back up: like a brick that restarted or a connection made anew, it holds no inode lock. */
function up(r: Replicate, k: AfrMem) { k.down = false; k.inodeLocks = new LockTable(); r.notify('child-up', k); }
const zero: Counts = [0, 0, 0];

test('findDirection: wise copies accuse, fools do not, mutual accusation is split-brain', (t) => {
  const row = (...c: Counts[]) => c;
  const m1: Matrix = [row(zero, [1, 0, 0]), row([1, 0, 0], [1, 0, 0])];
  const d1 = findDirection(m1, 'data');
  t.deepEqual([d1.sources, d1.sinks, d1.splitBrain], [[0], [1], false], 'brick 0 blames 1; 1 is a fool');
  const m2: Matrix = [row(zero, [2, 0, 0]), row([3, 0, 0], zero)];
  t.true(findDirection(m2, 'data').splitBrain);
  const m3: Matrix = [row([1, 0, 0], [1, 0, 0]), row([1, 0, 0], [1, 0, 0])];
  const d3 = findDirection(m3, 'data');
  t.true(d3.allFools && !d3.splitBrain && d3.sinks.length === 0);
  t.false(findDirection([row(zero, zero), row(zero, zero)], 'metadata').pending);
  t.true(hasQuorum({ type: 'auto', count: 1, n: 3 }, [0, 2]));
  t.false(hasQuorum({ type: 'auto', count: 1, n: 3 }, [2]));
  t.true(hasQuorum({ type: 'auto', count: 1, n: 2 }, [0]));
  t.false(hasQuorum({ type: 'auto', count: 1, n: 2 }, [1]));
  t.true(hasQuorum({ type: 'fixed', count: 2, n: 3 }, [1, 2]));
});

test('writes reach every child and leave no pending counter; a burst of creates marks and clears its directory once', async (t) => {
  const { kids, r } = await setup();
  await r.mkdir(C, file('/d'), { mode: S_IFDIR | 0o755, umask: 0, gfid: newGfid() });
  await r.entryTxns.flushAll();
  for (const k of kids) k.xattrops.clear();
  const N = 20;
  for (let i = 0; i < N; i++) await writeFile(r, `/d/g${i}`, 'x');
  await writeFile(r, '/d/f', 'hello');
  await r.entryTxns.flushAll();
  // Per child: the burst is one entry transaction (a few, if it outlasted ENTRY_TXN_MS): its
  // first create raises the dirty counter of /d, its close lowers it; none per create, and no
  // blame (nothing failed).
  const perTxn = 2;
  for (const k of kids) {
    const n = k.xattrops.get('/d')!;
    t.true(n >= perTxn && n % perTxn === 0 && n <= 3 * perTxn, `xattrops of /d on ${k.name}: ${n}`);
  }
  t.true(kids.every((k) => k.inodelks.filter((l) => l.type === 'read').length <= 4), 'one shared lock of /d per transaction');
  await r.setattr(C, file('/d/f'), { mode: 0o600 });
  await r.lookup(C, file('/d/f')); // waits for the post-op of the chmod
  for (const k of kids) {
    t.is(k.data('/d/f'), 'hello');
    for (const j of kids) {
      t.deepEqual(k.counts('/d/f', j.name), zero);
      t.deepEqual(k.counts('/d', j.name), zero);
      if (j !== k) t.false(k.names.get('/d')!.xattrs.has(afrKey(j.name)), 'no blame key was ever written');
    }
  }
});

test('counters the earlier scheme wrote (one per child on every brick, its own name included) read as the same matrix, and a heal zeroes them', async (t) => {
  const { kids, r } = await setup();
  await writeFile(r, '/f', 'short');
  // A writer died mid-transaction under the earlier scheme: brick 0 marked every child's key;
  // brick 1, marked too, holds the longer copy. Both accuse themselves: the largest copy wins.
  const one = Buffer.alloc(12);
  one.writeInt32BE(1, 0);
  for (const k of kids) for (const j of kids) k.names.get('/f')!.xattrs.set(afrKey(j.name), Buffer.from(one));
  kids[1].names.get('/f')!.data = Buffer.from('the longer copy');
  t.true((await r.lookup(C, file('/f'))).iatt.size > 0n);
  await r.heal('/f');
  t.is(kids[0].data('/f'), 'the longer copy', 'brick 0 is a fool by its own name\'s key, not a source');
  for (const k of kids) for (const j of kids) t.deepEqual(k.counts('/f', j.name), zero, `/f on ${k.name} for ${j.name}`);
});

test('a child down during writes is blamed on the others, never read, and healed from them', async (t) => {
  const { kids, r } = await setup();
  await writeFile(r, '/f', 'v1');
  down(r, kids[1]);
  await writeFile(r, '/f', 'v2-longer');
  t.true(kids[0].counts('/f', kids[1].name)[0] > 0, 'brick 0 blames brick 1 for data');
  t.is(kids[1].data('/f'), 'v1');
  up(r, kids[1]);
  // The stale copy is never read, even before the heal.
  const reads = await Promise.all([0, 1, 2, 3].map(() => readFile(r, '/f')));
  t.true(reads.every((x) => x === 'v2-longer'));
  const res = await r.heal('/f');
  t.false(res.splitBrain);
  t.is(kids[1].data('/f'), 'v2-longer');
  for (const k of kids) for (const j of kids) t.deepEqual(k.counts('/f', j.name), zero);
});

test('a stat of a file whose copies the last lookup found alike asks one good copy; one with a blamed copy, or one this client knows nothing of, looks up every copy and never answers from the stale one', async (t) => {
  const { kids, r } = await setup();
  const calls = kids.map(() => ({ stat: 0, lookup: 0 }));
  kids.forEach((k, i) => {
    const stat = k.stat.bind(k);
    const lookup = k.lookup.bind(k);
    k.stat = (c, l) => { calls[i].stat++; return stat(c, l); };
    k.lookup = (c, l, x) => { calls[i].lookup++; return lookup(c, l, x); };
  });
  const count = () => calls.map((c) => ({ ...c }));
  const reset = () => { for (const c of calls) { c.stat = 0; c.lookup = 0; } };
  await writeFile(r, '/f', 'v1');
  const { iatt } = await r.lookup(C, file('/f'));
  reset();
  const loc = { path: '/f', gfid: iatt.gfid };
  t.is(Number((await r.stat(C, loc)).size), 2);
  const one = count();
  t.is(one[0].stat + one[1].stat, 1, 'one copy asked');
  t.is(one[0].lookup + one[1].lookup, 0, 'no lookup');
  // A copy written while it was down is blamed: after it is back, stats look up both and answer
  // from the good copy.
  down(r, kids[1]);
  await writeFile(r, '/f', 'v2-longer');
  up(r, kids[1]);
  reset();
  for (let n = 0; n < 4; n++) t.is(Number((await r.stat(C, loc)).size), 'v2-longer'.length);
  t.true(count().every((c) => c.lookup === 4), 'every stat looked up every copy');
  // An inode this client has no state of (the path's own answers).
  await r.heal('/f');
  await r.lookup(C, file('/f'));
  reset();
  const other = await r.stat(C, { path: '/f', gfid: newGfid() });
  t.is(other.gfid, iatt.gfid);
  t.true(count().every((c) => c.lookup === 1));
});

test('a truncate by path with a child down cuts the copy that is up, blames the other, and a heal cuts it too', async (t) => {
  const { kids, r } = await setup();
  await writeFile(r, '/f', 'abcdefgh');
  down(r, kids[1]);
  const iatt = await r.truncate(C, file('/f'), 3);
  t.is(Number(iatt.size), 3);
  t.is(kids[0].data('/f'), 'abc');
  t.is(kids[1].data('/f'), 'abcdefgh');
  t.true(kids[0].counts('/f', kids[1].name)[0] > 0, 'brick 0 blames brick 1 for data');
  t.deepEqual(kids[0].counts('/f', kids[0].name), zero);
  up(r, kids[1]);
  t.is(await readFile(r, '/f'), 'abc');
  t.false((await r.heal('/f')).splitBrain);
  t.is(kids[1].data('/f'), 'abc');
  for (const k of kids) for (const j of kids) t.deepEqual(k.counts('/f', j.name), zero);
  t.is(((await r.truncate(C, file('/missing'), 0).catch((e: unknown) => e)) as FsError).errno, 'ENOENT');
});

test('a heal that cannot reach one stale copy keeps the blame on it: only the copies it made alike are cleared', async (t) => {
  const { kids, r } = await setup(3, { 'quorum-type': 'none' });
  await writeFile(r, '/f', 'v1');
  down(r, kids[1]);
  down(r, kids[2]);
  await writeFile(r, '/f', 'v2-longer');
  up(r, kids[1]);
  up(r, kids[2]);
  // The third brick fails as the heal opens the file (it went away again, unnoticed as yet).
  const open = kids[2].open.bind(kids[2]);
  kids[2].open = async () => { throw new FsError('ENOTCONN', 'the brick went away'); };
  await r.heal('/f');
  t.is(kids[1].data('/f'), 'v2-longer');
  t.is(kids[2].data('/f'), 'v1', 'not reached');
  t.true(kids[0].counts('/f', kids[2].name)[0] > 0, 'brick 0 still blames brick 2');
  t.is(kids[0].counts('/f', kids[1].name)[0], 0, 'brick 1 is cleared');
  kids[2].open = open;
  up(r, kids[2]);
  await r.heal('/f');
  t.is(kids[2].data('/f'), 'v2-longer');
  for (const k of kids) for (const j of kids) t.deepEqual(k.counts('/f', j.name), zero, `/f on ${k.name} for ${j.name}`);
});

test('a data heal whose lookup of the stale copy fails leaves it blamed (it is not taken for a copy nobody accuses)', async (t) => {
  const { kids, r } = await setup();
  await writeFile(r, '/f', 'v1');
  down(r, kids[1]);
  await writeFile(r, '/f', 'v2-longer');
  up(r, kids[1]);
  // The stale brick answers the heal's open, then goes away before its lookup.
  const lookup = kids[1].lookup.bind(kids[1]);
  let failing = true;
  kids[1].lookup = async (...a: Parameters<AfrMem['lookup']>) => {
    if (failing && a[1].path === '/f' && new Error().stack?.includes('healData')) throw new FsError('ENOTCONN', 'the brick went away');
    return lookup(...a);
  };
  await r.heal('/f');
  t.true(kids[0].counts('/f', kids[1].name)[0] > 0, 'brick 0 still blames brick 1');
  failing = false;
  up(r, kids[1]); // back: the failed lookup had taken it for down
  await r.heal('/f');
  t.is(kids[1].data('/f'), 'v2-longer');
  for (const k of kids) for (const j of kids) t.deepEqual(k.counts('/f', j.name), zero, `/f on ${k.name} for ${j.name}`);
});

test('entry heal: files created, deleted and renamed while a child was down', async (t) => {
  const { kids, r } = await setup();
  await writeFile(r, '/gone', 'x');
  await writeFile(r, '/old', 'renamed data');
  await r.mkdir(C, file('/dir'), { mode: S_IFDIR | 0o750, umask: 0, gfid: newGfid() });
  down(r, kids[1]);
  await writeFile(r, '/new', 'created while down');
  await r.mkdir(C, file('/dir/sub'), { mode: S_IFDIR | 0o700, umask: 0, gfid: newGfid() });
  await writeFile(r, '/dir/sub/deep', 'deep');
  await r.unlink(C, file('/gone'));
  await r.rename(C, file('/old'), file('/moved'));
  await r.entryTxns.flushAll(); // the blame of a child that went down mid-transaction goes with its post-op
  t.true(kids[0].counts('/', kids[1].name)[2] > 0, 'the root blames brick 1 for entries');
  up(r, kids[1]);
  await r.heal('/');
  await r.heal('/dir');
  const names = (k: AfrMem) => [...k.names.keys()].sort();
  t.deepEqual(names(kids[1]), names(kids[0]));
  t.is(kids[1].data('/new'), 'created while down');
  t.is(kids[1].data('/moved'), 'renamed data');
  t.is(kids[1].data('/dir/sub/deep'), 'deep');
  t.is(kids[1].names.get('/moved')!.gfid, kids[0].names.get('/moved')!.gfid, 'same gfid on both');
  t.is(kids[1].names.get('/dir/sub')!.mode & 0o7777, 0o700);
  for (const p of ['/', '/dir', '/dir/sub', '/new', '/moved']) for (const k of kids) for (const j of kids) t.deepEqual(k.counts(p, j.name), zero, `${p} on ${k.name}`);
});

test('entry heal cut short right after a create: the empty copy stays blamed, so its data heals next time', async (t) => {
  const { kids, r } = await setup();
  await writeFile(r, '/f', 'in sync');
  kids[1].names.delete('/f'); // that brick's disk was replaced: its copy is gone, nothing blames it
  // The sink's brick goes away after it made the empty copy, before it answered (a reset-brick
  // restarting it): the create fails here although the file exists there.
  const create = kids[1].create.bind(kids[1]);
  kids[1].create = async (...a: Parameters<AfrMem['create']>) => {
    await create(...a);
    kids[1].down = true;
    throw new FsError('ENOTCONN', 'the brick went away before it answered');
  };
  await r.heal('/', true).catch(() => undefined);
  kids[1].create = create;
  up(r, kids[1]);
  t.is(kids[1].data('/f'), '', 'the name was made, its data not yet');
  t.true(kids[0].counts('/f', kids[1].name)[0] > 0, 'the good copy blames the new one for data');
  await r.heal('/', true);
  await r.heal('/f', true);
  t.is(kids[1].data('/f'), 'in sync');
  for (const k of kids) for (const j of kids) t.deepEqual(k.counts('/f', j.name), zero, `/f on ${k.name}`);
});

test('an entry operation that fails on one child only: that child stays blamed for the directory, the rest of the transaction skips it, a heal levels it', async (t) => {
  const { kids, r } = await setup();
  const dir = (gfid = newGfid()) => ({ mode: S_IFDIR | 0o755, umask: 0, gfid });
  const gx = newGfid();
  await kids[1].mkdir(C, file('/x'), dir(gx)); // only that brick has it
  await r.mkdir(C, file('/x'), dir(gx)); // made on child 0, EEXIST on child 1
  await r.mkdir(C, file('/y'), dir()); // same transaction: child 1 is out of it
  t.false(kids[1].names.has('/y'));
  await r.entryTxns.flushAll();
  const entry = (k: AfrMem, j: AfrMem) => k.counts('/', j.name)[2];
  t.true(entry(kids[0], kids[1]) > 0, 'child 0 blames child 1');
  t.is(entry(kids[0], kids[0]), 0, 'child 0 does not blame itself');
  t.true(entry(kids[1], kids[1]) > 0, 'child 1 keeps its own mark (it failed)');
  await r.heal('/');
  t.true(kids[1].names.has('/y'));
  for (const k of kids) for (const j of kids) t.deepEqual(k.counts('/', j.name), zero, `/ on ${k.name} for ${j.name}`);
});

test('a rename waiting for one directory\'s lock holds no other directory\'s transaction open meanwhile', async (t) => {
  const { kids, r } = await setup();
  const dir = () => ({ mode: S_IFDIR | 0o755, umask: 0, gfid: newGfid() });
  await r.mkdir(C, file('/a'), dir());
  await r.mkdir(C, file('/b'), dir());
  await r.entryTxns.flushAll();
  // A heal (another client) holds /a on every brick.
  const heal = { type: 'write' as const, start: 1n << 50n, len: 1n, pid: 0, owner: 'a-healer' };
  for (const k of kids) await k.inodelk(C, file('/a'), 'setlk', heal);
  // /b's transaction is open (this create), and the rename joins it, then waits for /a.
  await r.release(C, (await r.create(C, file('/b/t'), 2, { mode: S_IFREG | 0o644, umask: 0, gfid: newGfid() })).fd);
  let renamed = false;
  const renaming = r.rename(C, file('/b/t'), file('/a/t')).then(() => { renamed = true; });
  const entry = (path: string) => kids.flatMap((k) => kids.map((j) => k.counts(path, j.name)[2]));
  // /b's window (250 ms) closes on its own: its marks are cleared and its lock let go while the
  // rename waits.
  const cleared = await waitFor('/b cleared', async () => entry('/b').every((n) => n === 0), 5000).then(() => true, () => false);
  t.true(cleared, 'the marks on /b are cleared while the rename waits');
  t.false(renamed, 'the rename waits for /a');
  for (const k of kids) await k.inodelk(C, file('/b'), 'setlk', { ...heal, owner: 'another-healer' });
  for (const k of kids) await k.inodelk(C, file('/b'), 'setlk', { ...heal, owner: 'another-healer', type: 'unlock' });
  for (const k of kids) await k.inodelk(C, file('/a'), 'setlk', { ...heal, type: 'unlock' });
  await renaming;
  await r.entryTxns.flushAll();
  for (const k of kids) {
    t.true(k.names.has('/a/t'), `/a/t on ${k.name}`);
    t.false(k.names.has('/b/t'), `/b/t gone on ${k.name}`);
  }
  t.deepEqual([...entry('/a'), ...entry('/b')], new Array(8).fill(0));
});

test('entry heals by another client while this one creates in the directory: no counter left skewed, no name lost', async (t) => {
  const { kids, r } = await setup();
  // The self-heal daemon: a second client of the same bricks, healing the directory over and over
  // (the creates' marks make it look pending).
  const shd = new Replicate('v-replicate-0', { 'post-op-delay-secs': 0, 'background-self-heal-count': 0 }, kids, xctx);
  await shd.init();
  let creating = true;
  let heals = 0;
  const healing = (async () => {
    while (creating) { await shd.heal('/'); heals++; await new Promise((res) => setImmediate(res)); }
  })();
  // At least 300 creates, and on until several heals have run between them: a heal waits for the
  // creates' entry window (250 ms) to close, so how many fit depends on the machine's speed.
  let N = 0;
  const deadline = Date.now() + 30_000;
  while ((N < 300 || heals < 5) && Date.now() < deadline) {
    await r.create(C, file(`/f${N}`), 2, { mode: S_IFREG | 0o644, umask: 0, gfid: newGfid() });
    if (N++ % 5 === 0) await new Promise((res) => setTimeout(res, 2));
  }
  creating = false;
  await healing;
  await r.entryTxns.flushAll();
  await new Promise((res) => setTimeout(res, 100));
  t.log(`heals: ${heals} during ${N} creates`);
  t.true(heals >= 5, `heals: ${heals} during ${N} creates`);
  t.true(kids[0].inodelks.some((l) => l.type === 'write'), 'the heal locked the directory');
  for (const k of kids) for (const j of kids) t.deepEqual(k.counts('/', j.name), zero, `/ on ${k.name} for ${j.name}`);
  for (const k of kids) t.is([...k.names.keys()].filter((p) => p.startsWith('/f')).length, N, `names on ${k.name}`);
  await shd.fini();
});

test('a directory found alike everywhere is listed again without lookups; a child event, a pending entry, an upcall naming it or, without upcalls, a second passing looks again', async (t) => {
  const { kids, r } = await setup();
  const d = newGfid();
  await r.mkdir(C, file('/d'), { mode: S_IFDIR | 0o755, umask: 0, gfid: d });
  for (let i = 0; i < 3; i++) await writeFile(r, `/d/f${i}`, 'x');
  await r.entryTxns.flushAll();
  let lookups = 0;
  for (const k of kids) {
    const orig = k.lookup.bind(k);
    k.lookup = (...a: Parameters<typeof k.lookup>) => { if (a[1].path === '/d') lookups++; return orig(...a); };
  }
  const names = async () => (await r.readdirp(C, { path: '/d', gfid: d })).map((e) => e.name).filter((n) => n.startsWith('f')).sort();
  t.deepEqual(await names(), ['f0', 'f1', 'f2']);
  t.is(lookups, 2, 'the first listing looks the directory up on both children');
  t.deepEqual(await names(), ['f0', 'f1', 'f2']);
  t.is(lookups, 2, 'the second, within the second, does not');
  // A child away and back: what it missed is pending, so the listing looks again and reads a source.
  down(r, kids[1]);
  await writeFile(r, '/d/f3', 'y');
  up(r, kids[1]);
  const n = lookups;
  for (let i = 0; i < 3; i++) t.deepEqual(await names(), ['f0', 'f1', 'f2', 'f3'], 'from the copy that has the new name');
  t.is(lookups - n, 6, 'pending: every listing looks again');
  await r.heal('/d');
  await names();
  const m = lookups;
  await names();
  t.is(lookups, m, 'healed: alike again, no lookups');
  await new Promise((res) => setTimeout(res, 1100));
  await names();
  t.is(lookups, m, 'a second later too: the bricks would tell of changes by others');
  r.notify({ type: 'upcall', changes: [{ path: '/d/other', entry: true }] }, kids[0]);
  await names();
  t.is(lookups, m + 2, 'another client made a name there: it looks again');
  await names();
  t.is(lookups, m + 2, 'and trusts it again');
  r.notify({ type: 'upcall', changes: [], all: true, unsupported: true }, kids[1]);
  await names();
  t.is(lookups, m + 4, 'a brick without upcalls: everything forgotten');
  await new Promise((res) => setTimeout(res, 1100));
  await names();
  t.is(lookups, m + 6, 'and a clean directory trusted a second only');
});

test('entry heal of many names at once: every file with its data and gfid, hard links linked once', async (t) => {
  const { kids, r } = await setup(2, { 'shd-max-threads': 8 });
  down(r, kids[1]);
  for (let i = 0; i < 60; i++) await writeFile(r, `/f${i}`, `data ${i}`);
  await r.link(C, file('/f0'), file('/f0-link'));
  await r.link(C, file('/f1'), file('/f1-a'));
  await r.link(C, file('/f1'), file('/f1-b'));
  await r.mkdir(C, file('/d'), { mode: S_IFDIR | 0o755, umask: 0, gfid: newGfid() });
  up(r, kids[1]);
  await r.heal('/');
  const names = (k: AfrMem) => [...k.names.keys()].sort();
  t.deepEqual(names(kids[1]), names(kids[0]));
  for (let i = 0; i < 60; i++) t.is(kids[1].data(`/f${i}`), `data ${i}`);
  for (const p of ['/f0', '/f0-link', '/f1', '/f1-a', '/f1-b', '/d']) t.is(kids[1].names.get(p)!.gfid, kids[0].names.get(p)!.gfid, `${p}: same gfid`);
  t.is(kids[1].names.get('/f1-b'), kids[1].names.get('/f1'), 'one inode under its three names on the healed copy');
  t.is(kids[1].names.get('/f1')!.nlink, 3);
  for (const k of kids) for (const j of kids) t.deepEqual(k.counts('/', j.name), zero, `/ on ${k.name}`);
});

for (const compound of [false, true]) {
const how = compound ? ' (lookup and open in one call)' : '';
test(`split-brain: EIO on open, each resolution keeps the chosen copy${how}`, async (t) => {
  const { kids, r } = await setup(2, {}, compound);
  await writeFile(r, '/f', 'base');
  down(r, kids[1]);
  await writeFile(r, '/f', 'from brick zero, longer');
  up(r, kids[1]);
  down(r, kids[0]);
  await writeFile(r, '/f', 'brick one');
  up(r, kids[0]);
  const opens = kids.map((k) => k.opens);
  await t.throwsAsync(r.open(C, file('/f'), 0), { message: /EIO/ });
  t.deepEqual(kids.map((k) => k.opens - opens[kids.indexOf(k)]), compound ? [1, 1] : [0, 0], 'opened only where the open reads the changelog');
  t.deepEqual(kids.map((k) => k.openCount), [0, 0], 'and nothing left open');
  const h = await r.heal('/f');
  t.true(h.splitBrain, 'the heal does not guess');
  await r.setxattr(C, file('/f'), SPLIT_BRAIN_XATTR, Buffer.from(JSON.stringify({ policy: 'bigger-file' })), 0);
  t.is(kids[1].data('/f'), 'from brick zero, longer');
  t.is(await readFile(r, '/f'), 'from brick zero, longer');
  // Once more, resolved by naming the source brick.
  down(r, kids[1]);
  await writeFile(r, '/f', 'zero again, and long');
  up(r, kids[1]);
  down(r, kids[0]);
  await writeFile(r, '/f', 'one wins');
  up(r, kids[0]);
  await r.setxattr(C, file('/f'), SPLIT_BRAIN_XATTR, Buffer.from(JSON.stringify({ policy: 'source-brick', child: kids[1].name })), 0);
  t.is(kids[0].data('/f'), 'one wins');
  t.is(choose('majority', []), undefined);
});

test(`favorite-child-policy size resolves split-brain without a command${how}`, async (t) => {
  const { kids, r } = await setup(2, { 'favorite-child-policy': 'size' }, compound);
  await writeFile(r, '/f', 'base');
  down(r, kids[1]);
  await writeFile(r, '/f', 'the bigger copy');
  up(r, kids[1]);
  down(r, kids[0]);
  await writeFile(r, '/f', 'small');
  up(r, kids[0]);
  t.is(await readFile(r, '/f'), 'the bigger copy');
  t.is(kids[1].data('/f'), 'the bigger copy');
  t.deepEqual(kids.map((k) => k.openCount), [0, 0], 'nothing left open');
});
}

test('replica 3 quorum: one down keeps writing, two down is EROFS and reads still work', async (t) => {
  const { kids, r } = await setup(3);
  await writeFile(r, '/f', 'one');
  down(r, kids[2]);
  await writeFile(r, '/f', 'two');
  down(r, kids[1]);
  await t.throwsAsync(writeFile(r, '/f', 'three'), { message: /EROFS/ });
  await t.throwsAsync(r.mkdir(C, file('/d'), { mode: S_IFDIR | 0o755, umask: 0, gfid: newGfid() }), { message: /EROFS/ });
  t.is(await readFile(r, '/f'), 'two');
});

test('arbiter: names and metadata, never data', async (t) => {
  const { kids, r } = await setup(3, { 'arbiter-count': 1 });
  await writeFile(r, '/f', 'data on two bricks only');
  await r.setattr(C, file('/f'), { mode: 0o600 });
  t.is(kids[0].data('/f'), 'data on two bricks only');
  t.is(kids[1].data('/f'), 'data on two bricks only');
  t.is(kids[2].data('/f'), '', 'arbiter copy is empty');
  t.is(kids[2].names.get('/f')!.mode & 0o7777, 0o600);
  t.is((await r.stat(C, file('/f'))).size, BigInt('data on two bricks only'.length), 'size never from the arbiter');
  down(r, kids[0]);
  t.is(await readFile(r, '/f'), 'data on two bricks only');
});
