// cluster/distribute over in-memory children: placement by GlusterFS's hash, layouts, linkto
// renames and links, merged listings, rmdir, and a child that is down.
import test from 'ava';
import { pino } from 'pino';
import { Distribute } from '../client/xlators/cluster/distribute/index.js';
import { decodeRange, LAYOUT_XATTR, LINKTO_XATTR, Layout } from '../client/xlators/cluster/distribute/layout.js';
import { dmHash } from '../common/hash.js';
import { ROOT_CTX as C, S_IFDIR, S_IFREG } from '../common/types.js';
import { memChildren, newGfid } from './support/mem-xlator.js';

const log = pino({ level: 'silent' });
const xctx = { log, volume: 'v', volumeId: 'id', secret: 's', rootCtx: C };

async function setup(n = 2) {
  const kids = memChildren(n);
  const dht = new Distribute('v-dht', {}, kids, xctx);
  await dht.init();
  await dht.lookup(C, { path: '/' });
  return { kids, dht };
}

async function touch(dht: Distribute, path: string, data = '') {
  const { fd } = await dht.create(C, { path }, 2, { mode: S_IFREG | 0o644, umask: 0, gfid: newGfid() });
  if (data) await dht.write(C, fd, 0, Buffer.from(data));
  await dht.release(C, fd);
}

test('the GlusterFS name hash matches values computed by its C code', (t) => {
  t.is(dmHash('testfile1'), 2656988690);
  t.is(dmHash('testfile2'), 2751605884);
  t.is(dmHash('a'), 974644454);
  t.is(dmHash('abcdefghijklmnopqrstuvwxyz0123'), 813773368);
  t.is(dmHash('héllo wörld'), 2984396163, 'bytes >= 0x80 are sign-extended as in C');
});

test('the root gets a complete layout stored on every child; files land where the hash says', async (t) => {
  const { kids, dht } = await setup(3);
  const ranges = kids.map((k, i) => decodeRange(i, k.names.get('/')!.xattrs.get(LAYOUT_XATTR)));
  t.true(ranges.every(Boolean));
  const layout = new Layout(ranges.map((r) => r!));
  t.true(layout.complete);
  for (let i = 0; i < 60; i++) await touch(dht, `/f${i}`);
  for (let i = 0; i < 60; i++) {
    const want = layout.subvolFor(`f${i}`)!;
    t.deepEqual(kids.map((k, j) => (k.names.has(`/f${i}`) ? j : -1)).filter((j) => j >= 0), [want]);
  }
});

test('mkdir on every child with its own range; rmdir refuses non-empty and removes from all', async (t) => {
  const { kids, dht } = await setup(2);
  await dht.mkdir(C, { path: '/d' }, { mode: S_IFDIR | 0o755, umask: 0, gfid: newGfid() });
  t.true(kids.every((k) => k.names.has('/d')));
  t.is(new Set(kids.map((k) => k.names.get('/d')!.gfid)).size, 1, 'one gfid on every child');
  t.true(new Layout(kids.map((k, i) => decodeRange(i, k.names.get('/d')!.xattrs.get(LAYOUT_XATTR))!)).complete);
  await touch(dht, '/d/x');
  await t.throwsAsync(dht.rmdir(C, { path: '/d' }), { message: /ENOTEMPTY/ });
  await dht.unlink(C, { path: '/d/x' });
  await dht.rmdir(C, { path: '/d' });
  t.true(kids.every((k) => !k.names.has('/d')));
});

test('rename across children leaves data in place with a linkto; lookup, read and unlink follow it', async (t) => {
  const { kids, dht } = await setup(2);
  const layout = await dht.layoutOf(C, '/');
  // Find a pair of names hashing to different children.
  let a = '', b = '';
  for (let i = 0; !b; i++) {
    if (!a) a = `a${i}`;
    else if (layout.subvolFor(`b${i}`) !== layout.subvolFor(a)) b = `b${i}`;
  }
  await touch(dht, `/${a}`, 'payload');
  const S = layout.subvolFor(a)!;
  await dht.rename(C, { path: `/${a}` }, { path: `/${b}` });
  t.true(kids[S].names.has(`/${b}`), 'data stays on its child');
  const link = kids[1 - S].names.get(`/${b}`)!;
  t.is(link.mode, S_IFREG | 0o1000);
  t.is(link.xattrs.get(LINKTO_XATTR)!.toString(), kids[S].name);
  t.is(link.gfid, kids[S].names.get(`/${b}`)!.gfid, 'the linkto carries the file\'s gfid');
  // A fresh translator (another client, no caches) finds it through the linkto.
  const other = new Distribute('v-dht', {}, kids, xctx);
  const fd = await other.open(C, { path: `/${b}` }, 0);
  t.is((await other.read(C, fd, 0, 100)).toString(), 'payload');
  const names = (await other.readdirp(C, { path: '/' })).map((e) => e.name);
  t.deepEqual(names.filter((n) => n === b), [b], 'listed once, linkto hidden');
  await other.unlink(C, { path: `/${b}` });
  t.false(kids[0].names.has(`/${b}`) || kids[1].names.has(`/${b}`), 'data and linkto both gone');
});

test('hard link whose name hashes elsewhere gets a linkto; both names read the same data', async (t) => {
  const { kids, dht } = await setup(2);
  const layout = await dht.layoutOf(C, '/');
  await touch(dht, '/src', 'shared');
  const S = layout.subvolFor('src')!;
  let other = '';
  for (let i = 0; !other; i++) if (layout.subvolFor(`l${i}`) !== S) other = `l${i}`;
  const iatt = await dht.link(C, { path: '/src' }, { path: `/${other}` });
  t.is(iatt.nlink, 2);
  t.true(kids[S].names.has(`/${other}`));
  t.truthy(kids[1 - S].names.get(`/${other}`)!.xattrs.get(LINKTO_XATTR));
  const fd = await new Distribute('x', {}, kids, xctx).open(C, { path: `/${other}` }, 0);
  t.is((await kids[S].read(C, fd, 0, 10)).toString(), 'shared');
});

test('a child that is down: its files fail with ENOTCONN, the others work, listings skip it', async (t) => {
  const { kids, dht } = await setup(2);
  const layout = await dht.layoutOf(C, '/');
  for (let i = 0; i < 20; i++) await touch(dht, `/f${i}`, `d${i}`);
  kids[1].down = true;
  const fresh = new Distribute('v-dht', {}, kids, xctx);
  let onDown = '', onUp = '';
  for (let i = 0; i < 20; i++) {
    if (layout.subvolFor(`f${i}`) === 1) onDown ||= `f${i}`;
    else onUp ||= `f${i}`;
  }
  await t.throwsAsync(fresh.open(C, { path: `/${onDown}` }, 0), { message: /ENOTCONN/ });
  const fd = await fresh.open(C, { path: `/${onUp}` }, 0);
  t.is((await fresh.read(C, fd, 0, 10)).toString(), `d${onUp.slice(1)}`);
  const listed = (await fresh.readdirp(C, { path: '/' })).map((e) => e.name);
  t.true(listed.includes(onUp));
  const sfs = await fresh.statfs(C, { path: '/' });
  t.is(sfs.blocks, 1000n, 'statfs sums the children that answer');
});

test('statfs sums every child', async (t) => {
  const { dht } = await setup(3);
  const s = await dht.statfs(C, { path: '/' });
  t.is(s.blocks, 3000n);
  t.is(s.bavail, 1200n);
});

test('a layout written over existing names is not committed: files placed before it are still found', async (t) => {
  // As after bricks are added: names already sit on one child, and no layout exists yet.
  const kids = memChildren(2);
  for (let i = 0; i < 20; i++) {
    await kids[0].create(C, { path: `/old${i}` }, 2, { mode: S_IFREG | 0o644, umask: 0, gfid: newGfid() });
  }
  const dht = new Distribute('v-dht', {}, kids, xctx);
  const layout = await dht.layoutOf(C, '/');
  t.true(layout.complete);
  t.false(layout.committed, 'the root had entries: misses must search every child');
  const elsewhere = Array.from({ length: 20 }, (_, i) => `old${i}`).filter((n) => layout.subvolFor(n) === 1);
  t.true(elsewhere.length > 0);
  for (const n of elsewhere) t.is((await dht.lookup(C, { path: `/${n}` })).iatt.mode & 0o170000, S_IFREG, `${n} found off its hashed child`);
  await t.throwsAsync(dht.lookup(C, { path: '/missing' }), { message: /ENOENT/ });
  // A fresh, empty directory's layout is committed.
  const fresh = await setup(2);
  t.true((await fresh.dht.layoutOf(C, '/')).committed);
  await fresh.dht.mkdir(C, { path: '/d' }, { mode: S_IFDIR | 0o755, umask: 0, gfid: newGfid() });
  t.true((await fresh.dht.layoutOf(C, '/d')).committed);
});

test('rename of a directory onto a non-empty one fails on every child, whichever child holds the entry', async (t) => {
  const { kids, dht } = await setup(2);
  const mk = (path: string) => dht.mkdir(C, { path }, { mode: S_IFDIR | 0o755, umask: 0, gfid: newGfid() });
  await mk('/a');
  for (let i = 0; i < 8; i++) {
    await mk(`/b${i}`);
    await touch(dht, `/b${i}/x${i}`);
    await t.throwsAsync(dht.rename(C, { path: '/a' }, { path: `/b${i}` }), { message: /ENOTEMPTY/ });
    t.true(kids.every((k) => k.names.has('/a') && k.names.has(`/b${i}`)), 'nothing renamed anywhere');
  }
  await touch(dht, '/file');
  await t.throwsAsync(dht.rename(C, { path: '/a' }, { path: '/file' }), { message: /ENOTDIR/ });
  await mk('/empty');
  await dht.rename(C, { path: '/a' }, { path: '/empty' });
  t.true(kids.every((k) => !k.names.has('/a') && k.names.has('/empty')));
});

test('a directory answers the same attributes from lookup, a second lookup and its parent\'s listing', async (t) => {
  const { kids, dht } = await setup(2);
  await dht.mkdir(C, { path: '/d' }, { mode: S_IFDIR | 0o755, umask: 0, gfid: newGfid() });
  for (let i = 0; i < 10; i++) await touch(dht, `/d/f${i}`);
  // Make the copies differ, as real bricks do (each holds other entries).
  kids[1].names.get('/d')!.mtime = 5_000_000_000n;
  const other = new Distribute('v-dht', {}, kids, xctx);
  const first = (await other.lookup(C, { path: '/d' })).iatt;
  const second = (await other.lookup(C, { path: '/d' })).iatt;
  const listed = (await other.readdirp(C, { path: '/' })).find((e) => e.name === 'd')!.iatt;
  for (const a of [second, listed]) {
    t.is(a.size, first.size);
    t.is(a.mtime, first.mtime);
  }
  t.is(first.mtime, 5_000_000_000n, 'the latest time of the copies');
});

test('a file\'s place is kept past cache-timeout while the bricks tell of changes; an upcall naming it, or a brick without upcalls, looks again', async (t) => {
  const kids = memChildren(2);
  const dht = new Distribute('v-dht', { 'cache-timeout': 0 }, kids, xctx);
  await dht.init();
  await dht.lookup(C, { path: '/' });
  const names = ['a', 'b', 'c', 'd'];
  for (const n of names) await touch(dht, `/${n}`);
  let lookups = 0;
  for (const k of kids) {
    const orig = k.lookup.bind(k);
    k.lookup = (...a: Parameters<typeof k.lookup>) => { if (a[1].path !== '/') lookups++; return orig(...a); };
  }
  await new Promise((res) => setTimeout(res, 1100)); // past cache-timeout (at least 1 s)
  await dht.unlink(C, { path: '/a' });
  t.is(lookups, 0, 'the create noted where /a is: the unlink goes there without a lookup');
  // Another client removes /b and makes it again: the brick tells.
  const at = kids.findIndex((k) => k.names.has('/b'));
  await kids[at].unlink(C, { path: '/b' });
  const { fd } = await kids[at].create(C, { path: '/b' }, 2, { mode: S_IFREG | 0o644, umask: 0, gfid: newGfid() });
  await kids[at].release(C, fd);
  dht.notify({ type: 'upcall', changes: [{ path: '/b', entry: true }] }, kids[at]);
  await dht.unlink(C, { path: '/b' });
  t.true(lookups > 0, 'told: looked up again');
  t.false(kids.some((k) => k.names.has('/b')), 'and the file where it now is was removed');
  // A brick without upcalls: places are kept cache-timeout only.
  dht.notify({ type: 'upcall', changes: [], all: true, unsupported: true }, kids[0]);
  await dht.lookup(C, { path: '/c' });
  await new Promise((res) => setTimeout(res, 1100));
  lookups = 0;
  await dht.unlink(C, { path: '/c' });
  t.true(lookups > 0, 'without upcalls the place expired');
});
