// Unit tests of the performance translators over an in-memory brick: what they cache, what they
// delay, and that every change made through them is seen by the next operation.
import test from 'ava';
import { FsError } from '../common/errors.js';
import { PassThrough, type Xlator } from '../common/fops.js';
import { newGfid } from '../common/gfid.js';
import { ROOT_CTX, type Ctx, type Fd } from '../common/types.js';
import { MdCache } from '../client/xlators/performance/md-cache/index.js';
import { WriteBehind } from '../client/xlators/performance/write-behind/index.js';
import { ReadAhead } from '../client/xlators/performance/read-ahead/index.js';
import { IoCache } from '../client/xlators/performance/io-cache/index.js';
import { MemXlator } from './support/mem-xlator.js';

const c = ROOT_CTX;
const args = () => ({ mode: 0o644, umask: 0, gfid: newGfid() });

/** Counts calls per operation and can hold writes back or fail them. */
class Spy extends PassThrough {
  readonly counts = new Map<string, number>();
  hold?: Promise<void>;
  failWrites = false;
  constructor(child: Xlator) {
    super('spy', 'test/spy', [child]);
    for (const op of ['lookup', 'stat', 'readdirp', 'getxattr', 'read', 'write', 'fstat'] as const) {
      const orig = (child as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[op].bind(child);
      (this as unknown as Record<string, unknown>)[op] = async (...a: unknown[]) => {
        this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
        if (op === 'write') {
          if (this.hold) await this.hold;
          if (this.failWrites) throw new FsError('ENOSPC', 'full');
        }
        return orig(...a);
      };
    }
  }
  n(op: string) { return this.counts.get(op) ?? 0; }
}

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

// --- write-behind ---

test('write-behind gathers small sequential writes into few child writes, all there after flush', async (t) => {
  const { mem, spy, top } = stack((ch) => new WriteBehind('wb', { 'aggregate-size': '64KB' }, [ch]));
  const fd = await file(top, '/w');
  const chunk = Buffer.alloc(1024, 7);
  for (let i = 0; i < 256; i++) await top.write(c, fd, i * 1024, chunk);
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
  const top = new MdCache('md', {}, [new IoCache('io', {}, [new ReadAhead('ra', {}, [new WriteBehind('wb', {}, [mem])])])]);
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
