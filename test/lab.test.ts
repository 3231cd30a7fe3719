// Node failures in the network-namespace lab (scripts/netns-lab.ts): four "hosts", each its own
// network namespace with gfsd, bricks and self-heal daemon; the volume is mounted from a client
// namespace. A writer process keeps writing files through the mount during every fault; afterwards
// every file it finished must be on both replicas with the bytes it wrote (sha256 on each brick).
// Recovery times and bytes written are logged (t.log), never asserted against the clock.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NetnsLab, MGMT_PORT } from '../scripts/netns-lab.js';
import { waitFor } from './harness.js';

let lab: NetnsLab;

test.before(async () => {
  lab = await NetnsLab.start({ nodes: 4 });
  await lab.probeAll();
});
test.after.always(async () => {
  for (const c of liveWriters) c.kill('SIGKILL'); // a failed test never stopped its writer
  await lab?.teardown();
  if (!process.env.GFS_KEEP_TEST_DIRS) await lab?.removeRoot();
});

// The writer: files of 192 KiB in 64 KiB writes; content derived from the name so the test can
// recompute it. Prints one JSON line per finished file, stops when the stop file appears.
const WRITER = `
const fs = require('fs'), crypto = require('crypto'), path = require('path');
const [dir, tag, stop] = process.argv.slice(1);
const block = (name, i) => { const b = Buffer.alloc(65536); let h = crypto.createHash('sha256').update(name + ':' + i).digest(); for (let o = 0; o < b.length; o += 32) h.copy(b, o); return b; };
(async () => {
  for (let n = 0; !fs.existsSync(stop) && n < 100000; n++) {
    const name = tag + '-' + n, t0 = Date.now();
    try {
      const fh = await fs.promises.open(path.join(dir, name), 'w');
      for (let i = 0; i < 3; i++) await fh.write(block(name, i), 0, 65536, i * 65536);
      await fh.close();
      console.log(JSON.stringify({ name, bytes: 196608, t0, t1: Date.now() }));
    } catch (e) { console.log(JSON.stringify({ name, error: e.code || e.message, t0, t1: Date.now() })); }
  }
})();`;

let writers = 0;
const liveWriters = new Set<ChildProcess>();

interface Done { name: string; bytes?: number; error?: string; t0: number; t1: number }

function expected(name: string): string {
  const h = createHash('sha256');
  for (let i = 0; i < 3; i++) {
    const b = Buffer.alloc(65536);
    const d = createHash('sha256').update(`${name}:${i}`).digest();
    for (let o = 0; o < b.length; o += 32) d.copy(b, o);
    h.update(b);
  }
  return h.digest('hex');
}

/** Starts the writer on the mount; stop() resolves with every file it finished or failed. */
function writer(dir: string, tag: string): { stop(): Promise<Done[]>; done: Done[] } {
  const stopFile = join(lab.root, `stop-${++writers}`);
  const child = spawn(process.execPath, ['-e', WRITER, dir, tag, stopFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  const done: Done[] = [];
  let buf = '';
  child.stdout.on('data', (c: Buffer) => {
    buf += c.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) { done.push(JSON.parse(buf.slice(0, i))); buf = buf.slice(i + 1); }
  });
  liveWriters.add(child);
  const exited = new Promise((r) => child.once('exit', r));
  void exited.then(() => liveWriters.delete(child));
  return {
    done,
    async stop() {
      await writeFile(stopFile, '');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => { timer = setTimeout(r, 180_000); })]);
      clearTimeout(timer); // a pending timer would hold the test process for three minutes
      if (child.exitCode === null) child.kill('SIGKILL');
      return done;
    },
  };
}

/** Waits until the writer finishes a file that started after `since`; the time it took. */
async function writesFlowAfter(w: { done: Done[] }, since: number, limitMs = 120_000): Promise<number> {
  await waitFor('writes to go on', async () => w.done.some((d) => d.t0 >= since && !d.error), limitMs);
  return w.done.find((d) => d.t0 >= since && !d.error)!.t1 - since;
}

async function hashes(brick: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (rel === '' && e.name === '.gfs') continue;
      if (e.isDirectory()) await walk(join(d, e.name), `${rel}/${e.name}`);
      else if (e.isFile()) out.set(`${rel}/${e.name}`, createHash('sha256').update(await readFile(join(d, e.name))).digest('hex'));
    }
  };
  await walk(brick, '');
  return out;
}

/** Both bricks of each set hold the same files with the same bytes, and every file the writer
 * finished is there with what it wrote. Returns a reason when not (yet) so. */
async function level(sets: [string, string][], done: Done[]): Promise<string | undefined> {
  const onSets: Map<string, string>[] = [];
  for (const [a, b] of sets) {
    const [ha, hb] = [await hashes(a), await hashes(b)];
    for (const [f, h] of ha) if (hb.get(f) !== h) return `${f} differs between ${a} and ${b}`;
    for (const f of hb.keys()) if (!ha.has(f)) return `${f} only on ${b}`;
    onSets.push(ha);
  }
  for (const d of done.filter((x) => !x.error)) {
    const h = onSets.map((m) => m.get(`/${d.name}`)).find(Boolean);
    if (h !== expected(d.name)) return `${d.name}: ${h ? 'wrong bytes' : 'missing'}`;
  }
  return undefined;
}

async function leveled(sets: [string, string][], done: Done[], limitMs = 180_000): Promise<void> {
  let why: string | undefined;
  await waitFor('replicas to be level', async () => !(why = await level(sets, done)), limitMs).catch((e) => { throw new Error(`${e.message}: ${why}`); });
}

/** Runs `heal VOL full` until the sets are level; the last reason they were not when it times out. */
async function healFullUntilLevel(vol: string, sets: [string, string][], done: Done[]): Promise<string> {
  let why: string | undefined;
  let out = '';
  const runs: number[] = [];
  await waitFor('heal full', async () => {
    const t0 = Date.now();
    const r = await lab.gfs(['volume', 'heal', vol, 'full']);
    runs.push(Date.now() - t0);
    out = `${r.code} ${r.stdout.trim()} ${r.stderr.trim()}`;
    return !(why = await level(sets, done));
  }, 180_000).catch((e) => { throw new Error(`${e.message}: ${why} (last heal full said: ${out})`); });
  return `heal full ran ${runs.length} times (${runs.map((x) => `${x} ms`).join(', ')})`;
}

const MiB = (done: Done[]) => (done.filter((d) => !d.error).reduce((s, d) => s + (d.bytes ?? 0), 0) / 2 ** 20).toFixed(1);

/** A 2 x 2 volume over the four nodes: (n1, n2), (n3, n4). */
async function volume(name: string, opts: string[] = []): Promise<{ mp: string; sets: [string, string][] }> {
  await lab.mustGfs(['volume', 'create', name, 'replica', '2', ...[0, 1, 2, 3].map((i) => lab.brickSpec(i, name)), 'force']);
  for (const kv of opts) await lab.mustGfs(['volume', 'set', name, ...kv.split('=')]);
  await lab.mustGfs(['volume', 'start', name]);
  const mp = join(lab.root, 'mnt', name);
  await lab.mount(name, mp, [`backup-volfile-servers=${lab.nodes[1].addr}:${lab.nodes[2].addr}`, 'volfile-check-interval=2']);
  return { mp, sets: [[lab.brick(0, name), lab.brick(1, name)], [lab.brick(2, name), lab.brick(3, name)]] };
}

async function finish(name: string, mp: string): Promise<void> {
  await lab.unmount(mp);
  await lab.gfs(['volume', 'stop', name, 'force']);
}

test.serial('a node\'s link cut under a write load: writes go on after ping-timeout, heal levels both replicas', async (t) => {
  const { mp, sets } = await volume('cut', ['network.ping-timeout=5']);
  const w = writer(mp, 'w');
  await waitFor('first writes', async () => w.done.length >= 5, 60_000);
  const n1 = lab.nodes[0];
  t.true(await lab.reachable(lab.clientNs, n1.addr));
  const cut = Date.now();
  await lab.link(n1, false);
  t.false(await lab.reachable(lab.clientNs, n1.addr, MGMT_PORT, 1), 'from the client namespace, node1 is gone');
  const before = w.done.length;
  const resumed = await writesFlowAfter(w, cut + 1);
  await new Promise((r) => setTimeout(r, 4000));
  const duringBytes = MiB(w.done.slice(before));
  const back = Date.now();
  await lab.link(n1, true);
  await waitFor('node1 reachable again', () => lab.reachable(lab.clientNs, n1.addr), 30_000);
  const done = await w.stop();
  t.deepEqual(done.filter((d) => d.error), [], 'no write failed');
  await leveled(sets, done);
  const healed = Date.now() - back;
  t.log(`link cut: writes resumed ${resumed} ms after the cut (ping-timeout 5 s); ${duringBytes} MiB written while node1 was cut off; level ${healed} ms after the link came back; ${MiB(done)} MiB in ${done.length} files in all`);
  await finish('cut', mp);
});

test.serial('gfsd restarted on every node in turn while mounted and in use', async (t) => {
  const { mp, sets } = await volume('restart');
  const w = writer(mp, 'w');
  await waitFor('first writes', async () => w.done.length >= 3, 60_000);
  const bricksOf = async () => {
    const out: string[] = [];
    for (const n of lab.nodes) {
      for (const p of await lab.processesIn(n.ns)) {
        if (p.cmd.some((a) => a.endsWith('brickd/main.js'))) out.push(`${n.ns}:${p.pid}:${p.cmd[p.cmd.indexOf('--brick-path') + 1]}`);
        if (p.cmd.some((a) => a.endsWith('client/shd.js')) && p.cmd.includes('restart')) out.push(`${n.ns}:${p.pid}:shd-restart`);
      }
    }
    return out.filter((s) => s.includes('restart')).sort();
  };
  const procsBefore = await bricksOf();
  t.is(procsBefore.length, 8, 'four bricks and four self-heal daemons');
  const times: number[] = [];
  for (const n of lab.nodes) {
    const t0 = Date.now();
    await lab.stopGfsd(n);
    await lab.startGfsd(n);
    times.push(Date.now() - t0);
    const ok = w.done.length;
    await waitFor('writes go on', async () => w.done.length > ok, 60_000);
  }
  const done = await w.stop();
  t.deepEqual(done.filter((d) => d.error), []);
  t.deepEqual(await bricksOf(), procsBefore, 'the same brick and self-heal daemons, none orphaned or doubled');
  for (let i = 0; i < 4; i++) t.regex(await lab.mustGfs(['volume', 'info', 'restart'], i), /Status: Started[\s\S]*Number of Bricks: 2 x 2 = 4/);
  await leveled(sets, done);
  t.log(`gfsd restarts: ${times.map((x) => `${x} ms`).join(', ')} (stop + start + listening); ${MiB(done)} MiB in ${done.length} files written meanwhile, none failed`);
  await finish('restart', mp);
});

test.serial('a node powered off and back; then its disk replaced: reset-brick and replace-brick rebuild it', async (t) => {
  const { mp, sets } = await volume('power');
  const n2 = lab.nodes[1];
  let w = writer(mp, 'a');
  await waitFor('first writes', async () => w.done.length >= 5, 60_000);
  const off = Date.now();
  const killed = await lab.powerOff(n2);
  const resumed = await writesFlowAfter(w, off + 1);
  await new Promise((r) => setTimeout(r, 3000));
  await lab.startGfsd(n2);
  const on = Date.now();
  let done = await w.stop();
  t.deepEqual(done.filter((d) => d.error), []);
  await leveled(sets, done);
  t.log(`power off (${killed} processes killed): writes resumed after ${resumed} ms; level ${Date.now() - on} ms after gfsd was back; ${MiB(done)} MiB in ${done.length} files`);

  // The disk dies: node2 off, its brick directory empty when it comes back.
  const all = done.slice();
  w = writer(mp, 'b');
  await waitFor('writes', async () => w.done.length >= 3, 60_000);
  await lab.powerOff(n2);
  await rm(lab.brick(1, 'power'), { recursive: true, force: true });
  await mkdir(lab.brick(1, 'power'));
  await lab.startGfsd(n2);
  const src = lab.brickSpec(1, 'power');
  await lab.mustGfs(['volume', 'reset-brick', 'power', src, 'start']);
  await lab.mustGfs(['volume', 'reset-brick', 'power', src, src, 'commit', 'force']);
  const reset = Date.now();
  await lab.mustGfs(['volume', 'heal', 'power', 'full']);
  const first = Date.now() - reset;
  done = await w.stop();
  all.push(...done);
  t.deepEqual(done.filter((d) => d.error), []);
  const runs = await healFullUntilLevel('power', sets, all);
  t.log(`reset-brick on an emptied brick: level ${Date.now() - reset} ms after commit (the first heal full, while writing: ${first} ms; then ${runs}); ${MiB(done)} MiB written around the fault`);

  // replace-brick to a new directory (another disk) on node2, while the mount stays up.
  const dst = `${n2.addr}:${lab.brick(1, 'power-new')}`;
  w = writer(mp, 'c');
  await waitFor('writes', async () => w.done.length >= 3, 60_000);
  await lab.mustGfs(['volume', 'replace-brick', 'power', src, dst, 'commit', 'force'], 2);
  const replaced = Date.now();
  t.regex(await lab.mustGfs(['volume', 'info', 'power']), new RegExp(`Brick2: ${dst.replace(/[.]/g, '\\.')}`));
  await new Promise((r) => setTimeout(r, 3000));
  done = await w.stop();
  all.push(...done);
  t.deepEqual(done.filter((d) => d.error), []);
  const newSets: [string, string][] = [[lab.brick(0, 'power'), lab.brick(1, 'power-new')], sets[1]];
  const runs2 = await healFullUntilLevel('power', newSets, all);
  t.log(`replace-brick: new brick level ${Date.now() - replaced} ms after commit (${runs2}); ${MiB(done)} MiB written meanwhile; ${MiB(all)} MiB in ${all.length} files in all`);
  await finish('power', mp);
});

test.serial('the mount survives its volfile server going away; a brick restarted on a new port is found', async (t) => {
  const { mp, sets } = await volume('mgmt');
  const n1 = lab.nodes[0];
  const n3 = lab.nodes[2];
  const w = writer(mp, 'w');
  await waitFor('first writes', async () => w.done.length >= 3, 60_000);
  await lab.powerOff(n1); // the server the client mounted from: gfsd, its brick, its shd
  const gone = Date.now();
  const resumed = await writesFlowAfter(w, gone + 1);
  // n3's brick restarts; its old port is taken, so it comes back on another one.
  const st = JSON.parse(await lab.mustGfs(['--json', 'volume', 'status', 'mgmt'], 2)) as { volumes: { bricks: { host: string; port: number; pid: number }[] }[] };
  const b3 = st.volumes[0].bricks.find((b) => b.host === n3.addr)!;
  t.true(b3.port > 0 && b3.pid > 0);
  const blocker = spawn('nsenter', [`--net=/run/netns/${n3.ns}`, '--', process.execPath, '-e', `require('net').createServer().listen(${b3.port}, '${n3.addr}')`], { stdio: 'ignore' });
  try {
    process.kill(b3.pid, 'SIGKILL');
    await waitFor('the old brick port to be taken', async () => {
      const p = await lab.processesIn(n3.ns);
      return p.some((x) => x.pid === blocker.pid) && !p.some((x) => x.pid === b3.pid);
    }, 10_000);
    await new Promise((r) => setTimeout(r, 1000));
    const killedAt = Date.now();
    await lab.stopGfsd(n3); // its next start brings the missing brick back (volume start force would need node1)
    await lab.startGfsd(n3);
    const restarted = Date.now();
    const nb3 = await waitFor('node3\'s brick back online', async () => {
      const st2 = JSON.parse(await lab.mustGfs(['--json', 'volume', 'status', 'mgmt'], 2)) as typeof st;
      const b = st2.volumes[0].bricks.find((x) => x.host === n3.addr)!;
      return b.pid && b.port ? b : undefined;
    }, 60_000);
    t.not(nb3.port, b3.port, 'the brick came back on another port');
    const mountLog = () => readFile(join(lab.root, 'mount-mgmt.log'), 'utf8').then((x) => x.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { time: number; msg: string; brick?: string }));
    await waitFor('the mount to reconnect to node3\'s brick on its new port', async () =>
      (await mountLog()).some((l) => l.msg === 'brick connected' && l.time >= killedAt && l.brick?.startsWith(`${n3.addr}:`)), 60_000);
    const reconnected = (await mountLog()).find((l) => l.msg === 'brick connected' && l.time >= killedAt && l.brick?.startsWith(`${n3.addr}:`))!.time - killedAt;
    // A changed spec reaches the mount through a backup volfile server (node1's gfsd is gone).
    await lab.mustGfs(['volume', 'set', 'mgmt', 'network.ping-timeout', '7'], 1);
    const log = join(lab.root, 'mount-mgmt.log');
    await waitFor('the mount to load the changed spec', async () => /volume spec changed/.test(await readFile(log, 'utf8')), 60_000);
    await new Promise((r) => setTimeout(r, 3000));
    await lab.startGfsd(n1);
    const back = Date.now();
    const done = await w.stop();
    t.deepEqual(done.filter((d) => d.error), []);
    await leveled(sets, done);
    t.log(`volfile server gone: writes resumed after ${resumed} ms; brick of node3 back on port ${nb3.port} (was ${b3.port}), the mount reconnected to it ${reconnected} ms after node3's gfsd was told to restart; level ${Date.now() - back} ms after node1 returned (${Date.now() - restarted} ms after the brick restart); ${MiB(done)} MiB in ${done.length} files`);
  } finally {
    blocker.kill('SIGKILL');
  }
  await finish('mgmt', mp);
});
