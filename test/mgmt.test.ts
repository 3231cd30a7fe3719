// gfsd and the gfs CLI end to end: three real gfsd on 127.0.20.1-3, the CLI as a child process,
// real brick daemons. The tests share one cluster and run in order.
import test from 'ava';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { getAttributeSync, setAttributeSync } from '@napi-rs/xattr';
import { DATA_DAEMON_NODE_FLAGS } from '../common/node-flags.js';
import { CHANNEL_OPTIONS, mgmtService } from '../common/proto.js';
import { parseSpec } from '../common/spec.js';
import { clusterOf } from '../mgmt/volgen.js';
import { gfidFromBytes, gfidToBytes } from '../common/gfid.js';
import { alive, canConnect, Cluster, pidsWith, waitFor } from './mgmt-harness.js';

const XATTR = 'trusted.gfs.volume-id';
const c = new Cluster();
let n1: Cluster['nodes'][0], n2: Cluster['nodes'][0], n3: Cluster['nodes'][0];
const b1 = join(c.dir, 'bricks1', 'b1');
const b2 = join(c.dir, 'bricks2', 'b2');
let volumeId = '';

function xattr(path: string): string | undefined {
  try {
    const v = getAttributeSync(path, XATTR);
    return v && v.length ? gfidFromBytes(v) : undefined;
  } catch {
    return undefined;
  }
}

function rpc<T>(addr: string, method: string, req: object): Promise<T> {
  const client = new (mgmtService())(addr, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  return new Promise<T>((res, rej) => {
    (client as any)[method](req, { deadline: Date.now() + 5000 }, (err: unknown, r: T) => { client.close(); if (err) rej(err); else res(r); });
  });
}

function rpcError(addr: string, method: string, req: object): Promise<grpc.ServiceError> {
  return rpc(addr, method, req).then(() => { throw new Error(`${method} succeeded`); }, (e: grpc.ServiceError) => e);
}

interface StatusJson { volumes: { name: string; bricks: { host: string; path: string; port: number; online: boolean; pid: number }[] }[] }
async function status(): Promise<StatusJson['volumes'][0]['bricks']> {
  const r = await c.gfs(['--json', 'volume', 'status', 'v1']);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as StatusJson).volumes[0].bricks;
}

test.before(async () => {
  await c.init(['127.0.20.1', '127.0.20.2', '127.0.20.3']);
  [n1, n2, n3] = c.nodes;
});

test.after.always(async () => {
  await c.teardown();
});

test.serial('help and an unreachable gfsd', async (t) => {
  const h = await c.gfs(['--help']);
  t.is(h.code, 0);
  t.regex(h.stdout, /volume create <NEW-VOLNAME>/);
  const vh = await c.gfs(['volume', '--help']);
  t.is(vh.code, 0);
  t.regex(vh.stdout, /volume stop <VOLNAME> \[force\]/);
  t.notRegex(vh.stdout, /peer probe/);
  const down = await c.gfs(['volume', 'list'], { node: { ...n1, addr: `127.0.20.9:${c.port}` } });
  t.is(down.code, 1);
  t.is(down.stderr.trim(), 'Connection failed. Please check if gfsd is operational.');
});

test.serial('peer probe builds one pool that every member knows', async (t) => {
  const bad = await c.gfs(['peer', 'probe', `127.0.20.9:${c.port}`]);
  t.is(bad.code, 1);
  t.is(bad.stderr.trim(), 'peer probe: failed: Probe returned with Transport endpoint is not connected');

  const ok = await c.gfs(['peer', 'probe', n2.addr]);
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout.trim(), 'peer probe: success');
  const again = await c.gfs(['peer', 'probe', n2.addr]);
  t.is(again.stdout.trim(), `peer probe: success. Host 127.0.20.2 port ${c.port} already in peer list`);

  // n2 is in a pool now: n3 may not pull it into another one.
  const other = await c.gfs(['peer', 'probe', n2.addr], { node: n3 });
  t.is(other.code, 1);
  t.regex(other.stderr, /peer probe: failed: 127\.0\.20\.2 is either already part of another cluster/);

  t.is((await c.gfs(['peer', 'probe', n3.addr])).code, 0);
  for (const n of [n1, n2, n3]) {
    const st = await c.gfs(['peer', 'status'], { node: n });
    t.is(st.code, 0);
    t.regex(st.stdout, /^Number of Peers: 2\n/);
    t.is(st.stdout.match(/State: Peer in Cluster \(Connected\)/g)?.length, 2, st.stdout);
    t.false(st.stdout.includes(`Hostname: ${n.host}\n`));
  }
  const js = JSON.parse((await c.gfs(['--json', 'peer', 'status'], { node: n2 })).stdout);
  t.deepEqual(js.peers.map((p: { hostname: string }) => p.hostname).sort(), ['127.0.20.1', '127.0.20.3']);
  const pool = await c.gfs(['pool', 'list']);
  t.regex(pool.stdout, /^UUID\t+Hostname\s+State\n/);
  t.regex(pool.stdout, /\tlocalhost\s*\tConnected/);

  // n3 has no bricks: detach works, and every member forgets it.
  const det = await c.gfs(['--mode=script', 'peer', 'detach', '127.0.20.3']);
  t.is(det.code, 0, det.stderr);
  t.is(det.stdout.trim(), 'peer detach: success');
  t.regex((await c.gfs(['peer', 'status'], { node: n2 })).stdout, /^Number of Peers: 1\n/);
  t.regex((await c.gfs(['peer', 'status'], { node: n3 })).stdout, /^Number of Peers: 0\n/);
  t.is((await c.gfs(['peer', 'detach', '127.0.20.3', '--mode=script'])).stderr.trim(), 'peer detach: failed: 127.0.20.3 is not part of cluster');
});

async function nothingCreated(t: any, dirs: string[]) {
  for (const n of [n1, n2]) {
    const l = await c.gfs(['volume', 'list'], { node: n });
    t.is(l.stdout.trim(), 'No volumes present in cluster');
    t.deepEqual(readdirSync(join(n.workdir, 'vols')), []);
  }
  for (const d of dirs) t.false(existsSync(d), `${d} was created`);
}

test.serial('volume create refuses bad requests and leaves nothing behind', async (t) => {
  const x1 = join(c.dir, 'new', 'x1');
  const x2 = join(c.dir, 'new', 'x2');
  const h1 = `127.0.20.1:${x1}`, h2 = `127.0.20.2:${x2}`;
  const cases: [string[], RegExp][] = [
    [['-bad', h1, h2, 'force'], /^volume create: -bad: failed: Invalid volume name/],
    [['v1', h1, h2], /^volume create: v1: failed: The brick 127\.0\.20\.1:\S+ is being created in the root partition\. It is recommended that you don't use the system's root partition for storage backend\. Or use 'force' at the end of the command if you want to override this behavior\.$/],
    [['v1', h1, `127.0.20.9:${x2}`, 'force'], /^volume create: v1: failed: Host 127\.0\.20\.9 is not in 'Peer in Cluster' state$/],
    [['v1', h1, `127.0.20.3:${x2}`, 'force'], /^volume create: v1: failed: Host 127\.0\.20\.3 is not in 'Peer in Cluster' state$/],
    [['v1', h1, h1, 'force'], /^volume create: v1: failed: Found duplicate brick 127\.0\.20\.1:\S+ in the command$/],
    [['v1', h1, '127.0.20.2:relative/dir', 'force'], /^volume create: v1: failed: wrong brick type: 127\.0\.20\.2:relative\/dir, use <HOSTNAME>:<export-dir-abs-path>$/],
    [['v1', 'replica', '2', h1, h2, `127.0.20.1:${x1}c`, 'force'], /^volume create: v1: failed: number of bricks is not a multiple of replica count$/],
    [['v1', 'stripe', '3', h1, h2, 'force'], /^volume create: v1: failed: number of bricks provided \(2\) is not valid/],
    [['v1', 'replica', '2', h1, `127.0.20.1:${x1}d`], /^volume create: v1: failed: Multiple bricks of a replicate volume are present on the same server\. .*Use 'force' at the end of the command/],
    [['v1', 'stripe', '2', 'replica', '2', h1, h2, `127.0.20.1:${x1}c`, `127.0.20.2:${x2}c`, 'force'], /^volume create: v1: failed: striped-replicate volumes are not supported yet$/],
    [['v1', 'transport', 'rdma', h1, h2, 'force'], /^volume create: v1: failed: transport rdma is not supported/],
  ];
  for (const [args, re] of cases) {
    const r = await c.gfs(['volume', 'create', ...args]);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr.trim(), re);
    t.is(r.stdout, '');
  }
  // A brick dir marked by another volume, checked on the node that owns it.
  const marked = join(c.dir, 'marked');
  mkdirSync(marked);
  setAttributeSync(marked, XATTR, gfidToBytes('11111111-2222-3333-4444-555555555555'));
  const r = await c.gfs(['volume', 'create', 'v1', h1, `127.0.20.2:${marked}/sub`, 'force']);
  t.is(r.code, 1);
  t.is(r.stderr.trim(), `volume create: v1: failed: Staging failed on 127.0.20.2. Error: 127.0.20.2:${marked}/sub is already part of a volume`);
  // Staging passes but the commit fails on n2 (a file where a directory should be): n1's brick
  // directory, already made and marked, is removed again.
  const file = join(c.dir, 'afile');
  writeFileSync(file, 'x');
  const rb = await c.gfs(['volume', 'create', 'v1', h1, `127.0.20.2:${file}/sub`, 'force']);
  t.is(rb.code, 1);
  t.regex(rb.stderr.trim(), /^volume create: v1: failed: Commit failed on 127\.0\.20\.2\. Error: cannot prepare brick: .*(ENOTDIR|not a directory)/i);
  await nothingCreated(t, [join(c.dir, 'new'), `${marked}/sub`]);
  t.is(xattr(marked), '11111111-2222-3333-4444-555555555555');
});

test.serial('volume create across two nodes, info, set', async (t) => {
  const r = await c.gfs(['volume', 'create', 'v1', `127.0.20.1:${b1}`, `127.0.20.2:${b2}/`, 'force']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), 'volume create: v1: success: please start the volume to access data');
  const info = await c.gfs(['volume', 'info', 'v1'], { node: n2 });
  t.is(info.code, 0);
  const m = /^\nVolume Name: v1\nType: Distribute\nVolume ID: (\S+)\nStatus: Created\nSnapshot Count: 0\nNumber of Bricks: 2\nTransport-type: tcp\nBricks:\nBrick1: 127\.0\.20\.1:(\S+)\nBrick2: 127\.0\.20\.2:(\S+)\nOptions Reconfigured:\n$/.exec(info.stdout);
  t.truthy(m, info.stdout);
  volumeId = m![1];
  t.is(m![2], b1);
  t.is(m![3], b2);
  t.is(xattr(b1), volumeId);
  t.is(xattr(b2), volumeId);
  t.is((await c.gfs(['volume', 'list'], { node: n2 })).stdout.trim(), 'v1');

  const dup = await c.gfs(['volume', 'create', 'v1', `127.0.20.1:${b1}x`, 'force']);
  t.is(dup.stderr.trim(), 'volume create: v1: failed: Volume v1 already exists');
  const taken = await c.gfs(['volume', 'create', 'v2', `127.0.20.1:${b1}`, 'force']);
  t.is(taken.code, 1);
  t.is(taken.stderr.trim(), `volume create: v2: failed: 127.0.20.1:${b1} is already part of a volume`);
  t.false(existsSync(join(n1.workdir, 'vols', 'v2')));

  const set = await c.gfs(['volume', 'set', 'v1', 'network.ping-timeout', '10']);
  t.is(set.code, 0, set.stderr);
  t.is(set.stdout.trim(), 'volume set: success');
  const unk = await c.gfs(['volume', 'set', 'v1', 'no.such-key', '1']);
  t.is(unk.code, 1);
  t.is(unk.stderr.trim(), 'volume set: v1: failed: option : no.such-key does not exist');
  const badv = await c.gfs(['volume', 'set', 'v1', 'network.ping-timeout', 'abc']);
  t.is(badv.code, 1);
  t.regex(badv.stderr, /not an integer/);
  t.regex((await c.gfs(['volume', 'info'], { node: n2 })).stdout, /Options Reconfigured:\nnetwork\.ping-timeout: 10\n$/);
  const js = JSON.parse((await c.gfs(['--json', 'volume', 'info', 'v1'])).stdout);
  t.is(js.volumes[0].bricks.length, 2);
  t.is(js.volumes[0].type, 'Distribute');

  for (const [op, extra] of [['start', []], ['stop', ['--mode=script']], ['delete', ['--mode=script']], ['info', []], ['status', []]] as const) {
    const u = await c.gfs([...extra, 'volume', op, 'nosuch']);
    t.is(u.code, 1);
    t.is(u.stderr.trim(), `volume ${op}: nosuch: failed: Volume nosuch does not exist`);
  }
  const gs = await rpcError(n1.addr, 'GetSpec', { volume: 'v1' });
  t.is(gs.code, grpc.status.FAILED_PRECONDITION);
  t.is(gs.details, 'Volume v1 is not started');
  const gu = await rpcError(n1.addr, 'GetSpec', { volume: 'nosuch' });
  t.is(gu.code, grpc.status.NOT_FOUND);
  t.is(gu.details, 'Volume nosuch does not exist');
});

test.serial('volume start runs both bricks; GetSpec and Portmap', async (t) => {
  const r = await c.gfs(['volume', 'start', 'v1']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), 'volume start: v1: success');
  const again = await c.gfs(['volume', 'start', 'v1']);
  t.is(again.code, 1);
  t.is(again.stderr.trim(), 'volume start: v1: failed: Volume v1 already started');

  const text = await c.gfs(['volume', 'status', 'v1'], { node: n2 });
  t.regex(text.stdout, /^Status of volume: v1\nGfs process\s+TCP Port  RDMA Port  Online  Pid\n-{78}\n/);
  t.regex(text.stdout, /\nBrick 127\.0\.20\.1:\S+\s+4915\d\s+0\s+Y\s+\d+\n/);
  t.regex(text.stdout, /Task Status of Volume v1\n-{78}\nThere are no active volume tasks\n/);
  const bricks = await status();
  t.is(bricks.length, 2);
  for (const b of bricks) {
    t.true(b.online);
    t.true(alive(b.pid), `pid ${b.pid}`);
    t.true(await canConnect(b.host, b.port), `${b.host}:${b.port}`);
    t.true(b.port >= 49152);
    // Started with the data daemons' heap flags, before its program.
    const argv = readFileSync(`/proc/${b.pid}/cmdline`, 'utf8').split('\0');
    t.deepEqual(argv.slice(1, 1 + DATA_DAEMON_NODE_FLAGS.length), [...DATA_DAEMON_NODE_FLAGS]);
    t.regex(argv[1 + DATA_DAEMON_NODE_FLAGS.length], /brickd\/main\.js$/);
  }
  const spec = parseSpec((await rpc<{ spec_json: string }>(n2.addr, 'GetSpec', { volume: 'v1' })).spec_json);
  t.is(spec.volumeId, volumeId);
  t.is(spec.graph.type, 'performance/md-cache');
  const dht = clusterOf(spec.graph);
  t.is(dht.type, 'cluster/distribute');
  t.is(dht.name, 'v1-dht');
  t.deepEqual(dht.children!.map((x) => [x.name, x.type, x.options!['remote-host'], x.options!['remote-subvolume'], x.options!['remote-mgmt-port']]), [
    ['v1-client-0', 'protocol/client', '127.0.20.1', b1, c.port],
    ['v1-client-1', 'protocol/client', '127.0.20.2', b2, c.port],
  ]);
  t.is(dht.children![0].options!['ping-timeout'], 10);
  const pm = await rpc<{ port: number }>(n2.addr, 'Portmap', { brick_path: b2 });
  t.is(pm.port, bricks[1].port);
  const pmx = await rpcError(n1.addr, 'Portmap', { brick_path: b2 });
  t.is(pmx.code, grpc.status.NOT_FOUND);

  const det = await c.gfs(['--mode=script', 'peer', 'detach', '127.0.20.2']);
  t.is(det.code, 1);
  t.is(det.stderr.trim(), 'peer detach: failed: Brick(s) with the peer 127.0.20.2 exist in cluster');
  const del = await c.gfs(['--mode=script', 'volume', 'delete', 'v1']);
  t.is(del.code, 1);
  t.is(del.stderr.trim(), 'volume delete: v1: failed: Volume v1 has been started.Volume needs to be stopped before deletion.');
});

test.serial('a gfsd restart keeps the volume and adopts its bricks', async (t) => {
  const before = await status();
  t.is(await c.stop(n1), 0);
  t.true(before.every((b) => alive(b.pid)), 'bricks survive gfsd');
  await c.start(n1);
  const after = await status();
  t.deepEqual(after, before);
  t.deepEqual(pidsWith(`--brick-path\0${b1}\0`), [before[0].pid]);
  // n2 restarted too: while it is down, its brick shows offline and n1 changes an option;
  // back up, n2 fetches the newer definition and adopts its brick (still one daemon per brick).
  t.is(await c.stop(n2), 0);
  const partial = await status();
  t.deepEqual(partial.map((b) => b.online), [true, false]);
  t.regex((await c.gfs(['volume', 'status', 'v1'])).stdout, /Brick 127\.0\.20\.2:\S+\s+N\/A\s+N\/A\s+N\s+N\/A\n/);
  t.is((await c.gfs(['volume', 'set', 'v1', 'performance.cache-size', '64MB'])).code, 0);
  await c.start(n2);
  await waitFor('n2 to catch up', async () => /performance\.cache-size: 64MB/.test((await c.gfs(['volume', 'info', 'v1'], { node: n2 })).stdout));
  t.deepEqual(await status(), before);
  t.deepEqual(pidsWith(`--brick-path\0${b2}\0`), [before[1].pid]);
  t.regex((await c.gfs(['volume', 'info', 'v1'], { node: n2 })).stdout, /Status: Started/);
});

test.serial('volume stop asks, and stops the bricks', async (t) => {
  const pids = (await status()).map((b) => b.pid);
  const no = await c.gfs(['volume', 'stop', 'v1'], { input: 'n\n' });
  t.is(no.code, 1);
  t.is(no.stdout, 'Stopping volume will make its data inaccessible. Do you want to continue? (y/n) \n');
  t.is(no.stderr.trim(), 'volume stop: v1: aborted');
  const none = await c.gfs(['volume', 'stop', 'v1']);
  t.is(none.code, 1);
  t.true(pids.every(alive));
  const yes = await c.gfs(['volume', 'stop', 'v1'], { input: 'y\n' });
  t.is(yes.code, 0, yes.stderr);
  t.regex(yes.stdout, /\(y\/n\) volume stop: v1: success\n$/);
  t.true(pids.every((p) => !alive(p)), 'brick daemons gone');
  t.regex((await c.gfs(['volume', 'info', 'v1'], { node: n2 })).stdout, /Status: Stopped/);
  const again = await c.gfs(['--mode=script', 'volume', 'stop', 'v1']);
  t.is(again.code, 1);
  t.is(again.stderr.trim(), 'volume stop: v1: failed: Volume v1 is not in the started state');
  const st = await c.gfs(['volume', 'status', 'v1']);
  t.is(st.stderr.trim(), 'volume status: v1: failed: Volume v1 is not started');
  // Start and stop again in script mode.
  t.is((await c.gfs(['volume', 'start', 'v1'])).code, 0);
  const pids2 = (await status()).map((b) => b.pid);
  const s = await c.gfs(['--mode=script', 'volume', 'stop', 'v1']);
  t.is(s.stdout.trim(), 'volume stop: v1: success');
  t.true(pids2.every((p) => !alive(p)));
});

test.serial('volume delete removes the volume everywhere; the dirs can be reused', async (t) => {
  const no = await c.gfs(['volume', 'delete', 'v1'], { input: 'n\n' });
  t.is(no.code, 1);
  t.regex(no.stdout, /^Deleting volume will erase all information about the volume\. Do you want to continue\? \(y\/n\) /);
  const r = await c.gfs(['--mode=script', 'volume', 'delete', 'v1']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout.trim(), 'volume delete: v1: success');
  for (const n of [n1, n2]) {
    t.is((await c.gfs(['volume', 'list'], { node: n })).stdout.trim(), 'No volumes present in cluster');
    t.is((await c.gfs(['volume', 'info'], { node: n })).stdout.trim(), 'No volumes present');
    t.false(existsSync(join(n.workdir, 'vols', 'v1')));
  }
  t.true(existsSync(b1) && existsSync(b2));
  t.is(xattr(b1), undefined);
  t.is(xattr(b2), undefined);
  const again = await c.gfs(['volume', 'create', 'v3', `127.0.20.1:${b1}`, `127.0.20.2:${b2}`, 'force']);
  t.is(again.code, 0, again.stderr);
  t.is((await c.gfs(['--yes', 'volume', 'delete', 'v3'])).code, 0);
  t.is(xattr(b1), undefined);
});
