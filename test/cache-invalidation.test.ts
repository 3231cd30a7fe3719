// Cache invalidation through real mounts: md-cache and nl-cache keep metadata for 600 s because
// the bricks tell each client what other clients changed of what it looked at (upcalls). Two
// mounts of one replicated volume: whatever one changes, the other sees within the kernel's own
// 1 s timeouts, long before the caches would have let go by themselves.
import test from 'ava';
import { Cluster, sh } from './harness.js';

const SUBNET = 110;

/** Runs `cmd` until it prints `want`, for at most 15 s (far below md-cache's 600 s). */
async function eventually(cmd: string, want: string): Promise<{ seen: boolean; last: string; ms: number }> {
  const start = Date.now();
  let last = '';
  while (Date.now() - start < 15_000) {
    last = (await sh(cmd)).stdout.trim();
    if (last === want) return { seen: true, last, ms: Date.now() - start };
    await new Promise((r) => setTimeout(r, 200));
  }
  return { seen: false, last, ms: Date.now() - start };
}

test('a change through one mount shows through another that had it cached: mode, size, data, names, removals, renames', async (t) => {
  const c = await Cluster.start(t, { nodes: 1, subnet: SUBNET });
  await c.volume('inval', [[0, 'inval-b1'], [0, 'inval-b2']], ['replica', '2']);
  const a = await c.mount('inval');
  const b = await c.mount('inval', await c.mountpoint('inval-b'));
  const made = await sh(`mkdir ${a}/d ${a}/d/sub && echo one > ${a}/d/f && chmod 644 ${a}/d/f && echo x > ${a}/d/sub/g`);
  t.is(made.code, 0, made.stderr);
  // a caches all of it: attributes, the listing (nl-cache knows d has no 'new'), the data.
  const warm = await sh(`ls -l ${a}/d >/dev/null && stat -c %a ${a}/d/f && cat ${a}/d/f && test ! -e ${a}/d/new && ls ${a}/d/sub`);
  t.is(warm.stdout, '644\none\ng\n', warm.stderr);

  t.is((await sh(`chmod 600 ${b}/d/f`)).code, 0);
  const mode = await eventually(`stat -c %a ${a}/d/f`, '600');
  t.true(mode.seen, `mode still ${mode.last}`);

  t.is((await sh(`echo longer-now > ${b}/d/f`)).code, 0);
  const data = await eventually(`cat ${a}/d/f`, 'longer-now');
  t.true(data.seen, `data still ${data.last}`);
  t.is((await sh(`stat -c %s ${a}/d/f`)).stdout.trim(), '11');

  t.is((await sh(`echo fresh > ${b}/d/new`)).code, 0);
  const name = await eventually(`cat ${a}/d/new 2>/dev/null`, 'fresh');
  t.true(name.seen, 'the name made through b shows through a');

  t.is((await sh(`rm ${b}/d/new`)).code, 0);
  const gone = await eventually(`test -e ${a}/d/new && echo there || echo gone`, 'gone');
  t.true(gone.seen, 'the name removed through b is gone through a');

  t.is((await sh(`mv ${b}/d/sub ${b}/d/moved`)).code, 0);
  const moved = await eventually(`cat ${a}/d/moved/g 2>/dev/null; test -e ${a}/d/sub || echo nosub`, 'x\nnosub');
  t.true(moved.seen, `after the rename: ${moved.last}`);
  t.log(`seen after (ms): mode ${mode.ms}, data ${data.ms}, new name ${name.ms}, removal ${gone.ms}, rename ${moved.ms}`);

  // The volume's options: the caches keep metadata long because of this; off, they keep it 1 s.
  await c.unmount(b);
  await c.unmount(a);
  const bad = await c.gfs(['volume', 'set', 'inval', 'performance.cache-invalidation', 'sometimes']);
  t.not(bad.code, 0);
  t.regex(bad.stderr + bad.stdout, /'sometimes' is not a boolean/);
  await c.mustGfs(['volume', 'set', 'inval', 'performance.cache-invalidation', 'off']);
  const a2 = await c.mount('inval');
  const b2 = await c.mount('inval', await c.mountpoint('inval-b'));
  t.is((await sh(`stat -c %a ${a2}/d/f`)).stdout.trim(), '600');
  t.is((await sh(`chmod 640 ${b2}/d/f`)).code, 0);
  const off = await eventually(`stat -c %a ${a2}/d/f`, '640');
  t.true(off.seen, 'without upcalls the change shows once md-cache\'s 1 s is over');
});
