// gfs-provisioner end to end: a Heketi-compatible REST service over real gfsd nodes whose devices
// are directories and image files made here; bricks are loop-mounted XFS images carved by gfsd.
// Every loop mount and loop device a test made is undone in teardown, also when it fails.
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { makeToken } from '../provision/auth.js';
import { ProvisionerClient } from '../provision/client.js';
import { place, NoSpaceError } from '../provision/placement.js';
import { Cluster, freePort, isAlive, pidsUnder, REPO, run, sh, waitFor } from './harness.js';

const SUBNET = 70;
const PROV = join(REPO, 'dist/provision/main.js');
const PCLI = join(REPO, 'dist/provision/cli.js');
const KEYS = { admin: 'admin-secret', user: 'user-secret' };
const GiB = 1024 ** 3;

interface Prov { url: string; proc: ChildProcess; stderr: () => string; config: string }

/** Unmounts every file system under dir (deepest first) and detaches loop devices backed by files under roots. */
async function undoMounts(dirs: string[]): Promise<void> {
  const mounts = (await fs.readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' ')[1]).filter((m) => m && dirs.some((d) => m.startsWith(d)));
  for (const m of mounts.sort((a, b) => b.length - a.length)) {
    if ((await run('umount', [m])).code !== 0) await run('umount', ['-l', m]);
  }
  const loops = (await run('losetup', ['-a'])).stdout.split('\n').filter((l) => dirs.some((d) => l.includes(`(${d}`)));
  for (const l of loops) await run('losetup', ['-d', l.split(':')[0]]);
}

async function ourMounts(dirs: string[]): Promise<string[]> {
  return (await fs.readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => dirs.some((d) => l.split(' ')[1]?.startsWith(d)));
}

async function ourLoops(dirs: string[]): Promise<string[]> {
  return (await run('losetup', ['-a'])).stdout.split('\n').filter((l) => dirs.some((d) => l.includes(`(${d}`)));
}

/** A cluster of n gfsd nodes whose carved bricks mount under a root of this test's own. */
async function setup(t: ExecutionContext, nodes: number): Promise<{ c: Cluster; mountRoot: string; procs: ChildProcess[] }> {
  const mountRoot = await fs.mkdtemp('/tmp/gfs-prov-mounts-');
  process.env.GFS_BRICK_MOUNT_ROOT = mountRoot;
  const c = await Cluster.start(t, { nodes, subnet: SUBNET });
  const procs: ChildProcess[] = [];
  // Registered after the cluster's: ava runs teardowns last-in first-out, so this runs first.
  t.teardown(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    for (const mp of (await ourMounts([c.root])).map((l) => l.split(' ')[1]).reverse()) {
      if ((await run('fusermount', ['-uz', mp])).code !== 0) await run('umount', ['-l', mp]);
    }
    for (const pid of [...(await pidsUnder(mountRoot)), ...(await pidsUnder(c.root))]) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await waitFor('brick daemons to exit', async () => (await pidsUnder(mountRoot)).length === 0, 10_000).catch(() => {});
    await undoMounts([mountRoot, c.root]);
    if ((await ourMounts([mountRoot, c.root])).length === 0) await fs.rm(mountRoot, { recursive: true, force: true });
  });
  return { c, mountRoot, procs };
}

async function startProvisioner(c: Cluster, procs: ChildProcess[], opts: { env?: Record<string, string>; port?: number; glusterfs?: object } = {}): Promise<Prov> {
  const port = opts.port ?? (await freePort('127.0.0.1'));
  const config = join(c.root, 'provisioner.json');
  await fs.writeFile(config, JSON.stringify({
    host: '127.0.0.1', port, use_auth: true, jwt: { admin: { key: KEYS.admin }, user: { key: KEYS.user } },
    glusterfs: { executor: 'gfsd', db: join(c.root, 'provisioner.db'), gfsd_port: c.port, loglevel: 'debug', ...opts.glusterfs },
  }));
  let err = '';
  const proc = spawn(process.execPath, [PROV, '--config', config, '--log-file', join(c.root, 'provisioner.log')], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
  proc.stderr!.on('data', (d) => { err += String(d); });
  procs.push(proc);
  const url = `http://127.0.0.1:${port}`;
  await waitFor('gfs-provisioner', async () => (await fetch(`${url}/hello`).catch(() => undefined))?.ok);
  return { url, proc, stderr: () => err, config };
}

function cli(p: Prov, args: string[]) {
  return run(process.execPath, [PCLI, ...args], { env: { ...process.env, GFS_PROVISIONER_SERVER: p.url, GFS_PROVISIONER_USER: 'admin', GFS_PROVISIONER_KEY: KEYS.admin } });
}

async function mustCli(t: ExecutionContext, p: Prov, args: string[]): Promise<string> {
  const r = await cli(p, args);
  t.is(r.code, 0, `gfs-provisioner-cli ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function loadTopology(t: ExecutionContext, c: Cluster, p: Prov, devices: string[]): Promise<void> {
  const topo = { clusters: [{ nodes: c.nodes.map((n, i) => ({ node: { hostnames: { manage: [n.host], storage: [n.host] }, zone: i + 1 }, devices: [devices[i]] })) }] };
  const file = join(c.root, 'topology.json');
  await fs.writeFile(file, JSON.stringify(topo));
  const outText = await mustCli(t, p, ['topology', 'load', `--json=${file}`]);
  t.regex(outText, /Creating cluster \.\.\. ID: [0-9a-f]{32}/);
  t.is((outText.match(/Adding device .* OK/g) ?? []).length, c.nodes.length, outText);
}

async function dirDevices(c: Cluster): Promise<string[]> {
  const out = [];
  for (let i = 0; i < c.nodes.length; i++) {
    const d = join(c.root, `dev${i + 1}`);
    await fs.mkdir(d, { recursive: true });
    out.push(d);
  }
  return out;
}

const admin = (p: Prov) => new ProvisionerClient(p.url, 'admin', KEYS.admin, 100);
const field = (text: string, name: string) => new RegExp(`^${name.replace(/[+.]/g, '\\$&')}: (.*)$`, 'm').exec(text)?.[1] ?? '';

async function dfBytes(path: string): Promise<number> {
  const r = await sh(`df -B1 --output=size ${path} | tail -1`);
  return Number(r.stdout.trim());
}

async function checkClean(t: ExecutionContext, p: Prov): Promise<void> {
  const report = await admin(p).json('GET', '/db/check');
  t.true(report.ok, JSON.stringify(report.problems));
}

test('placement: sets on distinct nodes, zones spread, split past brick_max_size_gb, No space names what is short', (t) => {
  const G = 1024 * 1024;
  const devs = [
    { id: 'a1', node: 'A', zone: 1, free: 10 * G }, { id: 'a2', node: 'A', zone: 1, free: 10 * G },
    { id: 'b1', node: 'B', zone: 1, free: 5 * G }, { id: 'c1', node: 'C', zone: 2, free: 4 * G },
  ];
  const lim = { brickMinGb: 1, brickMaxGb: 1024, maxBricks: 33 };
  const r = place(devs, 2, 2, lim);
  t.is(r.sets.length, 1);
  const nodeOf = (id: string) => devs.find((d) => d.id === id)!.node;
  const zoneOf = (id: string) => devs.find((d) => d.id === id)!.zone;
  t.not(nodeOf(r.sets[0][0]), nodeOf(r.sets[0][1]));
  t.not(zoneOf(r.sets[0][0]), zoneOf(r.sets[0][1]), 'zones spread when possible');
  const split = place(devs, 4, 2, { ...lim, brickMaxGb: 1 });
  t.is(split.sets.length, 4);
  t.is(split.brickKiB, G);
  for (const s of split.sets) t.not(nodeOf(s[0]), nodeOf(s[1]));
  const e = t.throws(() => place(devs, 12, 3, lim), { instanceOf: NoSpaceError });
  t.regex(e!.message, /^No space: .*12 GiB volume/);
  t.regex(e!.message, /node\(s\) have a device with|free in all/);
});

test.serial('auth matrix: no token, wrong key, expired, wrong qsh, user on /clusters are 401 with reasons', async (t) => {
  const { c, procs } = await setup(t, 1);
  const p = await startProvisioner(c, procs, { glusterfs: { executor: 'mock' } });
  const get = async (path: string, auth?: string, method = 'GET') => {
    const r = await fetch(`${p.url}${path}`, { method, headers: auth ? { Authorization: auth } : {}, redirect: 'manual' });
    return { status: r.status, text: (await r.text()).trim() };
  };
  const now = Math.floor(Date.now() / 1000);
  t.deepEqual(await get('/hello'), { status: 200, text: 'Hello from gfs-provisioner' });
  t.deepEqual(await get('/clusters'), { status: 401, text: 'Required authorization token not found' });
  const wrongKey = await get('/clusters', `bearer ${await makeToken('admin', 'nope', 'GET', '/clusters')}`);
  t.is(wrongKey.status, 401);
  t.regex(wrongKey.text, /signature is invalid \(client and server secrets may not match\)/);
  const expired = await get('/clusters', `bearer ${await makeToken('admin', KEYS.admin, 'GET', '/clusters', { iat: now - 700, exp: now - 100 })}`);
  t.is(expired.status, 401);
  t.regex(expired.text, /expired/);
  const wrongQsh = await get('/clusters', `bearer ${await makeToken('admin', KEYS.admin, 'GET', '/volumes')}`);
  t.deepEqual(wrongQsh, { status: 401, text: 'Invalid qsh claim in token' });
  const userOnClusters = await get('/clusters', `bearer ${await makeToken('user', KEYS.user, 'GET', '/clusters')}`);
  t.deepEqual(userOnClusters, { status: 401, text: 'Administrator access required' });
  const userWithAdminKey = await get('/volumes', `bearer ${await makeToken('user', KEYS.admin, 'GET', '/volumes')}`);
  t.is(userWithAdminKey.status, 401);
  const garbage = await get('/clusters', 'bearer not.a.token');
  t.is(garbage.status, 401);
  t.regex(garbage.text, /^Invalid JWT token/);

  const adminOk = await get('/clusters', `bearer ${await makeToken('admin', KEYS.admin, 'GET', '/clusters')}`);
  t.deepEqual(adminOk, { status: 200, text: '{"clusters":[]}' });
  const userOk = await get('/volumes', `bearer ${await makeToken('user', KEYS.user, 'GET', '/volumes')}`);
  t.deepEqual(userOk, { status: 200, text: '{"volumes":[]}' });
  // The async pattern with the mock executor: 202 + Location, then 303 to the result.
  const a = admin(p);
  const cl = await a.json('POST', '/clusters', {});
  t.regex(cl.id, /^[0-9a-f]{32}$/);
  const node = await a.async('POST', '/nodes', { zone: 1, hostnames: { manage: ['10.9.9.1'], storage: ['10.9.9.1'] }, cluster: cl.id });
  t.is(node.cluster, cl.id);
  await a.async('POST', '/devices', { name: '/dev/sdx', node: node.id });
  const user = new ProvisionerClient(p.url, 'user', KEYS.user, 100);
  const created = await user.raw('POST', '/volumes', { size: 1 });
  t.is(created.status, 202);
  t.regex(created.headers.get('location') ?? '', /^\/queue\/[0-9a-f]{32}$/);
  const vol = await user.async('POST', '/volumes', { size: 2, durability: { type: 'none' } });
  t.is(vol.size, 2);
  t.regex(vol.name, /^vol_[0-9a-f]{32}$/);
  const cmds = await a.json('GET', '/internal/executor/commands');
  t.true(cmds.commands.some((x: string) => x.includes('mkfs.xfs -i size=512')), 'the mock records the commands');
  const del = await user.raw('DELETE', `/volumes/${vol.id}`);
  t.is(del.status, 202);
  await waitFor('delete to finish', async () => (await user.raw('GET', del.headers.get('location')!)).status === 204);
  const bad = await a.raw('POST', '/volumes', { size: 0 });
  t.deepEqual([bad.status, bad.text.trim()], [400, 'Invalid volume size']);
});

test.serial('volume create --size=1: a started volume on its own loop-mounted 1 GiB XFS; df, ENOSPC, delete frees it all', async (t) => {
  const { c, mountRoot, procs } = await setup(t, 2);
  const p = await startProvisioner(c, procs);
  await loadTopology(t, c, p, await dirDevices(c));
  t.regex(await mustCli(t, p, ['topology', 'info']), /Storage Hostnames: 127\.70\./);
  t.is((await mustCli(t, p, ['node', 'list'])).trim().split('\n').length, 2);
  t.regex(await mustCli(t, p, ['cluster', 'list']), /^Id:[0-9a-f]{32} \[file\]\[block\]$/m);

  const text = await mustCli(t, p, ['volume', 'create', '--size=1', '--replica=1']);
  t.is(field(text, 'Size'), '1');
  t.is(field(text, 'Durability Type'), 'none');
  t.is(field(text, 'Distributed+Replica'), '1');
  const id = field(text, 'Volume Id');
  const name = `vol_${id}`;
  t.regex(field(text, 'Mount'), new RegExp(`^127\\.70\\.\\d+\\.[12]:${c.port}:${name}$`));
  t.regex(field(text, 'Mount Options'), /^backup-volfile-servers=127\.70\./);
  t.regex(await mustCli(t, p, ['volume', 'list']), new RegExp(`^Id:${id}\\s+Cluster:[0-9a-f]{32}\\s+Name:${name}$`, 'm'));

  const info = await c.mustGfs(['volume', 'info', name]);
  t.regex(info, /Status: Started/);
  t.regex(info, /Number of Bricks: 1/);
  const vol = await admin(p).json('GET', `/volumes/${id}`);
  t.is(vol.bricks.length, 1);
  const brick = vol.bricks[0];
  t.true(brick.path.startsWith(join(mountRoot, `vg_${brick.device}`, `brick_${brick.id}`)), brick.path);
  const mountLine = (await ourMounts([mountRoot])).find((l) => l.split(' ')[1] === join(mountRoot, `vg_${brick.device}`, `brick_${brick.id}`));
  t.truthy(mountLine, 'the brick is a mount point');
  t.is(mountLine!.split(' ')[2], 'xfs');
  t.regex(mountLine!.split(' ')[0], /^\/dev\/loop\d+$/);
  const isize = await sh(`xfs_info ${join(mountRoot, `vg_${brick.device}`, `brick_${brick.id}`)} | grep -o 'isize=[0-9]*' | head -1`);
  t.is(isize.stdout.trim(), 'isize=512');
  const brickFs = await dfBytes(brick.path);
  t.true(brickFs > 0.9 * GiB && brickFs <= GiB, `brick file system is ${brickFs} bytes`);
  const dev = await admin(p).json('GET', `/devices/${brick.device}`);
  t.is(dev.storage.used, 1024 * 1024);
  t.is(dev.storage.free, dev.storage.total - 1024 * 1024);

  const mp = await c.mount(name);
  const mountFs = await dfBytes(mp);
  t.true(mountFs > 0.9 * GiB && mountFs <= GiB, `df on the mount shows ${mountFs} bytes`);
  await fs.writeFile(join(mp, 'small'), 'hello');
  const big = await sh(`dd if=/dev/zero of=${join(mp, 'big')} bs=1M count=1200 2>&1`, { timeoutMs: 600_000 });
  t.not(big.code, 0, 'writing past the size fails');
  t.regex(big.stdout, /No space left on device/);
  t.is(await fs.readFile(join(mp, 'small'), 'utf8'), 'hello', 'other files are unharmed');
  await fs.rm(join(mp, 'big'));
  await fs.writeFile(join(mp, 'after'), 'still works');
  t.is(await fs.readFile(join(brick.path, 'after'), 'utf8'), 'still works');
  await c.unmount(mp);
  await checkClean(t, p);

  t.regex(await mustCli(t, p, ['volume', 'delete', name]), new RegExp(`Volume ${id} deleted`));
  t.deepEqual(await ourMounts([mountRoot]), [], 'the brick is unmounted');
  t.deepEqual(await ourLoops([mountRoot, c.root]), [], 'the loop device is detached');
  t.deepEqual((await fs.readdir(join(c.root, 'dev1'))).concat(await fs.readdir(join(c.root, 'dev2'))), [], 'the images are removed');
  const after = await admin(p).json('GET', `/devices/${brick.device}`);
  t.is(after.storage.free, after.storage.total);
  t.is(after.storage.used, 0);
  t.notRegex((await c.mustGfs(['volume', 'list'])), new RegExp(name));
  await checkClean(t, p);
});

test.serial('three nodes with image-file devices: "No space" names what was short and leaves nothing behind', async (t) => {
  const { c, mountRoot, procs } = await setup(t, 3);
  const p = await startProvisioner(c, procs);
  const devices = [];
  for (let i = 0; i < 3; i++) {
    const img = join(c.root, `disk${i + 1}.img`);
    await fs.writeFile(img, '');
    await fs.truncate(img, 2 * GiB);
    devices.push(img);
  }
  await loadTopology(t, c, p, devices);
  const topo = await admin(p).json('GET', '/topology');
  const devs = topo.clusters[0].nodes.flatMap((n: any) => n.devices);
  t.is(devs.length, 3);
  for (const d of devs) t.true(d.storage.total > 1.8 * 1024 * 1024 && d.storage.total < 2 * 1024 * 1024, `device gives out ${d.storage.total} KiB`);
  t.is((await ourMounts([mountRoot])).filter((l) => l.includes('/dev_')).length, 3, 'each device is formatted and mounted once');

  const r = await cli(p, ['volume', 'create', '--size=6', '--replica=1']);
  t.is(r.code, 1);
  t.regex(r.stderr, /^Error: No space: cannot place \d+ x 1 brick\(s\) of [\d.]+ GiB for a 6 GiB volume: /);
  const r2 = await cli(p, ['volume', 'create', '--size=2', '--replica=3']);
  t.is(r2.code, 1);
  t.regex(r2.stderr, /^Error: No space: cannot place \d+ x 3 brick\(s\) of [\d.]+ GiB for a 2 GiB volume: [\d.]+ GiB free in all, 6 GiB needed/);
  t.deepEqual((await admin(p).json('GET', '/volumes')).volumes, []);
  t.is((await ourMounts([mountRoot])).filter((l) => l.includes('/vg_')).length, 0, 'no brick was carved');
  await checkClean(t, p);

  // What fits does fit: 3 GiB as two sets of 1.5 GiB on two devices.
  const ok = await mustCli(t, p, ['volume', 'create', '--size=3', '--replica=1', '--name=fits']);
  t.is(field(ok, 'Distribute Count'), '2');
  await checkClean(t, p);
  await mustCli(t, p, ['volume', 'delete', 'fits']);
  await checkClean(t, p);
});

test.serial('kill -9 in the middle of a create, then restart: db and nodes agree', async (t) => {
  const { c, mountRoot, procs } = await setup(t, 2);
  let p = await startProvisioner(c, procs, { env: { GFS_PROVISIONER_PAUSE_AT: 'carved' } });
  await loadTopology(t, c, p, await dirDevices(c));
  const port = Number(new URL(p.url).port);
  for (const step of ['carved', 'created']) {
    if (step !== 'carved') p = await startProvisioner(c, procs, { port, env: { GFS_PROVISIONER_PAUSE_AT: step } });
    const res = await admin(p).raw('POST', '/volumes', { size: 1, durability: { type: 'none' } });
    t.is(res.status, 202);
    await waitFor(`the create to reach ${step}`, async () => p.stderr().includes(`paused at ${step}`), 120_000);
    t.true((await ourMounts([mountRoot])).length >= 1, 'a brick was carved before the crash');
    if (step === 'created') t.regex(await c.mustGfs(['volume', 'list']), /vol_[0-9a-f]{32}/);
    const exited = new Promise((r) => p.proc.once('exit', r));
    p.proc.kill('SIGKILL');
    await exited;
    t.false(isAlive(p.proc.pid!));

    p = await startProvisioner(c, procs, { port });
    await checkClean(t, p);
    t.deepEqual((await admin(p).json('GET', '/volumes')).volumes, [], `${step}: the half-made volume is rolled back`);
    t.deepEqual(await ourMounts([mountRoot]), [], `${step}: no brick left mounted`);
    t.deepEqual(await ourLoops([mountRoot, c.root]), [], `${step}: no loop device left`);
    t.notRegex(await c.mustGfs(['volume', 'list']), /vol_/);
    const devs = (await admin(p).json('GET', '/topology')).clusters[0].nodes.flatMap((n: any) => n.devices);
    for (const d of devs) t.is(d.storage.free, d.storage.total);
    const kill = new Promise((r) => p.proc.once('exit', r));
    p.proc.kill('SIGTERM');
    await kill;
  }
  // And a create after recovery works.
  p = await startProvisioner(c, procs, { port });
  const v = await admin(p).async('POST', '/volumes', { size: 1, durability: { type: 'none' } });
  t.regex(v.name, /^vol_/);
  await checkClean(t, p);
});

test.serial('volume create --replica=2 --size=1: a Replicate 1 x 2 volume, one brick per node, each its own 1 GiB XFS', async (t) => {
  const { c, mountRoot, procs } = await setup(t, 2);
  const p = await startProvisioner(c, procs);
  await loadTopology(t, c, p, await dirDevices(c));
  const text = await mustCli(t, p, ['volume', 'create', '--name=volumeheketi', '--replica=2', '--size=1']);
  t.is(field(text, 'Durability Type'), 'replicate');
  t.is(field(text, 'Distributed+Replica'), '2');
  t.is(field(text, 'Name'), 'volumeheketi');
  const vol = await admin(p).json('GET', `/volumes/${field(text, 'Volume Id')}`);
  t.is(vol.bricks.length, 2);
  t.not(vol.bricks[0].node, vol.bricks[1].node, 'the two bricks of the set are on different nodes');
  const info = await c.mustGfs(['volume', 'info', 'volumeheketi']);
  t.regex(info, /Type: Replicate/);
  t.regex(info, /Number of Bricks: 1 x 2 = 2/);
  t.regex(info, /Status: Started/);
  for (const b of vol.bricks) {
    const size = await dfBytes(b.path);
    t.true(size > 0.9 * GiB && size <= GiB, `brick ${b.id}: ${size} bytes`);
  }
  t.is((await ourMounts([mountRoot])).filter((l) => l.split(' ')[2] === 'xfs').length, 2);
  const mp = await c.mount('volumeheketi');
  const mountFs = await dfBytes(mp);
  t.true(mountFs > 0.9 * GiB && mountFs <= GiB, `df on the mount shows ${mountFs} bytes`);
  await fs.writeFile(join(mp, 'both'), 'on both replicas');
  for (const b of vol.bricks) t.is(await fs.readFile(join(b.path, 'both'), 'utf8'), 'on both replicas');
  await c.unmount(mp);
  await checkClean(t, p);
  await mustCli(t, p, ['volume', 'delete', 'volumeheketi']);
  t.deepEqual(await ourMounts([mountRoot]), []);
  t.deepEqual(await ourLoops([mountRoot, c.root]), []);
  await checkClean(t, p);
});
