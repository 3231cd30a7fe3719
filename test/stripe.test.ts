// Striped and distributed-striped volumes through real gfsd, brick daemons and a FUSE mount: the
// seed's piece sizes, data identical through the mount, a randomized comparison with a local file,
// a changed block size, files spread over stripe groups, and a brick that is down.
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { Cluster, pidsUnder, sh } from './harness.js';
import { prng as rng } from './support/fsx.js';

const SUBNET = 60;
const K = 1024;

async function sha(path: string): Promise<string> {
  return createHash('sha256').update(await fs.readFile(path)).digest('hex');
}

const size = async (p: string) => (await fs.stat(p)).size;

async function stripeVolume(t: Parameters<typeof Cluster.start>[0], name: string, bricks = 2, stripe = 2) {
  const c = await Cluster.start(t, { nodes: 2, subnet: SUBNET });
  await c.probeAll();
  const list: [number, string][] = Array.from({ length: bricks }, (_, i) => [i % 2, `${name}-b${i}`]);
  await c.volume(name, list, ['stripe', String(stripe)]);
  const mp = await c.mount(name);
  return { c, mp, bricks: list.map(([n, b]) => c.brick(n, b)) };
}


test('the seed: dd 10M and 20M on a 2-brick striped volume leave the exact piece sizes; data identical', async (t) => {
  t.timeout(30 * 60_000, '30,000 writes of 1 KiB through FUSE on a shared machine'); // a limit, not a measure
  const { c, mp, bricks } = await stripeVolume(t, 'volume3');
  const info = await c.mustGfs(['volume', 'info', 'volume3']);
  t.regex(info, /Type: Stripe/);
  t.regex(info, /Number of Bricks: 1 x 2 = 2/);

  const dd = await sh(`cd ${mp} && dd if=/dev/zero bs=1024 count=10000 of=10M.file && dd if=/dev/zero bs=1024 count=20000 of=20M.file`, { timeoutMs: 900_000 });
  t.is(dd.code, 0, dd.stderr);
  t.deepEqual([await size(join(bricks[0], '10M.file')), await size(join(bricks[1], '10M.file'))], [5_128_192, 5_111_808]);
  t.deepEqual([await size(join(bricks[0], '20M.file')), await size(join(bricks[1], '20M.file'))], [10_256_384, 10_223_616]);
  t.is(await size(join(mp, '10M.file')), 10_240_000);
  t.is(await size(join(mp, '20M.file')), 20_480_000);
  const zeros = (n: number) => createHash('sha256').update(Buffer.alloc(n)).digest('hex');
  t.is(await sha(join(mp, '10M.file')), zeros(10_240_000));
  t.is(await sha(join(mp, '20M.file')), zeros(20_480_000));
  const ls = await sh(`ls -l ${mp}/10M.file && du -k ${mp}/20M.file && du -k ${bricks[0]}/20M.file ${bricks[1]}/20M.file`);
  t.regex(ls.stdout, / 10240000 /);
  const du = ls.stdout.trim().split('\n').slice(1).map((l) => Number(l.split(/\s+/)[0]));
  t.is(du[0], du[1] + du[2], `du of the file is the pieces' blocks summed: ${du}`);

  // Random data, copied in with cp, reads back identical.
  const src = join(c.root, 'random.src');
  await fs.writeFile(src, randomBytes(7 * 1024 * 1024 + 12345));
  t.is((await sh(`cp ${src} ${mp}/random.bin`)).code, 0);
  t.is(await sha(join(mp, 'random.bin')), await sha(src));

  // A new block size for new files; the old ones keep theirs (read through a new mount).
  await c.mustGfs(['volume', 'set', 'volume3', 'cluster.stripe-block-size', '256KB']);
  t.regex((await c.gfs(['volume', 'set', 'volume3', 'cluster.stripe-block-size', '8KB'])).stderr, /minimum/);
  const mp2 = await c.mount('volume3', await c.mountpoint('volume3-again'));
  t.is((await sh(`dd if=/dev/zero bs=1024 count=10000 of=${mp2}/new-10M.file`, { timeoutMs: 900_000 })).code, 0);
  // 10,240,000 bytes in 256 KiB chunks: 39 full ones and 16,384 bytes in chunk 39, on the second brick.
  t.deepEqual([await size(join(bricks[0], 'new-10M.file')), await size(join(bricks[1], 'new-10M.file'))], [20 * 262_144, 19 * 262_144 + 16_384]);
  t.deepEqual([await size(join(bricks[0], '10M.file')), await size(join(bricks[1], '10M.file'))], [5_128_192, 5_111_808]);
  t.is(await sha(join(mp2, 'random.bin')), await sha(src), 'old file read right with the new option');
  t.is(await sha(join(mp2, 'new-10M.file')), zeros(10_240_000));
});

test('randomized writes, truncates and reads on the mount match a local file, step by step', async (t) => {
  const { c, mp, bricks } = await stripeVolume(t, 'rand');
  const seed = Number(process.env.STRIPE_SEED ?? Date.now() % 1_000_000);
  t.log(`seed ${seed} (STRIPE_SEED=${seed} repeats this run)`);
  const r = rng(seed);
  const B = 128 * K;
  const remote = await fs.open(join(mp, 'r.bin'), 'w+');
  const local = await fs.open(join(c.root, 'r.local'), 'w+');
  try {
    const near = () => Math.max(0, Math.floor(r() * 10) * B + Math.floor((r() - 0.5) * 4096));
    const steps = 2500;
    for (let step = 0; step < steps; step++) {
      const where = `seed ${seed}, step ${step}`;
      const op = r();
      if (op < 0.5) {
        const off = near();
        const len = Math.floor(r() * (r() < 0.2 ? 2 * B + 999 : 5000)) + 1;
        const data = randomBytes(len);
        const [a, b] = [await remote.write(data, 0, len, off), await local.write(data, 0, len, off)];
        t.is(a.bytesWritten, b.bytesWritten, where);
      } else if (op < 0.62) {
        const to = near();
        await remote.truncate(to);
        await local.truncate(to);
      } else {
        const off = near();
        const len = Math.floor(r() * 2 * B) + 1;
        const [a, b] = [Buffer.alloc(len), Buffer.alloc(len)];
        const [ra, rb] = [await remote.read(a, 0, len, off), await local.read(b, 0, len, off)];
        if (ra.bytesRead !== rb.bytesRead || !a.equals(b)) return t.fail(`read of ${len} at ${off} differs at ${where}`);
      }
      const [sa, sb] = [(await remote.stat()).size, (await local.stat()).size];
      if (sa !== sb) return t.fail(`size ${sa} != ${sb} at ${where}`);
    }
  } finally {
    await remote.close();
    await local.close();
  }
  // After close, a fresh open reads from the bricks, not from the kernel's cache.
  t.is(await sha(join(mp, 'r.bin')), await sha(join(c.root, 'r.local')), `seed ${seed}`);
  const fileSize = await size(join(c.root, 'r.local'));
  const pieces = [await size(join(bricks[0], 'r.bin')), await size(join(bricks[1], 'r.bin'))];
  t.is(pieces[0] + pieces[1], fileSize, `pieces ${pieces} hold exactly ${fileSize} bytes (seed ${seed})`);

  // Appends, rename, chmod, link and unlink of a striped file behave as on a local disk.
  await fs.writeFile(join(mp, 'log'), Buffer.alloc(200 * K, 1));
  await fs.appendFile(join(mp, 'log'), 'tail');
  const log = await fs.readFile(join(mp, 'log'));
  t.is(log.length, 200 * K + 4);
  t.is(log.subarray(200 * K).toString(), 'tail');
  await fs.rename(join(mp, 'log'), join(mp, 'log2'));
  await fs.chmod(join(mp, 'log2'), 0o600);
  await fs.link(join(mp, 'log2'), join(mp, 'log3'));
  t.is((await fs.stat(join(mp, 'log3'))).size, 200 * K + 4);
  t.is((await fs.stat(join(mp, 'log2'))).mode & 0o777, 0o600);
  for (const b of bricks) t.is((await fs.stat(join(b, 'log2'))).mode & 0o777, 0o600, 'chmod on every piece');
  await fs.unlink(join(mp, 'log2'));
  await fs.unlink(join(mp, 'log3'));
  for (const b of bricks) await t.throwsAsync(fs.stat(join(b, 'log2')), { code: 'ENOENT' });
  await fs.mkdir(join(mp, 'd1/d2'), { recursive: true });
  for (const b of bricks) t.true((await fs.stat(join(b, 'd1/d2'))).isDirectory(), 'directories on every brick');
});

test('distributed-striped: stripe 2 over 4 bricks spreads files over both stripe groups', async (t) => {
  const { c, mp, bricks } = await stripeVolume(t, 'dstripe', 4, 2);
  const info = await c.mustGfs(['volume', 'info', 'dstripe']);
  t.regex(info, /Type: Distributed-Stripe/);
  t.regex(info, /Number of Bricks: 2 x 2 = 4/);
  const data = randomBytes(300 * K);
  const per = [0, 0];
  for (let i = 0; i < 16; i++) await fs.writeFile(join(mp, `f${i}`), data);
  for (let i = 0; i < 16; i++) {
    const sizes = await Promise.all(bricks.map((b) => fs.stat(join(b, `f${i}`)).then((s) => s.size, () => -1)));
    // Brick order decides the groups: (b0, b1) and (b2, b3).
    const group = sizes[0] >= 0 ? 0 : 1;
    const mine = sizes.slice(group * 2, group * 2 + 2);
    const other = sizes.slice((1 - group) * 2, (1 - group) * 2 + 2);
    t.deepEqual(mine, [172 * K, 128 * K], `f${i} striped over group ${group}`);
    t.true(other.every((s) => s === -1), `f${i} only in group ${group}`);
    per[group]++;
    t.true(data.equals(await fs.readFile(join(mp, `f${i}`))));
  }
  t.true(per[0] > 0 && per[1] > 0, `both groups used: ${per}`);
  t.deepEqual((await fs.readdir(mp)).filter((n) => n.startsWith('f')).length, 16);
});

test('a brick that is down: reads of striped files fail with EIO or ENOTCONN, never short data', async (t) => {
  const { c, mp, bricks } = await stripeVolume(t, 'down');
  const data = randomBytes(1024 * K);
  await fs.writeFile(join(mp, 'f'), data);
  t.true(data.equals(await fs.readFile(join(mp, 'f'))));
  const fh = await fs.open(join(mp, 'f'), 'r');
  // Stop the second brick's daemon (started by this cluster: its command line names the brick).
  const pids = await pidsUnder(bricks[1]);
  t.true(pids.length > 0, 'found the brick daemon');
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  const codes = new Set(['EIO', 'ENOTCONN']);
  const e1 = await t.throwsAsync(fs.readFile(join(mp, 'f')));
  t.true(codes.has((e1 as NodeJS.ErrnoException).code ?? ''), `read after open: ${(e1 as Error).message}`);
  const buf = Buffer.alloc(256 * K);
  const e2 = await t.throwsAsync(fh.read(buf, 0, buf.length, 128 * K));
  t.true(codes.has((e2 as NodeJS.ErrnoException).code ?? ''), `read on an fd opened before: ${(e2 as Error).message}`);
  await fh.close().catch(() => {});
});
