// Unit tests of the performance translators over an in-memory brick: what they cache, what they
// delay, and that every change made through them is seen by the next operation.
import test from 'ava';
import { BufferPool, bulkBuffers, donate } from '../common/buffers.js';
import { FsError } from '../common/errors.js';
import { PassThrough, type Xlator } from '../common/fops.js';
import { newGfid } from '../common/gfid.js';
import { ROOT_CTX, S_IFDIR, type Ctx, type Fd, type Iatt } from '../common/types.js';
import { MdCache } from '../client/xlators/performance/md-cache/index.js';
import { NlCache } from '../client/xlators/performance/nl-cache/index.js';
import { clusterOf, generateSpec } from '../mgmt/volgen.js';
import type { VolumeDef } from '../mgmt/types.js';
import type { XlatorSpec } from '../common/spec.js';
import { WriteBehind } from '../client/xlators/performance/write-behind/index.js';
import { ReadAhead } from '../client/xlators/performance/read-ahead/index.js';
import { IoCache } from '../client/xlators/performance/io-cache/index.js';
import { PostWriteAttrs } from '../client/xlators/protocol/client/post-write.js';
import { MemXlator } from './support/mem-xlator.js';
import { waitFor } from './harness.js';

const c = ROOT_CTX;
const args = () => ({ mode: 0o644, umask: 0, gfid: newGfid() });

/** Counts calls per operation (and the paths they named), can hold one operation back or fail
 *  writes, and stamps the iatts that entry operations answer with the clock (the in-memory brick
 *  keeps no times). */
class Spy extends PassThrough {
  readonly counts = new Map<string, number>();
  readonly paths: string[] = [];
  hold?: Promise<void>;
  holdOp = 'write';
  failWrites = false;
  constructor(child: Xlator) {
    super('spy', 'test/spy', [child]);
    const ops = ['lookup', 'stat', 'readdirp', 'getxattr', 'read', 'write', 'fstat', 'create', 'mkdir', 'unlink', 'rmdir', 'rename', 'setattr', 'symlink', 'link'] as const;
    for (const op of ops) {
      const orig = (child as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[op].bind(child);
      (this as unknown as Record<string, unknown>)[op] = async (...a: unknown[]) => {
        this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
        const loc = a[1] as { path?: string } | undefined;
        if (loc && typeof loc.path === 'string') this.paths.push(`${op} ${loc.path}`);
        if (op === this.holdOp && this.hold) await this.hold;
        if (op === 'write' && this.failWrites) throw new FsError('ENOSPC', 'full');
        const r = await orig(...a);
        if (op === 'create') { const c = r as { iatt: Iatt }; return { ...c, iatt: stamp(c.iatt) }; }
        if (op === 'mkdir' || op === 'symlink' || op === 'link') return stamp(r as Iatt);
        return r;
      };
    }
  }
  n(op: string) { return this.counts.get(op) ?? 0; }
  /** Calls of op naming a path that matches re. */
  named(op: string, re: RegExp) { return this.paths.filter((p) => p.startsWith(`${op} `) && re.test(p.slice(op.length + 1))).length; }
}

const clock = () => BigInt(Date.now()) * 1_000_000n;
const stamp = (i: Iatt): Iatt => ({ ...i, ctime: clock(), mtime: clock() });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits until cond holds or 5 s passed (the assertion after it then tells): a timer of a few ms
 *  can fire much later on a loaded machine, so no test trusts a fixed sleep for what must happen. */
const until = (what: string, cond: () => boolean) => waitFor(what, async () => cond(), 5000).catch(() => undefined);

function stack<T extends Xlator>(make: (child: Xlator) => T) {
  const mem = new MemXlator('mem');
  const spy = new Spy(mem);
  const top = make(spy as unknown as Xlator);
  return { mem, spy, top };
}

async function file(top: Xlator, path: string, data = ''): Promise<Fd> {
  const { fd } = await top.create(c, { path }, 2, args());
  if (data) await top.write(c, fd, 0, Buffer.from(data));
  return fd;
}

// --- md-cache ---

test('md-cache answers repeated lookups, stats and absent security xattrs from the cache', async (t) => {
  const { spy, top } = stack((ch) => new MdCache('md', {}, [ch]));
  await file(top, '/a', 'x');
  await top.lookup(c, { path: '/a' });
  const before = spy.n('lookup');
  await top.lookup(c, { path: '/a' });
  await top.stat(c, { path: '/a' });
  const e = await t.throwsAsync(top.getxattr(c, { path: '/a' }, 'security.selinux'));
  t.is((e as FsError).errno, 'ENODATA');
  t.is(spy.n('lookup'), before);
  t.is(spy.n('stat'), 0);
  t.is(spy.n('getxattr'), 0);
});

test('md-cache remembers a getxattr miss on security.capability (asked before every write)', async (t) => {
  const { spy, top } = stack((ch) => new MdCache('md', {}, [ch]));
  // Made below the cache, so the cache knows nothing of it (as after its entry expired).
  const fd = await file(spy as unknown as Xlator, '/w', 'x');
  const gfid = (await spy.fstat(c, fd)).gfid;
  const before = spy.n('getxattr');
  for (let i = 0; i < 5; i++) {
    await t.throwsAsync(top.getxattr(c, { path: '/w', gfid }, 'security.capability'), { message: /ENODATA/ });
    await top.write(c, fd, i, Buffer.from('y'));
  }
  t.is(spy.n('getxattr') - before, 1, 'one round trip for five writes');
});

test('md-cache fills from readdirp and drops entries on every change through it', async (t) => {
  const { spy, top } = stack((ch) => new MdCache('md', {}, [ch]));
  const fd = await file(top, '/f', 'abc');
  await top.readdirp(c, { path: '/' });
  t.is((await top.stat(c, { path: '/f' })).size, 3n);
  t.is(spy.n('stat') + spy.n('lookup'), 0);
  await top.write(c, fd, 3, Buffer.from('defg'));
  t.is((await top.stat(c, { path: '/f' })).size, 7n, 'a write drops the cached size');
  await top.setattr(c, { path: '/f' }, { mode: 0o600 });
  t.is((await top.stat(c, { path: '/f' })).mode & 0o777, 0o600);
  await top.setxattr(c, { path: '/f' }, 'security.selinux', Buffer.from('lbl'), 0);
  t.is(String(await top.getxattr(c, { path: '/f' }, 'security.selinux')), 'lbl');
  await top.rename(c, { path: '/f' }, { path: '/g' });
  await t.throwsAsync(top.lookup(c, { path: '/f' }), { message: /f/ });
  t.is((await top.lookup(c, { path: '/g' })).iatt.size, 7n);
  await top.unlink(c, { path: '/g' });
  await t.throwsAsync(top.stat(c, { path: '/g' }));
});

test('md-cache: a rename over a hard-linked file drops the link count its other names had cached', async (t) => {
  const { top } = stack((ch) => new MdCache('md', {}, [ch]));
  const fd = await file(top, '/f2', 'abc');
  await top.release(c, fd);
  await top.link(c, { path: '/f2' }, { path: '/g' });
  t.is((await top.stat(c, { path: '/g' })).nlink, 2);
  t.is((await top.stat(c, { path: '/f2' })).nlink, 2);
  await top.release(c, await file(top, '/f3', 'x'));
  await top.rename(c, { path: '/f3' }, { path: '/f2' });
  t.is((await top.stat(c, { path: '/g' })).nlink, 1, 'the replaced inode lost a link');
  // Again, over the name that is left.
  await top.link(c, { path: '/g' }, { path: '/h' });
  t.is((await top.stat(c, { path: '/h' })).nlink, 2);
  await top.release(c, await file(top, '/f4', 'y'));
  await top.rename(c, { path: '/f4' }, { path: '/g' });
  t.is((await top.stat(c, { path: '/h' })).nlink, 1);
});

test('md-cache: a truncating open or create of one name of a hard-linked file drops the size its other names had cached', async (t) => {
  const { top } = stack((ch) => new MdCache('md', {}, [ch]));
  const fd = await file(top, '/a', 'abcdef');
  await top.release(c, fd);
  await top.link(c, { path: '/a' }, { path: '/b' });
  t.is((await top.stat(c, { path: '/a' })).size, 6n);
  t.is((await top.stat(c, { path: '/b' })).size, 6n);
  const gfid = (await top.stat(c, { path: '/a' })).gfid;
  await top.release(c, await top.open(c, { path: '/b', gfid }, 0o1001)); // O_WRONLY | O_TRUNC
  t.is((await top.stat(c, { path: '/a' })).size, 0n, 'cut through the other name (open)');
  const w = await top.open(c, { path: '/a', gfid }, 1);
  await top.write(c, w, 0, Buffer.from('xyz'));
  await top.release(c, w);
  t.is((await top.stat(c, { path: '/b' })).size, 3n);
  const made = await top.create(c, { path: '/b' }, 0o1101, { mode: 0o100644, umask: 0, gfid: newGfid() }); // O_CREAT | O_TRUNC
  await top.release(c, made.fd);
  t.is((await top.stat(c, { path: '/a' })).size, 0n, 'cut through the other name (create of an existing file)');
});

test('md-cache answers a listing from the cache while its names and attributes are: its own creates, unlinks and renames keep it current, a write or an upcall sends the next to the child', async (t) => {
  const { mem, spy, top } = stack((ch) => new MdCache('md', {}, [ch]));
  const names = async () => (await top.readdirp(c, { path: '/d' })).map((d) => d.name).sort().join(',');
  await top.mkdir(c, { path: '/d' }, { ...args(), mode: 0o755 });
  await file(top, '/d/a');
  await file(top, '/d/b');
  t.is(await names(), 'a,b');
  t.is(await names(), 'a,b');
  t.is(spy.n('readdirp'), 1, 'the second listing came from the cache');
  const fd = await file(top, '/d/c');
  await top.unlink(c, { path: '/d/a' });
  t.is(await names(), 'b,c');
  t.is(spy.n('readdirp'), 1, 'own create and unlink edit the listing');
  await top.rename(c, { path: '/d/b' }, { path: '/d/e' });
  t.is(await names(), 'c,e');
  t.is(spy.n('readdirp'), 2, "a renamed entry's attributes are not known: listed again");
  await top.write(c, fd, 0, Buffer.from('12345'));
  const listed = await top.readdirp(c, { path: '/d' });
  t.is(spy.n('readdirp'), 3, 'a write dropped an entry\'s attributes');
  t.is(listed.find((d) => d.name === 'c')!.iatt.size, 5n);
  await mem.create(c, { path: '/d/x' }, 2, args()); // another client's
  t.is(await names(), 'c,e');
  top.notify({ type: 'upcall', changes: [{ path: '/d/x' }] }, spy as unknown as Xlator);
  t.is(await names(), 'c,e,x', 'an upcall about the directory drops its listing');
  t.is(spy.n('readdirp'), 4);
  // A listing read while an entry operation changes the directory is not kept.
  top.notify({ type: 'upcall', changes: [{ path: '/d/x' }] }, spy as unknown as Xlator); // no listing kept now
  spy.holdOp = 'readdirp';
  let release!: () => void;
  spy.hold = new Promise((res) => { release = res; });
  const during = top.readdirp(c, { path: '/d' });
  await file(top, '/d/y');
  release();
  spy.hold = undefined;
  await during;
  t.is(await names(), 'c,e,x,y');
  t.is(spy.n('readdirp'), 6);
  // While a brick below is down a listing may be partial: none is kept.
  top.notify('child-down', spy as unknown as Xlator);
  await names();
  await names();
  t.is(spy.n('readdirp'), 8);
  top.notify('child-up', spy as unknown as Xlator);
  await names();
  await names();
  t.is(spy.n('readdirp'), 9);
});

test('performance.md-cache-listings off: every listing reaches the child', async (t) => {
  const v: VolumeDef = {
    name: 'v', id: newGfid(), status: 'Created', stripe: 1, replica: 1, arbiter: 0, transport: 'tcp',
    bricks: [{ host: 'h1', path: '/b1', nodeUuid: 'n1' }], options: { 'performance.md-cache-listings': 'off' }, secret: 's', version: 1,
  };
  const graph = generateSpec(v, { member: () => ({ uuid: 'n1', hostname: 'h1', port: 24007 }) }).graph;
  t.is(graph.type, 'performance/md-cache');
  const { spy, top } = stack((ch) => new MdCache('md', graph.options ?? {}, [ch]));
  await file(top, '/a');
  await top.readdirp(c, { path: '/' });
  await top.readdirp(c, { path: '/' });
  t.is(spy.n('readdirp'), 2);
});

test('md-cache keeps no listing larger than its max-entries', async (t) => {
  const { spy, top } = stack((ch) => new MdCache('md', { 'max-entries': 16 }, [ch]));
  for (let i = 0; i < 20; i++) await file(top, `/f${i}`);
  t.is((await top.readdirp(c, { path: '/' })).length, 20);
  t.is((await top.readdirp(c, { path: '/' })).length, 20);
  t.is(spy.n('readdirp'), 2);
});

test('md-cache caches a lookup answer when only other paths changed while it was read', async (t) => {
  const { spy, top } = stack((ch) => new MdCache('md', {}, [ch]));
  const fd = await file(top, '/w');
  await file(top, '/r');
  spy.holdOp = 'lookup';
  let release!: () => void;
  spy.hold = new Promise((res) => { release = res; });
  const during = top.lookup(c, { path: '/r' }, ['user.x']); // an xattr not cached: reaches the child
  await top.write(c, fd, 0, Buffer.from('z'));
  release();
  spy.hold = undefined;
  await during;
  await top.stat(c, { path: '/r' });
  t.is(spy.n('stat') + spy.named('lookup', /^\/r$/), 1, 'the write to /w did not spoil the answer for /r');
  spy.hold = new Promise((res) => { release = res; });
  const spoiled = top.lookup(c, { path: '/w' }, ['user.x']);
  await top.write(c, fd, 1, Buffer.from('z'));
  release();
  spy.hold = undefined;
  await spoiled;
  t.is((await top.stat(c, { path: '/w' })).size, 2n, 'one read across a write of its own path is not kept');
});

test('md-cache switched off passes everything through', async (t) => {
  const { spy, top } = stack((ch) => new MdCache('md', { enable: false }, [ch]));
  await file(top, '/a');
  await top.lookup(c, { path: '/a' });
  await top.lookup(c, { path: '/a' });
  t.is(spy.n('lookup'), 2);
});

test('md-cache rejects unknown options', (t) => {
  t.throws(() => new MdCache('md', { bogus: 1 }, [new MemXlator('m')]), { message: /unknown option 'bogus'/ });
});

test('md-cache keeps a directory\'s attributes across creates in it, with the change times', async (t) => {
  const { spy, top } = stack((ch) => new MdCache('md', {}, [ch]));
  await top.mkdir(c, { path: '/d' }, { ...args(), mode: 0o755 });
  const d0 = await top.stat(c, { path: '/d' });
  const asked = spy.n('stat') + spy.n('lookup');
  let last = 0n;
  for (let i = 0; i < 5; i++) {
    const { iatt } = await top.create(c, { path: `/d/f${i}` }, 2, args());
    last = iatt.ctime;
    const d = await top.stat(c, { path: '/d' });
    t.true(d.mtime >= iatt.ctime && d.ctime >= iatt.ctime, 'the directory changed when the file was made');
    t.is(d.nlink, d0.nlink);
    // The new file's own attributes come from the create's answer too.
    t.is((await top.stat(c, { path: `/d/f${i}` })).gfid, iatt.gfid);
  }
  t.true(last > 0n);
  t.is(spy.n('stat') + spy.n('lookup'), asked, 'no round trip for the directory or the new files');
  // A directory made or removed in it moves its link count; an unlink its times, by this clock.
  await top.mkdir(c, { path: '/d/sub' }, { ...args(), mode: 0o755 });
  t.is((await top.stat(c, { path: '/d' })).nlink, d0.nlink + 1);
  const before = clock();
  await top.unlink(c, { path: '/d/f0' });
  t.true((await top.stat(c, { path: '/d' })).mtime >= before);
  await top.rmdir(c, { path: '/d/sub' });
  t.is((await top.stat(c, { path: '/d' })).nlink, d0.nlink);
  t.is(spy.n('stat') + spy.n('lookup'), asked);
  await t.throwsAsync(top.stat(c, { path: '/d/f0' }), { message: /ENOENT|f0/ });
});

test('md-cache drops a directory\'s attributes when an entry operation in it fails or a stat overlaps it', async (t) => {
  const { spy, top } = stack((ch) => new MdCache('md', {}, [ch]));
  await top.mkdir(c, { path: '/d' }, { ...args(), mode: 0o755 });
  await top.stat(c, { path: '/d' });
  const n0 = spy.n('stat');
  await t.throwsAsync(top.mkdir(c, { path: '/d' }, args()), { message: /EEXIST/ });
  await t.throwsAsync(top.mkdir(c, { path: '/d/x/y' }, args()));
  await top.stat(c, { path: '/' });
  t.is(spy.n('stat'), n0 + 1, 'the failed mkdir dropped the parent');
  // A stat of /d that started before a create in /d ended is not kept (it may miss the change).
  let release!: () => void;
  spy.holdOp = 'stat';
  spy.hold = new Promise((r) => { release = r; });
  const racing = top.stat(c, { path: '/d' });
  await top.create(c, { path: '/d/new' }, 2, args());
  release();
  await racing;
  spy.hold = undefined;
  const n2 = spy.n('stat');
  await top.stat(c, { path: '/d' });
  t.is(spy.n('stat'), n2 + 1, 'the overlapping answer was not kept');
  await top.stat(c, { path: '/d' });
  t.is(spy.n('stat'), n2 + 1);
});

test('md-cache keeps what setattr and truncate answer, and what a rename of a file tells its directories', async (t) => {
  const { spy, top } = stack((ch) => new MdCache('md', {}, [ch]));
  await file(top, '/f', 'abcdef');
  await top.setattr(c, { path: '/f' }, { mode: 0o600 });
  await top.truncate(c, { path: '/f' }, 2);
  const n0 = spy.n('stat') + spy.n('lookup');
  const st = await top.stat(c, { path: '/f' });
  t.is(st.mode & 0o777, 0o600);
  t.is(st.size, 2n);
  t.is(spy.n('stat') + spy.n('lookup'), n0);
  await top.mkdir(c, { path: '/a' }, { ...args(), mode: 0o755 });
  await top.mkdir(c, { path: '/b' }, { ...args(), mode: 0o755 });
  const a0 = await top.stat(c, { path: '/a' });
  const b0 = await top.stat(c, { path: '/b' });
  await top.create(c, { path: '/a/x' }, 2, args());
  await top.rename(c, { path: '/a/x' }, { path: '/b/x' });
  const n1 = spy.n('stat') + spy.n('lookup');
  t.is((await top.stat(c, { path: '/a' })).nlink, a0.nlink);
  t.is((await top.stat(c, { path: '/b' })).nlink, b0.nlink);
  t.is(spy.n('stat') + spy.n('lookup'), n1, 'a file renamed between two cached directories keeps both');
  t.is((await top.lookup(c, { path: '/b/x' })).iatt.mode & S_IFDIR, 0);
});

// --- nl-cache ---

function nlStack(opts: Record<string, unknown> = {}) {
  const mem = new MemXlator('mem');
  const spy = new Spy(mem);
  const nl = new NlCache('nl', opts, [spy as unknown as Xlator]);
  const top = new MdCache('md', {}, [nl]);
  return { mem, spy, nl, top };
}

/** What the kernel sends to make a file: a lookup of the name, then the create. */
async function kernelCreate(top: Xlator, path: string) {
  await t_enoent(top.lookup(c, { path }));
  return top.create(c, { path }, 2, args());
}

async function t_enoent(p: Promise<unknown>) {
  const e = await p.then(() => null, (err: unknown) => err);
  if (!(e instanceof FsError) || e.errno !== 'ENOENT') throw new Error(`expected ENOENT, got ${String(e)}`);
}

test('nl-cache: after mkdir and N creates the child saw N creates and no lookup of the new names', async (t) => {
  const { spy, nl, top } = nlStack();
  await top.mkdir(c, { path: '/d' }, { ...args(), mode: 0o755 });
  const N = 50;
  for (let i = 0; i < N; i++) await kernelCreate(top, `/d/f${i}`);
  t.is(spy.n('create'), N);
  t.is(spy.named('lookup', /^\/d\/f\d+$/), 0);
  t.is(nl.hits, N);
  // The names made are found (through the cache or the child), and a name never made is not.
  t.is((await top.lookup(c, { path: '/d/f7' })).iatt.size, 0n);
  await t_enoent(top.lookup(c, { path: '/d/nope' }));
  t.is(spy.named('lookup', /^\/d\/nope$/), 0);
  // mkdir inside: the new directory is known empty too, and the parent knows its name.
  await top.mkdir(c, { path: '/d/sub' }, { ...args(), mode: 0o755 });
  await kernelCreate(top, '/d/sub/x');
  t.is(spy.named('lookup', /^\/d\/sub/), 0);
});

test('nl-cache learns a listed directory, follows its own unlinks and renames, and forgets on surprises', async (t) => {
  const { mem, spy, top } = nlStack();
  await mem.mkdir(c, { path: '/l' }, { ...args(), mode: 0o755 });
  for (const n of ['a', 'b']) await mem.create(c, { path: `/l/${n}` }, 2, args());
  t.deepEqual((await top.readdirp(c, { path: '/l' })).map((d) => d.name).sort(), ['a', 'b']);
  await t_enoent(top.lookup(c, { path: '/l/c' }));
  t.is(spy.named('lookup', /^\/l\/c$/), 0, 'a name missing from a complete listing');
  await top.rename(c, { path: '/l/a' }, { path: '/l/z' });
  await t_enoent(top.lookup(c, { path: '/l/a' }));
  t.is(spy.named('lookup', /^\/l\/a$/), 0, 'the old name of a rename is gone');
  t.truthy((await top.lookup(c, { path: '/l/z' })).iatt);
  await top.unlink(c, { path: '/l/b' });
  await t_enoent(top.lookup(c, { path: '/l/b' }));
  t.is(spy.named('lookup', /^\/l\/b$/), 0);
  // A create that finds a file this client did not know of (another client made it): forgotten.
  await mem.create(c, { path: '/l/other' }, 2, args());
  await top.create(c, { path: '/l/other' }, 2, args());
  await t_enoent(top.lookup(c, { path: '/l/q' }));
  t.is(spy.named('lookup', /^\/l\/q$/), 1, 'after a surprise the child is asked again');
  // A failed entry operation forgets too.
  await top.readdirp(c, { path: '/l' });
  await t.throwsAsync(top.rmdir(c, { path: '/l/z' }), { message: /ENOTDIR/ });
  await t_enoent(top.lookup(c, { path: '/l/r' }));
  t.is(spy.named('lookup', /^\/l\/r$/), 1);
});

test('nl-cache trusts no listing while a brick below is down (child-down), and learns again after child-up', async (t) => {
  const { mem, spy, nl, top } = nlStack();
  await mem.mkdir(c, { path: '/p' }, { ...args(), mode: 0o755 });
  await mem.create(c, { path: '/p/a' }, 2, args());
  nl.notify('child-down', spy as unknown as Xlator);
  await top.readdirp(c, { path: '/p' });
  await t_enoent(top.lookup(c, { path: '/p/missing' }));
  t.is(spy.named('lookup', /^\/p\/missing$/), 1, 'a listing made while a brick was down may lack its names');
  nl.notify('child-up', spy as unknown as Xlator);
  await top.readdirp(c, { path: '/p' });
  await t_enoent(top.lookup(c, { path: '/p/other' }));
  t.is(spy.named('lookup', /^\/p\/other$/), 0);
});

test('nl-cache: names made by another client show after the timeout; a lookup after expiry reaches the child', async (t) => {
  // A timeout of seconds: the steps "within" it take microseconds, but a loaded CI machine once
  // took more than 200 ms between them.
  const { mem, spy, top } = nlStack({ timeout: '2s' });
  await top.mkdir(c, { path: '/d' }, { ...args(), mode: 0o755 });
  await mem.create(c, { path: '/d/theirs' }, 2, args()); // straight on the brick: another client
  await t_enoent(top.lookup(c, { path: '/d/theirs' }));
  t.is(spy.named('lookup', /^\/d\/theirs$/), 0, 'within the timeout the list is trusted');
  await sleep(2300);
  t.truthy((await top.lookup(c, { path: '/d/theirs' })).iatt);
  t.is(spy.named('lookup', /^\/d\/theirs$/), 1);
  await t_enoent(top.lookup(c, { path: '/d/missing' }));
  t.is(spy.named('lookup', /^\/d\/missing$/), 1, 'expired: the child answers');
});

test('nl-cache: a burst of creates outlasting the timeout lists the directory again once, and misses stay local', async (t) => {
  const { mem, spy, nl, top } = nlStack({ timeout: '2s' }); // seconds, as above
  await top.mkdir(c, { path: '/d' }, { ...args(), mode: 0o755 });
  for (let i = 0; i < 5; i++) await kernelCreate(top, `/d/f${i}`);
  await sleep(2300); // expired
  await mem.create(c, { path: '/d/theirs' }, 2, args()); // another client's
  let go!: () => void;
  spy.holdOp = 'readdirp';
  spy.hold = new Promise((r) => { go = r; });
  await kernelCreate(top, '/d/g0'); // reaches the child, starts the re-listing (held)
  t.is(spy.named('lookup', /^\/d\/g0$/), 1);
  await kernelCreate(top, '/d/g1'); // while it runs: its create must show after it
  await top.unlink(c, { path: '/d/f4' });
  go();
  await until('the re-listing', () => nl.refreshes === 1);
  t.is(nl.refreshes, 1);
  t.is(spy.n('readdirp'), 1);
  for (let i = 2; i < 20; i++) await kernelCreate(top, `/d/g${i}`);
  t.is(spy.named('lookup', /^\/d\/g([2-9]|1\d)$/), 0, 'after the re-listing, misses are answered here');
  // The list holds every name: this client's (made before, during and after) and the other's.
  for (const n of ['f0', 'f3', 'g0', 'g1', 'g19', 'theirs']) t.truthy((await top.lookup(c, { path: `/d/${n}` })).iatt, n);
  await t_enoent(top.lookup(c, { path: '/d/f4' }));
  t.is(spy.named('lookup', /^\/d\/f4$/), 0, 'the unlink made during the re-listing holds');
  // A directory never known is not listed on a miss.
  await mem.mkdir(c, { path: '/other' }, { ...args(), mode: 0o755 });
  await t_enoent(top.lookup(c, { path: '/other/x' }));
  await sleep(20);
  t.is(spy.n('readdirp'), 1);
});

test('nl-cache does not track a directory with more names than its limit, and can be switched off', async (t) => {
  const big = nlStack({ limit: 16 });
  await big.mem.mkdir(c, { path: '/big' }, { ...args(), mode: 0o755 });
  for (let i = 0; i < 20; i++) await big.mem.create(c, { path: `/big/${i}` }, 2, args());
  await big.top.readdirp(c, { path: '/big' });
  await t_enoent(big.top.lookup(c, { path: '/big/x' }));
  t.is(big.spy.named('lookup', /^\/big\/x$/), 1);
  const off = nlStack({ enable: false });
  await off.top.mkdir(c, { path: '/d' }, { ...args(), mode: 0o755 });
  await kernelCreate(off.top, '/d/a');
  t.is(off.spy.named('lookup', /^\/d\/a$/), 1);
  t.throws(() => new NlCache('nl', { bogus: 1 }, [new MemXlator('m')]), { message: /unknown option 'bogus'/ });
});

test('volgen puts nl-cache just below md-cache, and leaves it out with performance.nl-cache off', (t) => {
  const v: VolumeDef = {
    name: 'v', id: newGfid(), status: 'Created', stripe: 1, replica: 1, arbiter: 0, transport: 'tcp',
    bricks: [{ host: 'h1', path: '/b1', nodeUuid: 'n1' }, { host: 'h2', path: '/b2', nodeUuid: 'n1' }],
    options: { 'performance.nl-cache-timeout': '10' }, secret: 's', version: 1,
  };
  const ctx = { member: () => ({ uuid: 'n1', hostname: 'h1', port: 24007 }) };
  const chain = (g: XlatorSpec) => { const out: string[] = []; for (let x: XlatorSpec | undefined = g; x?.type.startsWith('performance/'); x = x.children?.[0]) out.push(x.type); return out; };
  const on = generateSpec(v, ctx).graph;
  t.deepEqual(chain(on).slice(0, 2), ['performance/md-cache', 'performance/nl-cache']);
  t.is(on.children![0].options!.timeout, 10);
  t.is(clusterOf(on).type, 'cluster/distribute');
  const off = generateSpec({ ...v, options: { 'performance.nl-cache': 'off' } }, ctx).graph;
  t.false(chain(off).includes('performance/nl-cache'));
  t.true(chain(off).includes('performance/md-cache'));
});

// --- write-behind ---

test('write-behind gathers small sequential writes into few child writes, all there after flush', async (t) => {
  const { mem, spy, top } = stack((ch) => new WriteBehind('wb', { 'aggregate-size': '64KB' }, [ch]));
  const fd = await file(top, '/w');
  const chunk = Buffer.alloc(1024, 7);
  let release!: () => void;
  spy.hold = new Promise((r) => { release = r; }); // a child slower than the writer, as a brick is
  for (let i = 0; i < 256; i++) await top.write(c, fd, i * 1024, chunk);
  t.is(spy.n('write'), 4, 'each 64 KiB gather went as it filled');
  release();
  spy.hold = undefined;
  await top.flush(c, fd);
  t.true(spy.n('write') <= 8, `${spy.n('write')} child writes`);
  t.is(mem.names.get('/w')!.data.length, 256 * 1024);
  t.is((top as WriteBehind).pendingBytes, 0);
});

test('write-behind answers before the child and makes reads, stats and fsync wait for the data', async (t) => {
  const { mem, spy, top } = stack((ch) => new WriteBehind('wb', {}, [ch]));
  const fd = await file(top, '/w');
  let release!: () => void;
  spy.hold = new Promise((r) => { release = r; });
  t.is(await top.write(c, fd, 0, Buffer.from('hello')), 5);
  t.is(mem.names.get('/w')!.data.length, 0, 'not on the brick yet');
  const read = top.read(c, fd, 0, 5);
  const st = top.stat(c, { path: '/w' });
  setTimeout(release, 20);
  t.is(String(await read), 'hello');
  t.is((await st).size, 5n);
  spy.hold = undefined;
  await top.write(c, fd, 5, Buffer.from(' world'));
  await top.fsync(c, fd, false);
  t.is(String(mem.names.get('/w')!.data), 'hello world');
});

test('write-behind reports a failed background write at flush (close), once', async (t) => {
  const { spy, top } = stack((ch) => new WriteBehind('wb', {}, [ch]));
  const fd = await file(top, '/w');
  spy.failWrites = true;
  await top.write(c, fd, 0, Buffer.from('data'));
  const e = await t.throwsAsync(top.flush(c, fd));
  t.is((e as FsError).errno, 'ENOSPC');
  await t.notThrowsAsync(top.flush(c, fd));
});

test('write-behind keeps the order of overlapping writes', async (t) => {
  const { mem, top } = stack((ch) => new WriteBehind('wb', { 'aggregate-size': '4KB' }, [ch]));
  const fd = await file(top, '/o');
  await top.write(c, fd, 0, Buffer.alloc(4096, 1));
  await top.write(c, fd, 0, Buffer.alloc(4096, 2));
  await top.write(c, fd, 100, Buffer.from('z'));
  await top.flush(c, fd);
  const d = mem.names.get('/o')!.data;
  t.is(d[0], 2);
  t.is(d[100], 'z'.charCodeAt(0));
  t.is(d[4095], 2);
});

test('write-behind switched off writes through', async (t) => {
  const { mem, top } = stack((ch) => new WriteBehind('wb', { enable: 'off' }, [ch]));
  const fd = await file(top, '/w');
  await top.write(c, fd, 0, Buffer.from('now'));
  t.is(String(mem.names.get('/w')!.data), 'now');
});

test('write-behind keeps several 1 MiB writes of one file in flight (window 4 MiB) and waits beyond it', async (t) => {
  const { mem, spy, top } = stack((ch) => new WriteBehind('wb', {}, [ch]));
  const fd = await file(top, '/big');
  let release!: () => void;
  spy.hold = new Promise((r) => { release = r; });
  const mib = 1024 * 1024;
  for (let i = 0; i < 4; i++) t.is(await top.write(c, fd, i * mib, Buffer.alloc(mib, i + 1)), mib);
  t.is(spy.n('write'), 4, 'all four on their way to the child at once');
  t.is(mem.names.get('/big')!.data.length, 0);
  let fifth = false;
  const p5 = top.write(c, fd, 4 * mib, Buffer.alloc(mib, 5)).then(() => { fifth = true; });
  const p6 = top.write(c, fd, 5 * mib, Buffer.alloc(mib, 6));
  await sleep(30);
  t.false(fifth && (await Promise.race([p6.then(() => true), sleep(5).then(() => false)])), 'the window holds the writer back');
  release();
  spy.hold = undefined;
  await Promise.all([p5, p6]);
  await top.flush(c, fd);
  const d = mem.names.get('/big')!.data;
  t.is(d.length, 6 * mib);
  for (let i = 0; i < 6; i++) t.is(d[i * mib + 7], i + 1);
  t.is((top as WriteBehind).pendingBytes, 0);
});

test('write-behind answers random 4 KiB writes at once, many in flight; a failure shows at the next write', async (t) => {
  const { mem, spy, top } = stack((ch) => new WriteBehind('wb', {}, [ch]));
  const fd = await file(top, '/rand');
  await top.write(c, fd, 0, Buffer.alloc(1024 * 1024));
  await top.fsync(c, fd, false);
  let release!: () => void;
  spy.hold = new Promise((r) => { release = r; });
  const before = spy.n('write');
  for (let i = 0; i < 64; i++) await top.write(c, fd, ((i * 37) % 256) * 4096, Buffer.alloc(4096, 9));
  t.is(spy.n('write') - before, 32, 'the first 32 left together, the rest wait for more');
  await until('the flush-delay', () => spy.n('write') - before === 64);
  t.is(spy.n('write') - before, 64, 'after flush-delay all are in flight at once');
  release();
  spy.hold = undefined;
  await top.fsync(c, fd, false);
  t.is(mem.names.get('/rand')!.data[37 * 4096], 9);
  // Answered, the writes in flight let the next ones go at once (no flush-delay wait).
  spy.hold = new Promise((r) => { release = r; });
  for (let i = 0; i < 40; i++) await top.write(c, fd, ((i * 41) % 256) * 4096, Buffer.alloc(4096, 8));
  const sent = spy.n('write');
  release();
  spy.hold = undefined;
  await sleep(1);
  t.true(spy.n('write') - sent >= 7, `${spy.n('write') - sent} more sent when the first burst was answered`);
  await top.fsync(c, fd, false);
  spy.failWrites = true;
  const failed = spy.n('write') + 1;
  await top.write(c, fd, 8 * 4096, Buffer.alloc(4096, 1));
  await until('the failing write', () => spy.n('write') === failed);
  await sleep(1); // the failure reaches write-behind's file state
  const e = await t.throwsAsync(top.write(c, fd, 99 * 4096, Buffer.alloc(4096, 1)));
  t.is((e as FsError).errno, 'ENOSPC');
  spy.failWrites = false;
  await t.notThrowsAsync(top.fsync(c, fd, false), 'reported once');
});

test('write-behind copies a caller\'s buffer but keeps a donated one', async (t) => {
  const { mem, spy, top } = stack((ch) => new WriteBehind('wb', {}, [ch]));
  const fd = await file(top, '/d');
  let release!: () => void;
  spy.hold = new Promise((r) => { release = r; });
  const mine = Buffer.from('aaaa');
  await top.write(c, fd, 0, mine);
  mine.fill('b'); // the caller reuses its buffer: what was written stays 'aaaa'
  const given = donate(Buffer.from('cccc'));
  await top.write(c, fd, 100, given);
  release();
  spy.hold = undefined;
  await top.flush(c, fd);
  const d = mem.names.get('/d')!.data;
  t.is(String(d.subarray(0, 4)), 'aaaa');
  t.is(String(d.subarray(100, 104)), 'cccc');
});

test('a buffer pool lends up to its capacity, takes back only its own buffers, once, and keeps a bounded number', (t) => {
  const pool = new BufferPool(1024, 2);
  const a = pool.take(1000);
  t.is(a.length, 1000);
  t.is(a.buffer.byteLength, 1024);
  pool.give(a.subarray(10, 20)); // a slice names the same buffer
  pool.give(a); // twice: ignored
  const b = pool.take(500);
  t.is(b.buffer, a.buffer);
  const c2 = pool.take(500);
  t.not(c2.buffer, a.buffer); // a was lent once, not twice
  pool.give(Buffer.alloc(1024)); // not the pool's: ignored
  t.not(pool.take(1024).buffer, c2.buffer);
  const big = pool.take(4096); // beyond capacity: a buffer of its own, never pooled
  t.is(big.length, 4096);
  pool.give(big);
  const [x, y, z] = [pool.take(1), pool.take(1), pool.take(1)];
  for (const u of [x, y, z]) pool.give(u);
  const again = [pool.take(1), pool.take(1), pool.take(1)].map((u) => u.buffer);
  t.is(again.filter((ab) => ab === x.buffer || ab === y.buffer || ab === z.buffer).length, 2); // two kept idle
});

test('a buffer pool lets its idle buffers go once none was taken for its idle time', async (t) => {
  const pool = new BufferPool(1024, 4, 50);
  const lent = [pool.take(10), pool.take(10), pool.take(10)];
  for (const b of lent) pool.give(b);
  t.is(pool.idle, 3);
  await until('the idle timer', () => pool.idle === 0);
  t.is(pool.idle, 0);
  t.false(lent.some((b) => b.buffer === pool.take(10).buffer)); // a fresh one
});

test.serial('write-behind gives a donated bulk buffer back to the pool once the child wrote it, not before', async (t) => {
  const { mem, spy, top } = stack((ch) => new WriteBehind('wb', {}, [ch]));
  const fd = await file(top, '/bulk');
  const data = donate(bulkBuffers.take(512 * 1024).fill(7));
  let release!: () => void;
  spy.hold = new Promise((r) => { release = r; });
  await top.write(c, fd, 0, data); // answered at once, written behind
  const meanwhile = bulkBuffers.take(512 * 1024);
  t.not(meanwhile.buffer, data.buffer); // still lent: the child has not written it
  bulkBuffers.give(meanwhile);
  release();
  spy.hold = undefined;
  await top.flush(c, fd);
  t.true(mem.names.get('/bulk')!.data.subarray(0, 512 * 1024).every((v) => v === 7));
  const taken = [bulkBuffers.take(512 * 1024), bulkBuffers.take(512 * 1024)];
  t.true(taken.some((b) => b.buffer === data.buffer)); // back in the pool
  for (const b of taken) bulkBuffers.give(b);
});

// --- read-ahead ---

test('read-ahead serves sequential reads from pages read ahead, and drops them on a write', async (t) => {
  const { spy, top } = stack((ch) => new ReadAhead('ra', { 'page-size': '4KB', 'page-count': 4 }, [ch]));
  const data = Buffer.alloc(64 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  const fd = await file(top, '/r');
  await top.write(c, fd, 0, data);
  const parts: Buffer[] = [];
  for (let off = 0; off < data.length; off += 4096) parts.push(await top.read(c, fd, off, 4096));
  t.deepEqual(Buffer.concat(parts), data);
  t.true((top as ReadAhead).hits > 8, `${(top as ReadAhead).hits} hits`);
  await top.write(c, fd, 4096 * 3, Buffer.from('XYZ'));
  await top.read(c, fd, 0, 4096);
  await top.read(c, fd, 4096, 4096);
  await top.read(c, fd, 8192, 4096);
  t.is(String((await top.read(c, fd, 4096 * 3, 3))), 'XYZ');
  t.is((await top.read(c, fd, 60 * 1024, 8192)).length, 4096, 'short at end of file');
  await top.release(c, fd);
  t.true(spy.n('read') > 0);
});

test('read-ahead keeps pages in flight ahead of a reader whose reads arrive out of order, never past the end of file', async (t) => {
  const { spy, top } = stack((ch) => new ReadAhead('ra', { 'page-size': '4KB', 'page-count': 4 }, [ch]));
  const data = Buffer.alloc(40 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 253;
  const fd = await file(top, '/o');
  await top.write(c, fd, 0, data);
  const ra = top as ReadAhead;
  const got = new Map<number, Buffer>();
  got.set(0, await top.read(c, fd, 0, 4096));
  got.set(4096, await top.read(c, fd, 4096, 4096));
  // The kernel's readahead: two READs at once, the later one first.
  for (let off = 8192; off < data.length; off += 8192) {
    const [b, a] = await Promise.all([top.read(c, fd, off + 4096, 4096), top.read(c, fd, off, 4096)]);
    got.set(off, a);
    got.set(off + 4096, b);
  }
  t.deepEqual(Buffer.concat([...got.entries()].sort((x, y) => x[0] - y[0]).map((e) => e[1])), data);
  t.is(ra.hits, 9, 'every read after the first two from pages read ahead');
  const reads = spy.n('read');
  t.true(reads <= 12, `${reads} child reads for 10 pages`);
  t.is((await top.read(c, fd, data.length, 4096)).length, 0);
  await top.read(c, fd, data.length, 4096);
  t.true(spy.n('read') - reads <= 3, 'nothing read ahead past the end of file');
});

test('read-ahead reads nothing ahead for random reads, even near each other', async (t) => {
  const { spy, top } = stack((ch) => new ReadAhead('ra', { 'page-size': '4KB', 'page-count': 4 }, [ch]));
  const fd = await file(top, '/r');
  await top.write(c, fd, 0, Buffer.alloc(256 * 1024, 3));
  const before = spy.n('read');
  const offs = [50, 52, 10, 12, 30, 33, 31, 60, 2, 5].map((p) => p * 4096);
  for (const off of offs) t.is((await top.read(c, fd, off, 4096))[0], 3);
  t.is(spy.n('read') - before, offs.length, 'one child read per read');
});

// --- io-cache ---

test('io-cache answers a repeated read from the cache until this client changes the file', async (t) => {
  const { spy, top } = stack((ch) => new IoCache('io', {}, [ch]));
  const fd = await file(top, '/c', 'first');
  t.is(String(await top.read(c, fd, 0, 5)), 'first');
  t.is(String(await top.read(c, fd, 0, 5)), 'first');
  t.is(spy.n('read'), 1);
  await top.write(c, fd, 0, Buffer.from('again'));
  t.is(String(await top.read(c, fd, 0, 5)), 'again');
  await top.ftruncate(c, fd, 2);
  t.is(String(await top.read(c, fd, 0, 5)), 'ag');
  t.is(spy.n('read'), 3);
});

test('io-cache switched off reads through', async (t) => {
  const { spy, top } = stack((ch) => new IoCache('io', { enable: false }, [ch]));
  const fd = await file(top, '/c', 'x');
  await top.read(c, fd, 0, 1);
  await top.read(c, fd, 0, 1);
  t.is(spy.n('read'), 2);
});

// --- the whole stack, as volgen builds it ---

test('the performance stack over one brick behaves like the brick', async (t) => {
  const mem = new MemXlator('mem');
  const top = new MdCache('md', {}, [new NlCache('nl', {}, [new IoCache('io', {}, [new ReadAhead('ra', {}, [new WriteBehind('wb', {}, [mem])])])])]);
  const ctx: Ctx = { ...c };
  const { fd } = await top.create(ctx, { path: '/s' }, 2, args());
  for (let i = 0; i < 100; i++) await top.write(ctx, fd, i * 10, Buffer.from('0123456789'));
  t.is((await top.fstat(ctx, fd)).size, 1000n);
  t.is((await top.stat(ctx, { path: '/s' })).size, 1000n);
  t.is(String(await top.read(ctx, fd, 990, 10)), '0123456789');
  await top.flush(ctx, fd);
  await top.release(ctx, fd);
  t.is(mem.names.get('/s')!.data.length, 1000);
  const list = await top.readdirp(ctx, { path: '/' });
  t.deepEqual(list.map((d) => [d.name, d.iatt.size]), [['s', 1000n]]);
});

test('protocol/client keeps the attributes a write answered with only while sure: not while another write of the inode is on its way, nor after a request that may change it went while the write was on its way, nor after a failed write', (t) => {
  const a = new PostWriteAttrs();
  const g = newGfid();
  const iatt = (size: bigint): Iatt => ({ gfid: g, ino: 1n, mode: 0o100644, nlink: 1, uid: 0, gid: 0, rdev: 0, size, blocks: 0n, blksize: 4096, atime: 0n, mtime: 0n, ctime: 0n });
  a.sending(g);
  a.answered(g, iatt(10n));
  t.is(a.get(g)?.size, 10n);
  a.sending(g);
  t.is(a.get(g), undefined, 'a write on its way');
  a.sending(g);
  a.answered(g, iatt(20n));
  t.is(a.get(g), undefined, 'still one on its way');
  a.answered(g, iatt(30n));
  t.is(a.get(g)?.size, 30n, 'the last answer, once none is on its way');
  // A setattr that rides behind a write still on its way spoils that write's answer.
  a.sending(g);
  a.touched(g);
  a.answered(g, iatt(40n));
  t.is(a.get(g), undefined);
  a.sending(g);
  a.answered(g, iatt(50n));
  t.is(a.get(g)?.size, 50n, 'a later write is sure again');
  a.touched(); // a rename, an upcall: every inode
  t.is(a.get(g), undefined);
  a.sending(g);
  a.answered(g); // failed
  t.is(a.get(g), undefined);
  a.sending(g);
  a.answered(g, { ...iatt(60n), gfid: newGfid() }); // the fd's file is another inode now
  t.is(a.get(g), undefined);
  a.sending(g);
  a.answered(g, iatt(70n));
  const got = a.get(g)!;
  got.size = 0n;
  t.is(a.get(g)?.size, 70n, 'answers are copies');
});
