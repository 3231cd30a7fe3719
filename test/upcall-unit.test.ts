// Unit tests of cache invalidation: the brick's interest table (who is told of which change) and
// what md-cache, nl-cache and io-cache drop when told.
import test from 'ava';
import { PassThrough, type UpcallEvent, type Xlator } from '../common/fops.js';
import { newGfid } from '../common/gfid.js';
import { ROOT_CTX, type Iatt } from '../common/types.js';
import { Upcall, type UpcallEntry } from '../brickd/upcall.js';
import { MdCache } from '../client/xlators/performance/md-cache/index.js';
import { NlCache } from '../client/xlators/performance/nl-cache/index.js';
import { MemXlator } from './support/mem-xlator.js';

const c = ROOT_CTX;
const args = () => ({ mode: 0o644, umask: 0, gfid: newGfid() });
const noFd = () => undefined;
const iatt = (gfid: string, nlink = 1) => ({ gfid, nlink, mode: 0o100644 });

/** An Upcall table with sessions that record what they are told. */
function table(n: number) {
  const u = new Upcall();
  const heard: UpcallEntry[][][] = [];
  const sids = Array.from({ length: n }, (_, i) => {
    heard[i] = [];
    return u.open((e) => heard[i].push(e));
  });
  /** An operation of session i, as the brick's session runs it. */
  const op = (i: number, field: string, req: Record<string, unknown>, res: Record<string, unknown> = {}) => {
    u.before(sids[i], field, req, noFd);
    u.after(sids[i], field, req, res, noFd);
  };
  return { u, sids, heard, op };
}

test('the brick tells a change only to the other sessions that looked at it, once until they look again', (t) => {
  const { heard, op } = table(3);
  const g = newGfid();
  op(0, 'lookup', { loc: { path: '/d/f' } }, { iatt: iatt(g) });
  op(1, 'setattr', { loc: { path: '/d/f', gfid: g } }, { iatt: iatt(g) });
  t.deepEqual(heard[0], [[{ path: '/d/f', gfid: g, data: undefined }]]);
  t.deepEqual(heard[1], [], 'not the session that made the change');
  t.deepEqual(heard[2], [], 'not a session that never looked');
  op(1, 'setattr', { loc: { path: '/d/f', gfid: g } }, { iatt: iatt(g) });
  t.is(heard[0].length, 1, 'told once until it looks again');
  op(0, 'stat', { loc: { path: '/d/f' } }, { iatt: iatt(g) });
  op(1, 'truncate', { loc: { path: '/d/f', gfid: g } }, { iatt: iatt(g) });
  t.deepEqual(heard[0][1], [{ path: '/d/f', gfid: g, data: true }]);
});

test('a listing makes a session hear of creates, removals and changes in the directory; a missing name of its creation', (t) => {
  const { heard, op } = table(2);
  op(0, 'readdirp', { loc: { path: '/d' } }, { entries: [{ name: 'a', iatt: iatt(newGfid()) }] });
  op(1, 'create', { loc: { path: '/d/new' } }, { iatt: iatt(newGfid()) });
  t.deepEqual(heard[0], [[{ path: '/d/new', entry: true }]]);
  // The listed name itself stays watched; the directory until it is looked at again.
  op(1, 'unlink', { loc: { path: '/d/a' } });
  t.deepEqual(heard[0][1], [{ path: '/d/a', gfid: undefined, entry: true }]);
  op(1, 'mkdir', { loc: { path: '/d/other' } }, { iatt: iatt(newGfid()) });
  t.is(heard[0].length, 2, 'nothing more of /d until session 0 looks at it again');
  // A lookup that found nothing: the name's creation is news.
  const miss = { loc: { path: '/e/x' } };
  op(0, 'lookup', miss);
  op(1, 'symlink', { loc: { path: '/e/x' } }, { iatt: iatt(newGfid()) });
  t.deepEqual(heard[0][2], [{ path: '/e/x', entry: true }]);
});

test('renames and rmdirs go to every other session; a closed session hears nothing', (t) => {
  const { u, sids, heard, op } = table(3);
  u.close(sids[2]);
  op(1, 'rename', { from: { path: '/a' }, to: { path: '/b' } });
  t.deepEqual(heard[0], [[{ path: '/a', gfid: undefined, entry: true, tree: true }, { path: '/b', entry: true, tree: true }]]);
  t.deepEqual(heard[1], []);
  t.deepEqual(heard[2], []);
  op(0, 'rmdir', { loc: { path: '/c' } });
  t.deepEqual(heard[1], [[{ path: '/c', gfid: undefined, entry: true, tree: true }]]);
});

test('an inode with several names: a change through one is told to a session that looked at another', (t) => {
  const { heard, op } = table(2);
  const g = newGfid();
  op(0, 'lookup', { loc: { path: '/y' } }, { iatt: iatt(g, 2) });
  op(1, 'setattr', { loc: { path: '/x', gfid: g } }, { iatt: iatt(g, 2) });
  t.deepEqual(heard[0], [[{ path: '/x', gfid: g, data: undefined }]]);
  // The changelog's own xattrs are no news; a user's are.
  op(0, 'lookup', { loc: { path: '/y' } }, { iatt: iatt(g, 2) });
  op(1, 'setxattr', { loc: { path: '/y', gfid: g }, name: 'trusted.gfs.afr.dirty' });
  t.is(heard[0].length, 1);
  op(1, 'setxattr', { loc: { path: '/y', gfid: g }, name: 'user.tag' });
  t.is(heard[0].length, 2);
});

/** md-cache over an in-memory brick, counting the lookups that reach it. */
function mdStack(options: Record<string, unknown> = {}) {
  const mem = new MemXlator('mem');
  let lookups = 0;
  const counter = new (class extends PassThrough {
    override lookup(...a: Parameters<Xlator['lookup']>) { lookups++; return mem.lookup(...a); }
  })('count', 'test/count', [mem]);
  const top = new MdCache('md', options, [counter as unknown as Xlator]);
  return { mem, top, lookups: () => lookups, from: counter as unknown as Xlator };
}

const upcall = (changes: UpcallEvent['changes'], extra: Partial<UpcallEvent> = {}): UpcallEvent => ({ type: 'upcall', changes, ...extra });

test('md-cache keeps metadata 600 s, drops what an upcall names with its directory, and keeps the rest', async (t) => {
  const { top, lookups, from } = mdStack();
  t.is(top.ttl, 600_000);
  await top.mkdir(c, { path: '/d' }, args());
  for (const n of ['a', 'b']) await top.create(c, { path: `/d/${n}` }, 2, args());
  await top.lookup(c, { path: '/d' });
  for (const n of ['a', 'b']) await top.lookup(c, { path: `/d/${n}` });
  const warm = lookups();
  top.notify(upcall([{ path: '/d/a' }]), from);
  await top.lookup(c, { path: '/d/b' });
  t.is(lookups(), warm, '/d/b still cached');
  await top.lookup(c, { path: '/d/a' });
  await top.lookup(c, { path: '/d' });
  t.is(lookups(), warm + 2, '/d/a and its directory looked up again');
  top.notify(upcall([{ path: '/d', tree: true }]), from);
  await top.lookup(c, { path: '/d/b' });
  t.is(lookups(), warm + 3, 'a tree change drops what is below');
  top.notify(upcall([], { all: true }), from);
  await top.lookup(c, { path: '/d/a' });
  t.is(lookups(), warm + 4, 'a session gone: everything dropped');
});

test('md-cache: a brick without upcalls, or cache-invalidation off, keeps metadata 1 s; a timeout set is kept', (t) => {
  const { top, from } = mdStack();
  top.notify(upcall([], { all: true, unsupported: true }), from);
  t.is(top.ttl, 1000);
  t.is(mdStack({ 'cache-invalidation': false }).top.ttl, 1000);
  t.is(mdStack({ 'cache-invalidation': false, timeout: 10 }).top.ttl, 10_000);
  t.throws(() => mdStack({ 'cache-invalidation': 'maybe' }));
});

test('md-cache: an upcall on one name of a hard-linked inode drops its other names', async (t) => {
  const { top, lookups, from } = mdStack();
  await top.create(c, { path: '/x' }, 2, args());
  const l = await top.link(c, { path: '/x' }, { path: '/y' });
  await top.lookup(c, { path: '/y' });
  const warm = lookups();
  top.notify(upcall([{ path: '/x', gfid: l.gfid }]), from);
  await top.lookup(c, { path: '/y' });
  t.is(lookups(), warm + 1);
});

test('nl-cache trusts a list 600 s and forgets it when an upcall names something in the directory', async (t) => {
  const mem = new MemXlator('mem');
  let lookups = 0;
  const counter = new (class extends PassThrough {
    override lookup(...a: Parameters<Xlator['lookup']>) { lookups++; return mem.lookup(...a); }
  })('count', 'test/count', [mem]);
  const nl = new NlCache('nl', {}, [counter as unknown as Xlator]);
  t.is(nl.ttl, 600_000);
  await nl.mkdir(c, { path: '/d' }, args());
  await t.throwsAsync(nl.lookup(c, { path: '/d/x' }), { message: /ENOENT|x/ });
  t.is(lookups, 0, 'a new directory is known empty');
  // Another client made /d/x: the brick says so.
  await mem.create(c, { path: '/d/x' }, 2, args());
  nl.notify(upcall([{ path: '/d/x', entry: true }]), counter as unknown as Xlator);
  const found: Iatt = (await nl.lookup(c, { path: '/d/x' })).iatt;
  t.truthy(found.gfid);
  t.is(lookups, 1);
  nl.notify(upcall([], { all: true, unsupported: true }), counter as unknown as Xlator);
  t.is(nl.ttl, 5000);
});
