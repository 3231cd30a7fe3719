// The performance translators through a real mount: data written behind is on the brick once the
// file is closed or fsynced, a volume with performance.write-behind off still works, and nl-cache
// shows names other clients made.
import test from 'ava';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { Cluster, sh } from './harness.js';

const SUBNET = 80;

/** Ends a line of background jobs: fails if any of them failed. */
const WAIT_ALL = ' s=0; for j in $(jobs -p); do wait $j || s=1; done; exit $s';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The copy of name on whichever brick holds it. */
async function onBrick(bricks: string[], name: string): Promise<Buffer | null> {
  for (const b of bricks) {
    const data = await fs.readFile(join(b, name)).catch(() => null);
    if (data) return data;
  }
  return null;
}

async function volume(t: Parameters<typeof Cluster.start>[0], name: string) {
  const c = await Cluster.start(t, { nodes: 1, subnet: SUBNET });
  await c.volume(name, [[0, `${name}-b1`], [0, `${name}-b2`]]);
  return { c, bricks: [c.brick(0, `${name}-b1`), c.brick(0, `${name}-b2`)] };
}

test('small writes through write-behind are on the brick after close and after fsync', async (t) => {
  const { c, bricks } = await volume(t, 'wbon');
  const mp = await c.mount('wbon');
  const src = join(c.root, 'src.bin');
  await sh(`head -c 300001 /dev/urandom > ${src}`);
  const want = sha(await fs.readFile(src));
  // 1 KiB writes, closed by dd: the close (FLUSH) waits for everything written behind.
  const dd = await sh(`dd if=${src} of=${mp}/closed bs=1024 status=none`);
  t.is(dd.code, 0, dd.stderr);
  t.is(sha((await onBrick(bricks, 'closed'))!), want);
  t.is((await fs.stat(join(mp, 'closed'))).size, 300001);
  // fsync with the file still open: the brick has the data before the close.
  const py = [
    'import os, sys',
    `fd = os.open('${mp}/synced', os.O_WRONLY | os.O_CREAT, 0o644)`,
    'for i in range(200): os.write(fd, b"%05d" % i * 100)',
    'os.fsync(fd)',
    `sizes = [os.path.getsize(os.path.join(b, 'synced')) for b in sys.argv[1:] if os.path.exists(os.path.join(b, 'synced'))]`,
    'print(max(sizes))',
    'os.close(fd)',
  ].join('\n');
  const r = await sh(`python3 -c '${py.replace(/'/g, "'\\''")}' ${bricks.join(' ')}`);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), String(200 * 500));
  // Read back through the mount, and a write then read of the same range in one process.
  t.is(sha(await fs.readFile(join(mp, 'closed'))), want);
  const rw = await sh(`cd ${mp} && printf abcdef > rw && printf XY | dd of=rw bs=1 seek=2 conv=notrunc status=none && cat rw`);
  t.is(rw.stdout, 'abXYef');
});

test('1 MiB writes of four files at once on a replica (buffers reused from the bulk pool) land and read back unmixed', async (t) => {
  const c = await Cluster.start(t, { nodes: 1, subnet: SUBNET + 1 });
  await c.volume('bulk', [[0, 'bulk-b1'], [0, 'bulk-b2']], ['replica', '2']);
  const bricks = [c.brick(0, 'bulk-b1'), c.brick(0, 'bulk-b2')];
  const mp = await c.mount('bulk');
  const names = ['a', 'b', 'c', 'd'];
  // 24 MiB each, several times what the pools hold: buffers go round while the others' are in flight.
  await sh(names.map((n) => `head -c ${24 * 1024 * 1024 + 4097} /dev/urandom > ${c.root}/${n}.src`).join(' && '));
  const want = await Promise.all(names.map(async (n) => sha(await fs.readFile(join(c.root, `${n}.src`)))));
  const dd = await sh(names.map((n) => `dd if=${c.root}/${n}.src of=${mp}/${n} bs=1M conv=fsync status=none &`).join(' ') + WAIT_ALL);
  t.is(dd.code, 0, dd.stderr);
  for (const b of bricks) t.deepEqual(await Promise.all(names.map(async (n) => sha(await fs.readFile(join(b, n))))), want, b);
  // Read back cold, all at once: the bricks' read buffers go round too.
  await sh('sync; echo 3 > /proc/sys/vm/drop_caches');
  const back = await sh(names.map((n) => `(set -o pipefail; sha256sum < ${mp}/${n} | cut -d' ' -f1 > ${c.root}/${n}.sum) &`).join(' ') + WAIT_ALL);
  t.is(back.code, 0, back.stderr);
  t.deepEqual(await Promise.all(names.map(async (n) => (await fs.readFile(join(c.root, `${n}.sum`), 'utf8')).trim())), want);
});

test('a volume with performance.write-behind off still works, and on again', async (t) => {
  const { c, bricks } = await volume(t, 'wboff');
  const set = await c.gfs(['volume', 'set', 'wboff', 'performance.write-behind', 'off']);
  t.is(set.code, 0, set.stderr);
  const bad = await c.gfs(['volume', 'set', 'wboff', 'performance.write-behind', 'maybe']);
  t.not(bad.code, 0);
  const mp = await c.mount('wboff');
  const log = await fs.readFile(join(c.root, 'mount-wboff.log'), 'utf8').catch(() => '');
  t.false(/write-behind.*fail/i.test(log));
  const r = await sh(`cd ${mp} && for i in 1 2 3; do printf "line $i\\n" >> f; done && mkdir d && echo x > d/y && ls -l d >/dev/null && cat f`);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'line 1\nline 2\nline 3\n');
  t.is(String(await onBrick(bricks, 'f')), 'line 1\nline 2\nline 3\n');
  await c.unmount(mp);
  await c.mustGfs(['volume', 'set', 'wboff', 'performance.write-behind', 'on']);
  const mp2 = await c.mount('wboff');
  const again = await sh(`printf more >> ${mp2}/f && cat ${mp2}/f`);
  t.is(again.stdout, 'line 1\nline 2\nline 3\nmore');
  t.is(String(await onBrick(bricks, 'f')), 'line 1\nline 2\nline 3\nmore');
});

test('nl-cache: a name another client made shows within the timeout, and a volume with performance.nl-cache off works', async (t) => {
  const { c, bricks } = await volume(t, 'nlc');
  const a = await c.mount('nlc');
  const b = await c.mount('nlc', await c.mountpoint('nlc-b'));
  // Client a made d, so it knows d is empty: its lookups of missing names stay in the client.
  const made = await sh(`mkdir ${a}/d && for i in 1 2 3; do echo $i > ${a}/d/f$i; done && ls ${a}/d && test ! -e ${a}/d/x`);
  t.is(made.code, 0, made.stderr);
  t.is(made.stdout, 'f1\nf2\nf3\n');
  t.is(String(await onBrick(bricks, 'd/f2')), '2\n');
  // Made through another mount: the brick tells client a (upcall), which finds it after the
  // kernel's own entry timeout.
  t.is((await sh(`echo theirs > ${b}/d/x`)).code, 0);
  const start = Date.now();
  let seen = false;
  while (!seen && Date.now() - start < 15_000) {
    seen = (await sh(`cat ${a}/d/x`)).stdout === 'theirs\n';
    if (!seen) await new Promise((r) => setTimeout(r, 250));
  }
  t.true(seen, 'the other client\'s file shows');
  t.true(Date.now() - start < 10_000, `after ${Date.now() - start} ms`);
  await c.unmount(b);
  await c.unmount(a);
  const bad = await c.gfs(['volume', 'set', 'nlc', 'performance.nl-cache', 'maybe']);
  t.not(bad.code, 0);
  await c.mustGfs(['volume', 'set', 'nlc', 'performance.nl-cache', 'off']);
  const off = await c.mount('nlc');
  const r = await sh(`cd ${off} && mkdir e && touch e/1 e/2 && mv e/1 e/3 && rm e/2 && ls e && test ! -e e/1 && cat d/x`);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, '3\ntheirs\n');
});
