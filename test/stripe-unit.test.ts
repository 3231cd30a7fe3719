// cluster/stripe over in-memory children: the chunk arithmetic, the seed's piece sizes, sizes
// recorded on the pieces, truncate across chunk boundaries, holes, O_APPEND, another client with
// another block size, a randomized comparison with a plain buffer, and a child that is down.
import test from 'ava';
import { pino } from 'pino';
import { extents, localLength, sizeFromPieces, type Geometry } from '../client/xlators/cluster/stripe/chunks.js';
import { Stripe } from '../client/xlators/cluster/stripe/index.js';
import { BLOCK_XATTR, COUNT_XATTR, INDEX_XATTR, SIZE_XATTR } from '../client/xlators/cluster/stripe/size.js';
import { ROOT_CTX as C, S_IFDIR, S_IFREG } from '../common/types.js';
import { memChildren, newGfid, type MemXlator } from './support/mem-xlator.js';
import { prng as rng } from './support/fsx.js';

const log = pino({ level: 'silent' });
const xctx = { log, volume: 'v', volumeId: 'id', secret: 's', rootCtx: C };
const K = 1024;
const O_RDWR = 2;
const O_APPEND = 0o2000;

function setup(n = 2, options: Record<string, unknown> = {}, kids: MemXlator[] = memChildren(n)) {
  return { kids, st: new Stripe('v-stripe-0', options, kids, xctx) };
}

async function createFile(st: Stripe, path: string, flags = O_RDWR) {
  return (await st.create(C, { path }, flags, { mode: S_IFREG | 0o644, umask: 0, gfid: newGfid() })).fd;
}

const pieceLens = (kids: MemXlator[], path: string) => kids.map((k) => k.names.get(path)!.data.length);


test('chunk arithmetic: the seed\'s piece sizes, and pieces give back the size', (t) => {
  const g: Geometry = { block: 128 * K, count: 2 };
  t.deepEqual([0, 1].map((k) => localLength(g, 10_240_000, k)), [5_128_192, 5_111_808]);
  t.deepEqual([0, 1].map((k) => localLength(g, 20_480_000, k)), [10_256_384, 10_223_616]);
  t.deepEqual([0, 1].map((k) => localLength(g, 0, k)), [0, 0]);
  t.deepEqual([0, 1].map((k) => localLength(g, 1, k)), [1, 0]);
  t.deepEqual([0, 1].map((k) => localLength(g, 128 * K + 1, k)), [128 * K, 1]);
  const r = rng(7);
  for (const count of [2, 3, 4]) {
    const gg = { block: 16 * K, count };
    for (let i = 0; i < 2000; i++) {
      const size = Math.floor(r() * 2_000_000);
      const lens = Array.from({ length: count }, (_, k) => localLength(gg, size, k));
      t.is(lens.reduce((a, b) => a + b, 0), size);
      if (sizeFromPieces(gg, lens) !== size) t.fail(`size ${size} over ${count}`);
    }
  }
});

test('a logical range maps to one contiguous local range per child', (t) => {
  const g: Geometry = { block: 128 * K, count: 2 };
  const ex = extents(g, 100 * K, 1024 * K);
  t.deepEqual(ex.map((e) => [e.child, e.local, e.length]), [[0, 100 * K, 28 * K + 128 * K * 3 + 100 * K], [1, 0, 128 * K * 4]]);
  t.is(ex.reduce((a, e) => a + e.length, 0), 1024 * K);
  t.deepEqual(ex[0].parts[0], [0, 28 * K]);
  t.deepEqual(ex[1].parts[0], [28 * K, 128 * K]);
});

test('the seed\'s 10M file written in 1 KiB writes: exact piece sizes, geometry and size on each piece', async (t) => {
  const { kids, st } = setup();
  const fd = await createFile(st, '/10M.file');
  const zero = Buffer.alloc(1024);
  for (let i = 0; i < 10_000; i++) await st.write(C, fd, i * 1024, zero);
  await st.release(C, fd);
  t.deepEqual(pieceLens(kids, '/10M.file'), [5_128_192, 5_111_808]);
  kids.forEach((k, i) => {
    const x = k.names.get('/10M.file')!.xattrs;
    t.is(x.get(SIZE_XATTR)!.toString(), '10240000');
    t.is(x.get(BLOCK_XATTR)!.toString(), String(128 * K));
    t.is(x.get(COUNT_XATTR)!.toString(), '2');
    t.is(x.get(INDEX_XATTR)!.toString(), String(i));
  });
  t.is((await st.stat(C, { path: '/10M.file' })).size, 10_240_000n);
  t.is(new Set(kids.map((k) => k.names.get('/10M.file')!.gfid)).size, 1, 'one gfid on every piece');
});

test('chunks round robin: each chunk\'s bytes on child i mod N at floor(i / N) * B', async (t) => {
  const { kids, st } = setup(3, { 'block-size': '16KB' });
  const data = Buffer.alloc(16 * K * 7 + 5);
  for (let i = 0; i < data.length; i++) data[i] = (i / (16 * K)) | 0;
  const fd = await createFile(st, '/f');
  t.is(await st.write(C, fd, 0, data), data.length);
  for (let i = 0; i < 8; i++) {
    const piece = kids[i % 3].names.get('/f')!.data;
    t.is(piece[Math.floor(i / 3) * 16 * K], i, `chunk ${i}`);
  }
  t.deepEqual(await st.read(C, fd, 0, data.length + 100), data);
  t.deepEqual(await st.read(C, fd, 16 * K - 3, 16 * K + 6), data.subarray(16 * K - 3, 32 * K + 3));
  await st.release(C, fd);
});

test('truncate down and up across chunk boundaries leaves every piece at its exact length', async (t) => {
  const { kids, st } = setup(2, { 'block-size': '16KB' });
  const g = { block: 16 * K, count: 2 };
  const fd = await createFile(st, '/t');
  const data = Buffer.alloc(100 * K, 7);
  await st.write(C, fd, 0, data);
  for (const size of [70 * K + 3, 16 * K, 16 * K - 1, 0, 1, 200 * K + 9, 33 * K]) {
    const iatt = await st.ftruncate(C, fd, size);
    t.is(iatt.size, BigInt(size));
    t.deepEqual(pieceLens(kids, '/t'), [0, 1].map((k) => localLength(g, size, k)), `pieces for ${size}`);
  }
  // Path truncate and setattr with a size take the same way.
  await st.truncate(C, { path: '/t' }, 40 * K + 1);
  t.deepEqual(pieceLens(kids, '/t'), [0, 1].map((k) => localLength(g, 40 * K + 1, k)));
  await st.setattr(C, { path: '/t' }, { size: 17n * BigInt(K), mode: 0o600 });
  t.deepEqual(pieceLens(kids, '/t'), [16 * K, K]);
  t.true(kids.every((k) => (k.names.get('/t')!.mode & 0o7777) === 0o600), 'chmod reaches every piece');
  t.is((await st.fstat(C, fd)).size, 17n * BigInt(K));
  await st.release(C, fd);
  t.true(kids.every((k) => k.names.get('/t')!.xattrs.get(SIZE_XATTR)!.toString() === String(17 * K)));
});

test('a write past a hole: zeros read back, every piece grown to its exact length', async (t) => {
  const { kids, st } = setup(3, { 'block-size': '16KB' });
  const g = { block: 16 * K, count: 3 };
  const fd = await createFile(st, '/sparse');
  await st.write(C, fd, 0, Buffer.from('head'));
  await st.write(C, fd, 100 * K + 5, Buffer.from('tail'));
  const end = 100 * K + 9;
  t.deepEqual(pieceLens(kids, '/sparse'), [0, 1, 2].map((k) => localLength(g, end, k)));
  const all = await st.read(C, fd, 0, 1 << 20);
  t.is(all.length, end);
  t.is(all.subarray(0, 4).toString(), 'head');
  t.true(all.subarray(4, 100 * K + 5).every((b) => b === 0));
  t.is(all.subarray(100 * K + 5).toString(), 'tail');
  await st.release(C, fd);
});

test('O_APPEND writes go to the logical end, not the pieces\' ends', async (t) => {
  const { kids, st } = setup(2, { 'block-size': '16KB' });
  let fd = await createFile(st, '/log');
  await st.write(C, fd, 0, Buffer.alloc(20 * K, 1));
  await st.release(C, fd);
  fd = await st.open(C, { path: '/log' }, O_RDWR | O_APPEND);
  await st.write(C, fd, 0, Buffer.from('appended'));
  const back = await st.read(C, fd, 20 * K, 100);
  t.is(back.toString(), 'appended');
  t.is((await st.fstat(C, fd)).size, BigInt(20 * K + 8));
  await st.release(C, fd);
  t.deepEqual(pieceLens(kids, '/log'), [16 * K, 4 * K + 8]);
});

test('another client with another block size reads old files by their own geometry', async (t) => {
  const kids = memChildren(2);
  const old = setup(2, {}, kids).st;
  const data = Buffer.alloc(300 * K);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
  const fd = await createFile(old, '/old');
  await old.write(C, fd, 0, data);
  await old.release(C, fd);
  const other = setup(2, { 'block-size': '256KB' }, kids).st;
  t.is((await other.stat(C, { path: '/old' })).size, BigInt(data.length));
  const rfd = await other.open(C, { path: '/old' }, 0);
  t.deepEqual(await other.read(C, rfd, 0, data.length), data);
  await other.release(C, rfd);
  const nfd = await createFile(other, '/new');
  await other.write(C, nfd, 0, data);
  await other.release(C, nfd);
  t.deepEqual(pieceLens(kids, '/new'), [256 * K, 44 * K], 'new files get the new block size');
  t.deepEqual(pieceLens(kids, '/old'), [172 * K, 128 * K], 'old files keep theirs');
  t.is(kids[0].names.get('/new')!.xattrs.get(BLOCK_XATTR)!.toString(), String(256 * K));
});

test('directories, rename, link and unlink on every child; listings show logical sizes', async (t) => {
  const { kids, st } = setup(2, { 'block-size': '16KB' });
  await st.mkdir(C, { path: '/d' }, { mode: S_IFDIR | 0o755, umask: 0, gfid: newGfid() });
  t.true(kids.every((k) => k.names.has('/d')));
  const fd = await createFile(st, '/d/a');
  await st.write(C, fd, 0, Buffer.alloc(40 * K, 3));
  await st.release(C, fd);
  await st.rename(C, { path: '/d/a' }, { path: '/d/b' });
  t.true(kids.every((k) => k.names.has('/d/b') && !k.names.has('/d/a')));
  const l = await st.link(C, { path: '/d/b' }, { path: '/d/c' });
  t.is(l.size, BigInt(40 * K));
  const ents = await st.readdirp(C, { path: '/d' });
  t.deepEqual(ents.map((e) => [e.name, Number(e.iatt.size)]).sort(), [['b', 40 * K], ['c', 40 * K]]);
  t.deepEqual(Object.keys(ents[0].xattrs), [], 'stripe\'s own xattrs stay below');
  await st.unlink(C, { path: '/d/b' });
  await st.unlink(C, { path: '/d/c' });
  t.true(kids.every((k) => !k.names.has('/d/b') && !k.names.has('/d/c')));
  await st.rmdir(C, { path: '/d' });
  t.true(kids.every((k) => !k.names.has('/d')));
});

test('randomized writes, truncates and reads match a plain buffer', async (t) => {
  const seed = Number(process.env.STRIPE_SEED ?? 20240605);
  const r = rng(seed);
  const B = 16 * K;
  const { kids, st } = setup(3, { 'block-size': B });
  const g = { block: B, count: 3 };
  const fd = await createFile(st, '/rand');
  let model = Buffer.alloc(0);
  const near = () => Math.max(0, Math.floor(r() * 12) * B + Math.floor((r() - 0.5) * 64));
  for (let step = 0; step < 3000; step++) {
    const op = r();
    const where = `seed ${seed} step ${step}`;
    if (op < 0.5) {
      const off = near();
      const len = Math.floor(r() * (r() < 0.2 ? 3 * B : 200)) + 1;
      const data = Buffer.alloc(len, (step % 251) + 1);
      await st.write(C, fd, off, data);
      if (model.length < off + len) model = Buffer.concat([model, Buffer.alloc(off + len - model.length)]);
      data.copy(model, off);
    } else if (op < 0.65) {
      const size = near();
      await st.ftruncate(C, fd, size);
      model = size <= model.length ? Buffer.from(model.subarray(0, size)) : Buffer.concat([model, Buffer.alloc(size - model.length)]);
    } else {
      const off = near();
      const len = Math.floor(r() * 3 * B) + 1;
      const got = await st.read(C, fd, off, len);
      if (!got.equals(model.subarray(off, off + len))) return t.fail(`read mismatch at ${where}`);
    }
    const size = Number((await st.fstat(C, fd)).size);
    if (size !== model.length) return t.fail(`size ${size} != ${model.length} at ${where}`);
    const lens = pieceLens(kids, '/rand');
    if (sizeFromPieces(g, lens) !== model.length) return t.fail(`pieces ${lens} at ${where}`);
  }
  t.deepEqual(await st.read(C, fd, 0, model.length + 10), model, `seed ${seed}`);
  await st.release(C, fd);
});

test('a child that is down: reads of striped files fail, never short or zero-filled', async (t) => {
  const { kids, st } = setup(2, { 'block-size': '16KB' });
  const fd = await createFile(st, '/f');
  await st.write(C, fd, 0, Buffer.alloc(64 * K, 9));
  kids[1].down = true;
  await t.throwsAsync(st.read(C, fd, 0, 64 * K), { message: /ENOTCONN/ });
  await t.throwsAsync(st.read(C, fd, 16 * K, 10), { message: /ENOTCONN/ }, 'a read wholly on the down child');
  await t.throwsAsync(st.open(C, { path: '/f' }, 0), { message: /ENOTCONN/ });
  const fresh = setup(2, { 'block-size': '16KB' }, kids).st;
  await t.throwsAsync(fresh.open(C, { path: '/f' }, 0), { message: /ENOTCONN/ });
  await t.throwsAsync(fresh.statfs(C, { path: '/' }), { message: /ENOTCONN/ });
  kids[1].down = false;
  t.deepEqual(await st.read(C, fd, 0, 64 * K), Buffer.alloc(64 * K, 9));
  await st.release(C, fd);
});

test('fallocate: extends to exact piece lengths, punches holes piecewise, refuses modes that move data', async (t) => {
  const { kids, st } = setup(2, { 'block-size': '16KB' });
  const g = { block: 16 * K, count: 2 };
  const fd = await createFile(st, '/fa');
  await st.write(C, fd, 0, Buffer.alloc(10 * K, 5));
  await st.fallocate(C, fd, 0, 8 * K, 50 * K);
  t.is((await st.fstat(C, fd)).size, BigInt(58 * K));
  t.deepEqual(pieceLens(kids, '/fa'), [0, 1].map((k) => localLength(g, 58 * K, k)));
  await st.fallocate(C, fd, 0x01, 0, 200 * K);
  t.is((await st.fstat(C, fd)).size, BigInt(58 * K), 'KEEP_SIZE keeps the size');
  await st.fallocate(C, fd, 0x03, 4 * K, 2 * K);
  const back = await st.read(C, fd, 0, 10 * K);
  t.true(back.subarray(4 * K, 6 * K).every((b) => b === 0) && back[3 * K] === 5 && back[7 * K] === 5);
  await t.throwsAsync(st.fallocate(C, fd, 0x08, 0, 16 * K), { message: /EOPNOTSUPP/ });
  await st.release(C, fd);
  t.is(kids[1].names.get('/fa')!.xattrs.get(SIZE_XATTR)!.toString(), String(58 * K));
});
