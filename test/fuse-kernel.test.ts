// The kernel-protocol FUSE bridge through real gfsd, brick daemons and mounts: the caller's
// ownership on the mount and the bricks, deep paths, nanosecond times, flock and fcntl locks
// between processes, both bridges serving the same volume, and ACLs and labels only when mounted
// with them (-o acl, -o selinux), as GlusterFS's fuse-bridge.
import test from 'ava';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { Cluster, sh, waitFor, type RunResult } from './harness.js';

const SUBNET = 40;
const NOBODY = 65534;
const ENOTSUP = 95;

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A command as uid/gid 65534 with no supplementary groups. */
function asNobody(cmd: string): Promise<RunResult> {
  return sh(`setpriv --reuid ${NOBODY} --regid ${NOBODY} --clear-groups bash -c ${q(cmd)}`);
}

async function volume(t: Parameters<typeof Cluster.start>[0], name: string, extra: string[] = []) {
  const c = await Cluster.start(t, { nodes: 1, subnet: SUBNET });
  await c.volume(name, [[0, 'b1'], [0, 'b2']]);
  await fs.chmod(c.root, 0o755); // let uid 65534 reach the mount point
  const mp = await c.mount(name, undefined, extra);
  await fs.chmod(join(c.root, 'mnt'), 0o755);
  return { c, mp, bricks: [c.brick(0, 'b1'), c.brick(0, 'b2')] };
}

async function onBricks(bricks: string[], rel: string) {
  const out = [];
  for (const b of bricks) {
    const st = await fs.lstat(join(b, rel)).catch(() => null);
    if (st && !(st.isFile() && (st.mode & 0o7777) === 0o1000 && st.size === 0)) out.push(st);
  }
  return out;
}

test('files, directories and symlinks are owned by the caller, on the mount and the bricks', async (t) => {
  const { mp, bricks } = await volume(t, 'owners');
  t.is((await sh(`mkdir ${mp}/pub && chmod 1777 ${mp}/pub && echo root > ${mp}/pub/rootfile`)).code, 0);
  const r = await asNobody(`cd ${mp}/pub && echo hi > f && mkdir d && ln -s f l && id -u`);
  t.is(r.code, 0, r.stderr);
  for (const name of ['f', 'd', 'l']) {
    const st = await fs.lstat(join(mp, 'pub', name));
    t.is(st.uid, NOBODY, `${name} uid on the mount`);
    t.is(st.gid, NOBODY, `${name} gid on the mount`);
    const onB = await onBricks(bricks, join('pub', name));
    t.is(onB.length, name === 'd' ? 2 : 1, `${name} on the bricks`);
    for (const b of onB) t.deepEqual([b.uid, b.gid], [NOBODY, NOBODY], `${name} owner on the brick`);
  }
  t.true((await fs.lstat(join(mp, 'pub', 'l'))).isSymbolicLink());
  t.is(await fs.readFile(join(mp, 'pub', 'f'), 'utf8'), 'hi\n');
  const chmod = await asNobody(`chmod 777 ${mp}/pub/rootfile`);
  t.not(chmod.code, 0);
  t.regex(chmod.stderr, /Operation not permitted/);
  t.is((await fs.stat(join(mp, 'pub', 'rootfile'))).mode & 0o777, 0o644);
  // And the user cannot remove another's file from a sticky directory.
  t.not((await asNobody(`rm -f ${mp}/pub/rootfile`)).code, 0);
});

test('a path of 4,000 bytes is created and read', async (t) => {
  const { mp, bricks } = await volume(t, 'deep');
  const dirs = Array.from({ length: 19 }, (_, i) => `${String(i).padStart(2, '0')}${'d'.repeat(198)}`);
  const rel = `/${dirs.join('/')}/${'f'.repeat(180)}`;
  t.is(Buffer.byteLength(rel), 4000);
  const full = `${mp}${rel}`;
  const mk = await sh(`mkdir -p ${q(join(mp, ...dirs))} && echo deep > ${q(full)}`);
  t.is(mk.code, 0, mk.stderr);
  const cat = await sh(`cat ${q(full)}`);
  t.is(cat.stdout, 'deep\n', cat.stderr);
  t.is((await onBricks(bricks, rel)).length, 1, 'the file sits on one brick');
  t.is((await onBricks(bricks, `/${dirs.join('/')}`)).length, 2, 'its directory on both');
});

test('touch -m -d sets only mtime, to the nanosecond', async (t) => {
  const { mp, bricks } = await volume(t, 'times');
  const f = join(mp, 'f');
  t.is((await sh(`touch ${f}`)).code, 0);
  const before = await fs.stat(f, { bigint: true });
  const r = await sh(`touch -m -d @1234567890.123456789 ${f}`);
  t.is(r.code, 0, r.stderr);
  const after = await fs.stat(f, { bigint: true });
  t.is(after.mtimeNs, 1234567890123456789n);
  t.is(after.atimeNs, before.atimeNs, 'atime unchanged');
  const brickStat = await Promise.any(bricks.map((x) => fs.lstat(join(x, 'f'), { bigint: true })));
  t.is(brickStat.mtimeNs, 1234567890123456789n, 'on the brick');
  t.is(brickStat.atimeNs, before.atimeNs, 'brick atime unchanged');
  t.is((await sh(`stat -c %.9Y ${f}`)).stdout.trim(), '1234567890.123456789');
});

/** Starts a background command; resolves with its exit code when it ends. */
function background(cmd: string): { done: Promise<number>; exited: () => boolean } {
  const child = spawn('bash', ['-c', cmd], { stdio: 'ignore' });
  let over = false;
  const done = new Promise<number>((r) => child.on('exit', (code) => { over = true; r(code ?? 1); }));
  return { done, exited: () => over };
}

const exists = (p: string) => fs.access(p).then(() => true, () => false);

test('flock(1): two processes exclude each other; a release lets the waiter in', async (t) => {
  const { c, mp } = await volume(t, 'flocks');
  const f = join(mp, 'lockfile');
  t.is((await sh(`touch ${f}`)).code, 0);
  const ready = join(c.root, 'flock-ready');
  const release = join(c.root, 'flock-release');
  const holder = background(`exec flock -x ${f} bash -c 'touch ${ready}; while [ ! -e ${release} ]; do sleep 0.05; done'`);
  await waitFor('the holder to lock', () => exists(ready));
  const nb = await sh(`flock -n -x ${f} true`);
  t.is(nb.code, 1, 'a second exclusive flock fails while held');
  const shared = await sh(`flock -n -s ${f} true`);
  t.is(shared.code, 1, 'a shared flock fails too');
  const waiter = background(`flock -x ${f} true`);
  t.false(waiter.exited(), 'the waiter waits');
  // POSIX locks are another kind: an fcntl lock on the same file is not blocked by a flock.
  const posix = await sh(`python3 -c ${q(`import fcntl; f = open(${JSON.stringify(f)}, 'r+'); fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print('ok')`)}`);
  t.is(posix.stdout.trim(), 'ok', posix.stderr);
  await fs.writeFile(release, '');
  t.is(await holder.done, 0);
  t.is(await waiter.done, 0, 'the waiter got the lock after the release');
  t.is((await sh(`flock -n -x ${f} true`)).code, 0, 'free again');
});

const LOCKF = `
import fcntl, os, sys, time
path, mode = sys.argv[1], sys.argv[2]
f = open(path, 'r+')
if mode == 'hold':
    fcntl.lockf(f, fcntl.LOCK_EX, 10, 0)
    open(sys.argv[3], 'w').close()
    while not os.path.exists(sys.argv[4]):
        time.sleep(0.05)
elif mode == 'try':
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)
        print('got')
    except OSError as e:
        print('busy')
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 20)
        print('other range free')
    except OSError:
        print('other range busy')
else:
    fcntl.lockf(f, fcntl.LOCK_EX, 10, 0)
    print('got')
`;

test('fcntl locks: two processes exclude each other on a range; a release lets the waiter in', async (t) => {
  const { c, mp } = await volume(t, 'fcntl');
  const f = join(mp, 'data');
  const script = join(c.root, 'lockf.py');
  await fs.writeFile(script, LOCKF);
  t.is((await sh(`echo 0123456789abcdefghijklmnopqrstuvwxyz > ${f}`)).code, 0);
  const ready = join(c.root, 'lk-ready');
  const release = join(c.root, 'lk-release');
  const holder = background(`python3 ${script} ${f} hold ${ready} ${release}`);
  await waitFor('the holder to lock', () => exists(ready));
  const tryIt = await sh(`python3 ${script} ${f} try`);
  t.is(tryIt.stdout, 'busy\nother range free\n', tryIt.stderr);
  const out: string[] = [];
  const waiter = spawn('python3', [script, f, 'wait'], { stdio: ['ignore', 'pipe', 'pipe'] });
  waiter.stdout.on('data', (d) => out.push(String(d)));
  const waited = new Promise<number>((r) => waiter.on('exit', (code) => r(code ?? 1)));
  t.deepEqual(out, [], 'the waiter waits');
  await fs.writeFile(release, '');
  t.is(await holder.done, 0);
  t.is(await waited, 0);
  t.is(out.join(''), 'got\n', 'the waiter got the lock once the holder exited');
});

test.serial('where the event loop cannot poll /dev/fuse, thread-pool reads serve the mount just as well', async (t) => {
  process.env.GFS_FUSE_POOL_READS = '1'; // serial: no other test's mount starts meanwhile
  let v: Awaited<ReturnType<typeof volume>>;
  try {
    v = await volume(t, 'poolreads');
  } finally {
    delete process.env.GFS_FUSE_POOL_READS;
  }
  const { c, mp } = v;
  const data = Buffer.alloc(3 * 1024 * 1024 + 17, 'pool');
  await fs.writeFile(join(mp, 'big'), data);
  await Promise.all(Array.from({ length: 50 }, (_, i) => fs.writeFile(join(mp, `f${i}`), `${i}`)));
  t.true((await fs.readFile(join(mp, 'big'))).equals(data));
  t.is((await fs.readdir(mp)).length, 51);
  t.is(String(await fs.readFile(join(mp, 'f49'))), '49');
  t.regex(await fs.readFile(join(c.root, 'mount-poolreads.log'), 'utf8'), /"reads":"thread pool"/);
});

test('both bridges serve the same volume: write through one, read through the other', async (t) => {
  const { c, mp } = await volume(t, 'bridges');
  const other = await c.mount('bridges', await c.mountpoint('bridges-fn'), ['-o', 'bridge=fuse-native']);
  const mounts = (await fs.readFile('/proc/mounts', 'utf8')).split('\n');
  t.true(mounts.some((l) => l.split(' ')[1] === mp && l.split(' ')[2] === 'fuse.gfs'), 'kernel bridge mounted as fuse.gfs');
  t.true(mounts.some((l) => l.split(' ')[1] === other), 'fuse-native mounted');
  const data = Buffer.alloc(3 * 1024 * 1024 + 17, 'gfs');
  await fs.writeFile(join(mp, 'k'), data);
  await fs.writeFile(join(other, 'n'), data);
  t.true((await fs.readFile(join(other, 'k'))).equals(data), 'kernel -> fuse-native');
  t.true((await fs.readFile(join(mp, 'n'))).equals(data), 'fuse-native -> kernel');
  t.deepEqual((await fs.readdir(mp)).sort(), ['k', 'n']);
  const rw = await sh(`cd ${mp} && mkdir d && mv k d/k2 && ls d && rm d/k2 && rmdir d && ls`);
  t.is(rw.stdout, 'k2\nn\n', rw.stderr);
  t.is(await getxattrErrno(join(other, 'n'), 'system.posix_acl_access'), ENOTSUP, 'fuse-native too: no ACLs without -o acl');
  // umount ends the kernel bridge's daemon cleanly.
  t.is((await sh(`umount ${mp}`)).code, 0);
  await waitFor('the mount to go', async () => !(await fs.readFile('/proc/mounts', 'utf8')).includes(` ${mp} `));
  const log = await fs.readFile(join(c.root, 'mount-bridges.log'), 'utf8');
  await waitFor('the daemon to log its exit', async () => (await fs.readFile(join(c.root, 'mount-bridges.log'), 'utf8')).includes('closed the FUSE device'));
  t.regex(log, /FUSE INIT/);
  t.regex(log, /"reads":"event loop"/, 'the event loop polls /dev/fuse (no thread-pool read per request)');
});


/** The errno of getxattr(path, name) as python sees it, 0 when it has a value. */
async function getxattrErrno(path: string, name: string): Promise<number> {
  const r = await sh(`python3 -c ${q(`import os,sys\ntry: os.getxattr(sys.argv[1], sys.argv[2]); print(0)\nexcept OSError as e: print(e.errno)`)} ${q(path)} ${name}`);
  return Number(r.stdout.trim());
}

test('an unprivileged write, truncate or truncating open clears set-id bits, as on a local disk; root keeps them', async (t) => {
  // The kernel leaves this to us (FUSE_HANDLE_KILLPRIV_V2), so it sends no getxattr before each write.
  const { mp, bricks } = await volume(t, 'setid');
  const mode = async (f: string) => ((await fs.stat(join(mp, f))).mode & 0o7777).toString(8);
  const cases: [string, number, string, string][] = [
    ['w-suid', 0o4777, `echo x >> ${mp}/w-suid`, '777'],
    ['w-sgid', 0o2777, `echo x >> ${mp}/w-sgid`, '777'],
    ['w-sgid-nogx', 0o2767, `echo x >> ${mp}/w-sgid-nogx`, '2767'], // set-gid without group execute stays
    ['trunc', 0o6777, `truncate -s 0 ${mp}/trunc`, '777'],
    ['otrunc', 0o4777, `: > ${mp}/otrunc`, '777'],
  ];
  for (const [f, m, cmd, want] of cases) {
    await fs.writeFile(join(mp, f), 'data\n');
    await fs.chmod(join(mp, f), m);
    const r = await asNobody(cmd);
    t.is(r.code, 0, `${f}: ${r.stderr}`);
    t.is(await mode(f), want, f);
  }
  await fs.writeFile(join(mp, 'root'), 'data\n');
  await fs.chmod(join(mp, 'root'), 0o4755);
  await fs.appendFile(join(mp, 'root'), 'more\n');
  t.is(await mode('root'), '4755', 'a privileged writer keeps them');
  const held = (await onBricks(bricks, 'w-suid'))[0];
  t.is((held.mode & 0o7777).toString(8), '777', 'cleared on the brick too');
});

test('without -o acl and -o selinux: ACLs and labels are "not supported", so ls -l asks once, not per file', async (t) => {
  const { mp } = await volume(t, 'noacl');
  t.is((await sh(`mkdir ${mp}/d && cd ${mp}/d && for i in $(seq 50); do : > f$i; done && echo secret > ${mp}/s && chmod 600 ${mp}/s`)).code, 0);
  const set = await sh(`setfacl -m u:nobody:r ${mp}/s`);
  t.not(set.code, 0);
  t.regex(set.stderr, /Operation not supported/);
  t.is(await getxattrErrno(`${mp}/s`, 'system.posix_acl_access'), ENOTSUP);
  t.is(await getxattrErrno(`${mp}/s`, 'security.selinux'), ENOTSUP);
  t.is(await getxattrErrno(`${mp}/s`, 'security.capability'), 61, 'other security names are as before: ENODATA');
  t.not((await sh(`setfattr -n security.selinux -v x ${mp}/s`)).code, 0);
  t.is((await sh(`setfattr -n user.kept -v yes ${mp}/s && getfattr --only-values -n user.kept ${mp}/s`)).stdout, 'yes');
  // coreutils stops asking a device that said "not supported": 50 files, one ask of each kind.
  const trace = await sh(`strace -f -e trace=getxattr,lgetxattr -o /dev/stdout ls -l ${mp}/d >/dev/null`);
  t.is(trace.code, 0, trace.stderr);
  const asks = trace.stdout.split('\n').filter((l) => /getxattr\(/.test(l));
  t.true(asks.length <= 4, `${asks.length} getxattr calls by ls -l of 50 files:\n${asks.slice(0, 6).join('\n')}`);
  t.not((await asNobody(`cat ${mp}/s`)).code, 0, 'mode 600 keeps nobody out');
});

test('-o acl: setfacl grants access the kernel enforces; getfacl shows it; the ACL is on the brick', async (t) => {
  const { mp, bricks } = await volume(t, 'withacl', ['-o', 'acl']);
  t.is((await sh(`echo secret > ${mp}/s && chmod 600 ${mp}/s`)).code, 0);
  t.not((await asNobody(`cat ${mp}/s`)).code, 0, 'no access before the ACL');
  const set = await sh(`setfacl -m u:nobody:r ${mp}/s`);
  t.is(set.code, 0, set.stderr);
  t.regex((await sh(`getfacl -c ${mp}/s`)).stdout, /user:nobody:r--/);
  const read = await asNobody(`cat ${mp}/s`);
  t.is(read.code, 0, read.stderr);
  t.is(read.stdout, 'secret\n');
  t.not((await asNobody(`echo x >> ${mp}/s`)).code, 0, 'read granted, not write');
  const holder = (await Promise.all(bricks.map(async (b) => (await fs.stat(join(b, 's')).catch(() => null))?.size ? b : null))).find(Boolean)!;
  t.regex((await sh(`getfacl -c ${join(holder, 's')}`)).stdout, /user:nobody:r--/);
  const rm = await sh(`setfacl -b ${mp}/s`);
  t.is(rm.code, 0, rm.stderr);
  t.not((await asNobody(`cat ${mp}/s`)).code, 0, 'removing the ACL takes the access away');
});
