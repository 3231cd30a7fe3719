// Replicated and distributed-replicated volumes through real gfsd, brick daemons, self-heal
// daemons and FUSE mounts, with real kill -9 of brick daemons; checked on the bricks' trees.
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { Cluster, sh, waitFor } from './harness.js';

const SUBNET = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Entry { type: string; size: number; mode: number; sha?: string }

/** Every entry of a brick but .gfs/: type, size, mode and sha256 of files. */
async function tree(root: string): Promise<Record<string, Entry>> {
  const out: Record<string, Entry> = {};
  const walk = async (dir: string, rel: string) => {
    for (const name of (await fs.readdir(dir)).sort()) {
      if (!rel && name === '.gfs') continue;
      const p = join(dir, name);
      const st = await fs.lstat(p);
      const key = rel ? `${rel}/${name}` : name;
      const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file';
      out[key] = { type, size: type === 'dir' ? 0 : st.size, mode: st.mode & 0o7777 };
      if (type === 'file') out[key].sha = createHash('sha256').update(await fs.readFile(p)).digest('hex');
      if (type === 'dir') await walk(p, key);
    }
  };
  await walk(root, '');
  return out;
}

async function brickPid(c: Cluster, vol: string, brick: string): Promise<number> {
  const status = await c.mustGfs(['volume', 'status', vol]);
  const row = status.split('\n').find((l) => l.startsWith(`Brick ${brick}`));
  const pid = Number(row?.trim().split(/\s+/).pop());
  if (!(pid > 0)) throw new Error(`no pid for ${brick} in:\n${status}`);
  return pid;
}

async function healEntries(c: Cluster, vol: string): Promise<number> {
  const info = await c.mustGfs(['volume', 'heal', vol, 'info']);
  const counts = [...info.matchAll(/Number of entries: (\S+)/g)].map((m) => Number(m[1]));
  if (counts.some((n) => Number.isNaN(n))) return -1; // a brick not connected
  return counts.reduce((a, b) => a + b, 0);
}

async function replica2(t: Parameters<typeof Cluster.start>[0], name: string, options: Record<string, string> = {}) {
  const c = await Cluster.start(t, { nodes: 2, subnet: SUBNET });
  await c.probeAll();
  await c.mustGfs(['volume', 'create', name, 'replica', '2', c.brickSpec(0, 'brick1'), c.brickSpec(1, 'brick1'), 'force']);
  for (const [k, v] of Object.entries(options)) await c.mustGfs(['volume', 'set', name, k, v]);
  await c.mustGfs(['volume', 'start', name]);
  const mp = await c.mount(name);
  return { c, mp, bricks: [c.brick(0, 'brick1'), c.brick(1, 'brick1')], specs: [c.brickSpec(0, 'brick1'), c.brickSpec(1, 'brick1')] };
}

test('the seed replica walkthrough: every file on both bricks, byte-identical; 2 x 2 is distributed-replicated', async (t) => {
  const { c, mp, bricks } = await replica2(t, 'volume2');
  const info = await c.mustGfs(['volume', 'info', 'volume2']);
  t.regex(info, /Type: Replicate/);
  t.regex(info, /Number of Bricks: 1 x 2 = 2/);
  const status = await c.mustGfs(['volume', 'status', 'volume2']);
  t.regex(status, /Self-heal Daemon on \S+\s+N\/A\s+N\/A\s+Y\s+\d+/, status);
  const touch = await sh(`cd ${mp} && touch testfile{1..6} && head -c 300000 /dev/urandom > data.bin && mkdir -p d/e && echo hi > d/e/f`);
  t.is(touch.code, 0, touch.stderr);
  const [a, b] = [await tree(bricks[0]), await tree(bricks[1])];
  for (let i = 1; i <= 6; i++) t.truthy(a[`testfile${i}`] && b[`testfile${i}`], `testfile${i} on both bricks`);
  t.deepEqual(a, b);
  t.is(a['data.bin'].size, 300000);
  t.is(await healEntries(c, 'volume2'), 0);

  // Replica sets on one server need force; 2 x 2 in brick order.
  const same = await c.gfs(['volume', 'create', 'bad', 'replica', '2', c.brickSpec(0, 'x1'), c.brickSpec(0, 'x2')]);
  t.not(same.code, 0);
  t.regex(same.stderr, /Multiple bricks of a replicate volume are present on the same server/);
  await c.mustGfs(['volume', 'create', 'dr', 'replica', '2', c.brickSpec(0, 'r1'), c.brickSpec(1, 'r1'), c.brickSpec(0, 'r2'), c.brickSpec(1, 'r2'), 'force']);
  const dr = await c.mustGfs(['volume', 'info', 'dr']);
  t.regex(dr, /Type: Distributed-Replicate/);
  t.regex(dr, /Number of Bricks: 2 x 2 = 4/);
  await c.mustGfs(['volume', 'start', 'dr']);
  const mp2 = await c.mount('dr');
  t.is((await sh(`cd ${mp2} && for i in $(seq 1 40); do echo $i > f$i; done`)).code, 0);
  const [r1a, r1b, r2a, r2b] = [await tree(c.brick(0, 'r1')), await tree(c.brick(1, 'r1')), await tree(c.brick(0, 'r2')), await tree(c.brick(1, 'r2'))];
  t.deepEqual(r1a, r1b, 'set (r1, r1) identical');
  t.deepEqual(r2a, r2b, 'set (r2, r2) identical');
  const files = (x: Record<string, Entry>) => Object.keys(x).filter((k) => k.startsWith('f')).length;
  t.is(files(r1a) + files(r2a), 40, 'each file in exactly one set');
  t.true(files(r1a) > 0 && files(r2a) > 0);
});

test('kill -9 of a brick while writing: no error, heal after restart, identical trees, heal info 0', async (t) => {
  const { c, mp, bricks, specs } = await replica2(t, 'kill');
  const src = join(c.root, 'src');
  await fs.mkdir(src);
  for (let i = 0; i < 200; i++) await fs.writeFile(join(src, `f${i}`), randomBytes(1000 + i * 37));
  await fs.writeFile(join(mp, 'gone'), 'delete me while the brick is down');
  await fs.writeFile(join(mp, 'old-name'), 'rename me while the brick is down');
  await sh(`head -c 4000000 /dev/urandom > ${join(mp, 'big')}`);
  // The writer: 200 copies and appends to a large file, in its own process.
  const writer = sh(`set -e; mkdir -p ${mp}/copies; for i in $(seq 0 199); do cp ${src}/f$i ${mp}/copies/; head -c 65536 /dev/urandom >> ${mp}/big; done; echo done`, { timeoutMs: 240_000 });
  await waitFor('the writer to be under way', async () => (await fs.readdir(join(mp, 'copies')).catch(() => [])).length >= 30, 60_000);
  const pid = await brickPid(c, 'kill', specs[1]);
  process.kill(pid, 'SIGKILL');
  const w = await writer;
  t.is(w.code, 0, `writer failed: ${w.stderr}`);
  t.regex(w.stdout, /done/);
  // A delete and a rename while the brick is down.
  await fs.unlink(join(mp, 'gone'));
  await fs.rename(join(mp, 'old-name'), join(mp, 'new-name'));
  await fs.mkdir(join(mp, 'made-while-down'));
  await fs.writeFile(join(mp, 'made-while-down', 'inner'), 'inner data');
  t.true(await healEntries(c, 'kill') !== 0, 'heal info lists pending entries');

  const restarted = Date.now();
  await c.mustGfs(['volume', 'start', 'kill', 'force']);
  await waitFor('heal info to show 0 entries', async () => (await healEntries(c, 'kill')) === 0, 180_000);
  t.log(`heal after restart: ${(Date.now() - restarted) / 1000}s until heal info showed 0`);
  const [a, b] = [await tree(bricks[0]), await tree(bricks[1])];
  t.deepEqual(Object.keys(b), Object.keys(a), 'the same names');
  t.deepEqual(b, a, 'sizes, modes and sha256 identical');
  t.falsy(b.gone);
  t.falsy(b['old-name']);
  t.is(b['new-name']?.type, 'file');
  t.is(Object.keys(a).filter((k) => k.startsWith('copies/')).length, 200);
  t.is(a.big.size, 4000000 + 200 * 65536);
  // `heal` and `heal full` run and report as gluster does.
  t.regex(await c.mustGfs(['volume', 'heal', 'kill']), /Launching heal operation to perform index self heal on volume kill has been successful/);
  t.regex(await c.mustGfs(['volume', 'heal', 'kill', 'full']), /full self heal on volume kill has been successful/);
});

test('split-brain: EIO, heal info shows it, bigger-file, latest-mtime and source-brick resolve it', async (t) => {
  const off = { 'cluster.self-heal-daemon': 'off', 'cluster.data-self-heal': 'off', 'cluster.metadata-self-heal': 'off', 'cluster.entry-self-heal': 'off' };
  const { c, mp, bricks, specs } = await replica2(t, 'split', off);
  for (const f of ['big', 'new', 'src']) await fs.writeFile(join(mp, f), 'base');
  // Round 1: brick 2 down, write on brick 1 alone.
  process.kill(await brickPid(c, 'split', specs[1]), 'SIGKILL');
  await fs.writeFile(join(mp, 'big'), 'brick one, the bigger copy');
  await fs.writeFile(join(mp, 'new'), 'brick one, older');
  await fs.writeFile(join(mp, 'src'), 'brick one, chosen by source-brick');
  await c.mustGfs(['volume', 'start', 'split', 'force']);
  await sleep(4000); // the mount reconnects by itself
  // Round 2: brick 1 down, write on brick 2 alone.
  process.kill(await brickPid(c, 'split', specs[0]), 'SIGKILL');
  await sleep(1200);
  await fs.writeFile(join(mp, 'big'), 'brick two');
  await fs.writeFile(join(mp, 'new'), 'brick two, newer mtime');
  await fs.writeFile(join(mp, 'src'), 'brick two');
  await c.mustGfs(['volume', 'start', 'split', 'force']);
  await sleep(4000);

  const rd = await sh(`cat ${join(mp, 'big')}`);
  t.not(rd.code, 0);
  t.regex(rd.stderr, /Input\/output error/);
  const info = await c.mustGfs(['volume', 'heal', 'split', 'info']);
  t.regex(info, /\/big - Is in split-brain/);
  t.regex(info, /Status: Connected/);

  t.regex(await c.mustGfs(['volume', 'heal', 'split', 'split-brain', 'bigger-file', '/big']), /Healed \/big/);
  t.regex(await c.mustGfs(['volume', 'heal', 'split', 'split-brain', 'latest-mtime', '/new']), /Healed \/new/);
  t.regex(await c.mustGfs(['volume', 'heal', 'split', 'split-brain', 'source-brick', specs[0], '/src']), /Healed \/src/);
  for (const b of bricks) {
    t.is(await fs.readFile(join(b, 'big'), 'utf8'), 'brick one, the bigger copy');
    t.is(await fs.readFile(join(b, 'new'), 'utf8'), 'brick two, newer mtime');
    t.is(await fs.readFile(join(b, 'src'), 'utf8'), 'brick one, chosen by source-brick');
  }
  t.is((await sh(`cat ${join(mp, 'big')}`)).stdout, 'brick one, the bigger copy');
  t.is(await healEntries(c, 'split'), 0);
  const bad = await c.gfs(['volume', 'heal', 'split', 'split-brain', 'bigger-file', '/big']);
  t.not(bad.code, 0, 'not in split-brain any more');
});

test('replica 3: one brick down keeps writing; two down is EROFS and reads work', async (t) => {
  const c = await Cluster.start(t, { nodes: 3, subnet: SUBNET });
  await c.probeAll();
  await c.volume('r3', [[0, 'b'], [1, 'b'], [2, 'b']], ['replica', '3']);
  const mp = await c.mount('r3');
  await fs.writeFile(join(mp, 'f'), 'one');
  process.kill(await brickPid(c, 'r3', c.brickSpec(2, 'b')), 'SIGKILL');
  await fs.writeFile(join(mp, 'f'), 'two');
  t.is((await sh(`echo three > ${mp}/g`)).code, 0);
  process.kill(await brickPid(c, 'r3', c.brickSpec(1, 'b')), 'SIGKILL');
  const w = await sh(`echo four > ${mp}/f`);
  t.not(w.code, 0);
  t.regex(w.stderr, /Read-only file system/);
  const m = await sh(`mkdir ${mp}/dir`);
  t.regex(m.stderr, /Read-only file system/);
  t.is(await fs.readFile(join(mp, 'f'), 'utf8'), 'two');
  t.is(await fs.readFile(join(mp, 'g'), 'utf8'), 'three\n');
});

test('arbiter: the third brick holds zero-byte files with the right names and metadata', async (t) => {
  const c = await Cluster.start(t, { nodes: 3, subnet: SUBNET });
  await c.probeAll();
  await c.volume('arb', [[0, 'b'], [1, 'b'], [2, 'b']], ['replica', '3', 'arbiter', '1']);
  const info = await c.mustGfs(['volume', 'info', 'arb']);
  t.regex(info, /Number of Bricks: 1 x \(2 \+ 1\) = 3/);
  t.regex(info, /Brick3: .* \(arbiter\)/);
  const mp = await c.mount('arb');
  const r = await sh(`cd ${mp} && mkdir -p d && head -c 100000 /dev/urandom > d/data && echo small > s && chmod 640 s && ln -s s link`);
  t.is(r.code, 0, r.stderr);
  const [a, b, arb] = [await tree(c.brick(0, 'b')), await tree(c.brick(1, 'b')), await tree(c.brick(2, 'b'))];
  t.deepEqual(a, b);
  t.deepEqual(Object.keys(arb), Object.keys(a));
  t.is(arb['d/data'].size, 0);
  t.is(arb.s.size, 0);
  t.is(arb.s.mode, 0o640);
  t.is(arb.link.type, 'link');
  t.is(a['d/data'].size, 100000);
  t.is((await fs.stat(join(mp, 'd/data'))).size, 100000);
  t.is((await fs.readFile(join(mp, 's'), 'utf8')), 'small\n');
});

test('a file one client created and holds open unwritten: another client\'s writes to it go through, and both land on both bricks', async (t) => {
  const { c, mp, bricks } = await replica2(t, 'held');
  await fs.mkdir(`${mp}-2`);
  const mp2 = await c.mount('held', `${mp}-2`);
  t.teardown(() => c.unmount(mp2));
  // The create takes the lock its first write would need; no write comes from this client yet.
  const fh = await fs.open(join(mp, 'held'), 'w');
  const start = Date.now();
  await fs.appendFile(join(mp2, 'held'), 'from mount 2');
  t.log(`the other client's append took ${Date.now() - start} ms (post-op delay 1 s)`);
  await fh.write(Buffer.from('from mount 1'), 0, 12, 100);
  await fh.close();
  const want = Buffer.alloc(112);
  want.write('from mount 2');
  want.write('from mount 1', 100);
  const sha = createHash('sha256').update(want).digest('hex');
  await waitFor('heal info to show 0 entries', async () => (await healEntries(c, 'held')) === 0, 60_000);
  for (const b of bricks) t.is((await tree(b)).held?.sha, sha, `the bytes of both clients on ${b}`);
  t.deepEqual(await fs.readFile(join(mp2, 'held')), want);
});
