// gfs-brickd against a real process: gRPC calls in, the brick directory checked with plain tools.
import test, { type ExecutionContext } from 'ava';
import { constants } from 'node:fs';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { lstat, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { getAttribute, listAttributes, setAttribute } from '@napi-rs/xattr';
import { gfidFromBytes, gfidToBytes, newGfid } from '../common/gfid.js';
import { FsError, toErrno } from '../common/errors.js';
import { SETATTR, ctxToMetadata } from '../common/wire.js';
import { brickService } from '../common/proto.js';
import type { Xlator } from '../common/fops.js';
import { createLogger } from '../common/log.js';
import { ROOT_CTX, type Ctx } from '../common/types.js';
import { WriteMark } from '../common/write-mark.js';
import { ENTRY_PATH_XATTR } from '../brickd/io-threads.js';
import { waitFor } from './harness.js';
import { create as createClient } from '../client/xlators/protocol/client/index.js';
import { Replicate } from '../client/xlators/cluster/replicate/index.js';
import {
  BrickClient, HOST, args, errnoOf, freePort, runBrickd, spawnBrickd, startBrickd, cleanup, tempDir, type Daemon,
} from './brickd-harness.js';

const { O_RDWR, O_WRONLY, O_RDONLY, O_EXCL, O_TRUNC } = constants;
const USER = { uid: 1000, gid: 1000, groups: [], pid: 4242 };

let d: Daemon;
let c: BrickClient;

test.before(async () => {
  d = await startBrickd();
  c = new BrickClient(d.port, d.volumeId, d.secret);
});

test.after.always(async () => {
  c?.close();
  await cleanup();
});

const loc = (path: string) => ({ path, gfid: '' });

async function createFile(path: string, data?: Buffer, flags = O_RDWR): Promise<{ fd: number; gfid: string }> {
  const gfid = newGfid();
  const res = await c.call('Create', { loc: loc(path), flags, args: args(gfid) });
  if (data) await c.call('Write', { fd: res.fd, offset: 0, data });
  return { fd: res.fd, gfid };
}

test('a created and written file is on the brick with the same bytes and its gfid', async (t) => {
  const data = Buffer.from('hello, brick\n'.repeat(1000));
  const { fd, gfid } = await createFile('/hello.txt', data);
  await c.call('Release', { fd });
  t.deepEqual(await readFile(join(d.brick, 'hello.txt')), data);
  const x = await getAttribute(join(d.brick, 'hello.txt'), 'trusted.gfs.gfid');
  t.is(x!.length, 16);
  t.is(gfidFromBytes(x!), gfid);
  const st = await stat(join(d.brick, 'hello.txt'));
  t.is(st.mode & 0o777, 0o644);
  const look = await c.call('Lookup', { loc: loc('/hello.txt'), xattrs: ['trusted.gfs.gfid', 'trusted.none'] });
  t.is(look.iatt.gfid, gfid);
  t.is(look.iatt.size, data.length);
  t.deepEqual(Object.keys(look.xattrs), ['trusted.gfs.gfid']);
});

test('read returns the bytes, short only at end of file; an existing file keeps its gfid', async (t) => {
  const { fd, gfid } = await createFile('/r.bin', Buffer.from('0123456789'));
  t.is((await c.call('Read', { fd, offset: 2, size: 4 })).data.toString(), '2345');
  t.is((await c.call('Read', { fd, offset: 8, size: 100 })).data.toString(), '89');
  t.is((await c.call('Read', { fd, offset: 50, size: 10 })).data.length, 0);
  const again = await c.call('Create', { loc: loc('/r.bin'), flags: O_RDWR, args: args(newGfid()) });
  t.is(again.iatt.gfid, gfid);
  t.is(again.iatt.size, 10);
  t.is(await errnoOf(c.call('Create', { loc: loc('/r.bin'), flags: O_RDWR | O_EXCL, args: args(newGfid()) })), 'EEXIST');
  const trunc = await c.call('Create', { loc: loc('/r.bin'), flags: O_WRONLY | O_TRUNC, args: args(newGfid()) });
  t.is(trunc.iatt.size, 0);
  t.is(await errnoOf(c.call('Read', { fd: trunc.fd, offset: 0, size: 1 })), 'EBADF');
  for (const f of [fd, again.fd, trunc.fd]) await c.call('Release', { fd: f });
  t.is(await errnoOf(c.call('Create', { loc: loc('/bad-gfid'), flags: O_RDWR, args: args('not-a-uuid') })), 'EINVAL');
  const o = await c.call('Open', { loc: loc('/r.bin'), flags: O_RDONLY });
  t.is(o.iatt.gfid, gfid);
  await c.call('Release', { fd: o.fd });
});

test('mkdir as uid 1000 is owned by 1000 on disk; setgid parents pass their group on', async (t) => {
  const gfid = newGfid();
  const res = await c.call('Mkdir', { loc: loc('/userdir'), args: args(gfid, 0o775) }, USER);
  const st = await stat(join(d.brick, 'userdir'));
  t.is(st.uid, 1000);
  t.is(st.gid, 1000);
  t.is(st.mode & 0o777, 0o755); // umask 022
  t.is(res.iatt.gfid, gfid);
  t.is(gfidFromBytes((await getAttribute(join(d.brick, 'userdir'), 'trusted.gfs.gfid'))!), gfid);
  const sg = await c.call('Mkdir', { loc: loc('/sgid'), args: args(newGfid(), 0o777) });
  await c.call('Setattr', { loc: loc('/sgid'), valid: SETATTR.MODE | SETATTR.GID, mode: 0o2777, gid: 555 });
  t.truthy(sg);
  await c.call('Mkdir', { loc: loc('/sgid/sub'), args: args(newGfid(), 0o755) }, USER);
  const sub = await stat(join(d.brick, 'sgid/sub'));
  t.is(sub.uid, 1000);
  t.is(sub.gid, 555);
  t.truthy(sub.mode & 0o2000);
  const f = await c.call('Create', { loc: loc('/sgid/file'), flags: O_RDWR, args: args(newGfid()) }, USER);
  await c.call('Release', { fd: f.fd });
  const fst = await stat(join(d.brick, 'sgid/file'));
  t.is(fst.uid, 1000);
  t.is(fst.gid, 555);
  // The daemon's own identity (root here) needs no chown: the kernel's rule gives the same owner.
  const rootDir = await c.call('Mkdir', { loc: loc('/sgid/rootsub'), args: args(newGfid(), 0o755) });
  const rootFile = await c.call('Create', { loc: loc('/sgid/rootfile'), flags: O_RDWR, args: args(newGfid()) });
  await c.call('Release', { fd: rootFile.fd });
  const rootLink = await c.call('Symlink', { target: 'x', loc: loc('/sgid/rootlink'), args: args(newGfid()) });
  for (const [name, iatt] of [['rootsub', rootDir.iatt], ['rootfile', rootFile.iatt], ['rootlink', rootLink.iatt]] as const) {
    const st = await lstat(join(d.brick, 'sgid', name));
    t.deepEqual([st.uid, st.gid, iatt.uid, iatt.gid], [0, 555, 0, 555], name);
    t.is(gfidFromBytes((await getAttribute(join(d.brick, 'sgid', name), 'trusted.gfs.gfid'))!), iatt.gfid, name);
  }
  t.truthy((await stat(join(d.brick, 'sgid/rootsub'))).mode & 0o2000);
  const plain = await c.call('Mkdir', { loc: loc('/rootplain'), args: args(newGfid(), 0o755) });
  t.deepEqual([plain.iatt.uid, plain.iatt.gid, (await stat(join(d.brick, 'rootplain'))).gid], [0, 0, 0]);
  const ln = await c.call('Symlink', { target: '../elsewhere', loc: loc('/userlink'), args: args(newGfid()) }, USER);
  t.is((await lstat(join(d.brick, 'userlink'))).uid, 1000);
  t.is((await c.call('Readlink', { loc: loc('/userlink') })).target, '../elsewhere');
  t.truthy(ln.iatt.gfid);
});

test('malformed paths are EINVAL', async (t) => {
  for (const p of ['../etc/passwd', '/a/../../etc', 'relative/path', '/nul\0byte', '/./x', '']) {
    t.is(await errnoOf(c.call('Lookup', { loc: loc(p) })), 'EINVAL', JSON.stringify(p));
  }
  t.is(await errnoOf(c.call('Mkdir', { loc: loc('/x/../../escape'), args: args(newGfid()) })), 'EINVAL');
  const err = await c.call('Stat', { loc: loc('/a/../../etc') }).catch((e: grpc.ServiceError) => e);
  t.regex((err as grpc.ServiceError).details, /\/a\/\.\.\/\.\.\/etc/);
});

test('a symlink out of the brick is never followed', async (t) => {
  const outside = await tempDir('gfs-outside-');
  await writeFile(join(outside, 'passwd'), 'secret');
  await symlink(outside, join(d.brick, 'link'));
  t.is(await errnoOf(c.call('Lookup', { loc: loc('/link/passwd') })), 'EACCES');
  t.is(await errnoOf(c.call('Create', { loc: loc('/link/new'), flags: O_RDWR, args: args(newGfid()) })), 'EACCES');
  t.is(await errnoOf(c.call('Mkdir', { loc: loc('/link/newdir'), args: args(newGfid()) })), 'EACCES');
  t.is(await errnoOf(c.call('Setattr', { loc: loc('/link/passwd'), valid: SETATTR.MODE, mode: 0o777 })), 'EACCES');
  t.is(await errnoOf(c.call('Readdirp', { loc: loc('/link') })), 'ENOTDIR');
  t.is(await errnoOf(c.call('Open', { loc: loc('/link'), flags: O_RDONLY })), 'ELOOP');
  t.is(await errnoOf(c.call('Truncate', { loc: loc('/link'), size: 0 })), 'EINVAL');
  t.is(await errnoOf(c.call('Setattr', { loc: loc('/link'), valid: SETATTR.MODE, mode: 0o600 })), 'EOPNOTSUPP');
  // chown of the link itself is allowed and changes the link, not its target
  await c.call('Setattr', { loc: loc('/link'), valid: SETATTR.UID, uid: 1234 });
  t.is((await lstat(join(d.brick, 'link'))).uid, 1234);
  t.is((await stat(outside)).uid, 0);
  t.deepEqual(await readdir(outside), ['passwd']);
  t.is(await readFile(join(outside, 'passwd'), 'utf8'), 'secret');
  t.is((await stat(join(outside, 'passwd'))).mode & 0o777, 0o644);
  await rm(outside, { recursive: true, force: true });
  // the classic: a link to /etc
  await c.call('Symlink', { target: '/etc', loc: loc('/etclink'), args: args(newGfid()) });
  const before = await stat('/etc/passwd');
  t.is(await errnoOf(c.call('Lookup', { loc: loc('/etclink/passwd') })), 'EACCES');
  t.is(await errnoOf(c.call('Setxattr', { loc: loc('/etclink/passwd'), name: 'trusted.x', value: Buffer.from('x'), flags: 0 })), 'EACCES');
  t.is(await errnoOf(c.call('Unlink', { loc: loc('/etclink/passwd') })), 'EACCES');
  const after = await stat('/etc/passwd');
  t.is(after.ctimeMs, before.ctimeMs);
  t.is(await getAttribute('/etc/passwd', 'trusted.x'), null);
});

test('.gfs is hidden from clients', async (t) => {
  t.true((await stat(join(d.brick, '.gfs'))).isDirectory());
  t.is(await errnoOf(c.call('Lookup', { loc: loc('/.gfs') })), 'ENOENT');
  t.is(await errnoOf(c.call('Stat', { loc: loc('/.gfs/anything') })), 'ENOENT');
  t.is(await errnoOf(c.call('Mkdir', { loc: loc('/.gfs'), args: args(newGfid()) })), 'ENOENT');
  const { entries } = await c.call('Readdirp', { loc: loc('/') });
  t.false(entries.some((e: { name: string }) => e.name === '.gfs'));
  const root = await c.call('Lookup', { loc: loc('/') });
  t.is(root.iatt.gfid, '00000000-0000-0000-0000-000000000001');
});

test('wrong secret or wrong volume id is UNAUTHENTICATED and does nothing', async (t) => {
  const badSecret = new BrickClient(d.port, d.volumeId, 'guess');
  const badVol = new BrickClient(d.port, '00000000-0000-4000-8000-000000000000', d.secret);
  t.teardown(() => { badSecret.close(); badVol.close(); });
  for (const cl of [badSecret, badVol]) {
    const err = await cl.call('Mkdir', { loc: loc('/intruder'), args: args(newGfid()) }).catch((e: grpc.ServiceError) => e);
    t.is((err as grpc.ServiceError).code, grpc.status.UNAUTHENTICATED);
  }
  await t.throwsAsync(lstat(join(d.brick, 'intruder')), { code: 'ENOENT' });
  t.is((await c.call('Ping', {})).volume_id, d.volumeId);
});

test('failing calls carry the kernel errno', async (t) => {
  t.is(await errnoOf(c.call('Stat', { loc: loc('/missing') })), 'ENOENT');
  await c.call('Mkdir', { loc: loc('/e'), args: args(newGfid(), 0o755) });
  t.is(await errnoOf(c.call('Mkdir', { loc: loc('/e'), args: args(newGfid(), 0o755) })), 'EEXIST');
  const { fd } = await createFile('/e/file', Buffer.from('x'));
  await c.call('Release', { fd });
  t.is(await errnoOf(c.call('Rmdir', { loc: loc('/e') })), 'ENOTEMPTY');
  t.is(await errnoOf(c.call('Unlink', { loc: loc('/e') })), 'EISDIR');
  t.is(await errnoOf(c.call('Lookup', { loc: loc('/e/file/sub') })), 'ENOTDIR');
  t.is(await errnoOf(c.call('Readdirp', { loc: loc('/e/file') })), 'ENOTDIR');
  t.is(await errnoOf(c.call('Read', { fd: 999999, offset: 0, size: 1 })), 'EBADF');
  t.is(await errnoOf(c.call('Release', { fd })), 'EBADF');
  t.is(await errnoOf(c.call('Getxattr', { loc: loc('/e/file'), name: 'user.none' })), 'ENODATA');
  t.is(await errnoOf(c.call('Getxattr', { loc: loc('/e/none'), name: 'user.none' })), 'ENOENT');
  t.is(await errnoOf(c.call('Truncate', { loc: loc('/e'), size: 0 })), 'EISDIR');
  t.is(await errnoOf(c.call('Rename', { from: loc('/e'), to: loc('/e/file') })), 'EINVAL');
  await c.call('Mkdir', { loc: loc('/e2'), args: args(newGfid(), 0o755) });
  t.is(await errnoOf(c.call('Rename', { from: loc('/e/file'), to: loc('/e2') })), 'EISDIR');
  t.is(await errnoOf(c.call('Rename', { from: loc('/e2'), to: loc('/e/file') })), 'ENOTDIR');
  // rename replaces an existing file; a hard link shares the gfid
  const { fd: fd2 } = await createFile('/e2/other', Buffer.from('other'));
  await c.call('Release', { fd: fd2 });
  await c.call('Rename', { from: loc('/e2/other'), to: loc('/e/file') });
  t.is(await readFile(join(d.brick, 'e/file'), 'utf8'), 'other');
  const l = await c.call('Link', { from: loc('/e/file'), to: loc('/e2/hard') });
  t.is(l.iatt.nlink, 2);
  t.is(l.iatt.gfid, (await c.call('Stat', { loc: loc('/e/file') })).iatt.gfid);
  await c.call('Unlink', { loc: loc('/e2/hard') });
  await c.call('Rmdir', { loc: loc('/e2') });
  t.is(await errnoOf(c.call('Rmdir', { loc: loc('/') })), 'EBUSY');
});

test('setattr sets mode, owner, size and times, and keeps what it omits', async (t) => {
  const { fd } = await createFile('/attrs', Buffer.alloc(1000, 1));
  await c.call('Release', { fd });
  const host = join(d.brick, 'attrs');
  await c.call('Setattr', { loc: loc('/attrs'), valid: SETATTR.MODE, mode: 0o640 });
  t.is((await stat(host)).mode & 0o7777, 0o640);
  await c.call('Setattr', { loc: loc('/attrs'), valid: SETATTR.UID | SETATTR.GID, uid: 1000, gid: 2000 });
  await c.call('Setattr', { loc: loc('/attrs'), valid: SETATTR.UID, uid: 3000 });
  let st = await stat(host);
  t.is(st.uid, 3000);
  t.is(st.gid, 2000);
  // Owner, set-uid mode and times in one call (tar's): the chown goes first (it clears set-id bits).
  const all = await c.call('Setattr', {
    loc: loc('/attrs'), valid: SETATTR.UID | SETATTR.MODE | SETATTR.MTIME, uid: 4000, mode: 0o4750, mtime_sec: 1_600_000_000, mtime_nsec: 7,
  });
  const sb = await stat(host, { bigint: true });
  t.deepEqual([sb.uid, sb.mode & 0o7777n, sb.mtimeNs], [4000n, 0o4750n, 1_600_000_000_000_000_007n]);
  t.deepEqual([all.iatt.uid, all.iatt.mode & 0o7777], [4000, 0o4750]);
  await c.call('Setattr', { loc: loc('/attrs'), valid: SETATTR.UID | SETATTR.MODE, uid: 3000, mode: 0o640 });
  const res = await c.call('Setattr', { loc: loc('/attrs'), valid: SETATTR.SIZE, size: 10 });
  t.is(res.iatt.size, 10);
  t.is((await stat(host)).size, 10);
  await c.call('Setattr', {
    loc: loc('/attrs'), valid: SETATTR.ATIME | SETATTR.MTIME, atime_sec: 1_000_000_000, atime_nsec: 500_000_000, mtime_sec: 1_500_000_000, mtime_nsec: 0,
  });
  st = await stat(host);
  t.is(Math.round(st.atimeMs), 1_000_000_000_500);
  t.is(st.mtimeMs, 1_500_000_000_000);
  await c.call('Setattr', { loc: loc('/attrs'), valid: SETATTR.MTIME, mtime_sec: 1_600_000_000, mtime_nsec: 0 });
  st = await stat(host);
  t.is(Math.round(st.atimeMs), 1_000_000_000_500, 'an omitted atime stays');
  t.is(st.mtimeMs, 1_600_000_000_000);
  const before = Date.now();
  const now = await c.call('Setattr', { loc: loc('/attrs'), valid: SETATTR.ATIME_NOW });
  t.true(Math.abs(now.iatt.atime_sec * 1000 - before) < 5000);
  t.is(now.iatt.mtime_sec, 1_600_000_000, 'an omitted mtime stays');
  t.is((await stat(host)).mode & 0o7777, 0o640, 'mode untouched by the other changes');
  await c.call('Mkdir', { loc: loc('/attrdir'), args: args(newGfid(), 0o755) });
  t.is(await errnoOf(c.call('Setattr', { loc: loc('/attrdir'), valid: SETATTR.SIZE, size: 0 })), 'EISDIR');
});

test('setattr times are exact to the nanosecond; an omitted time keeps every nanosecond', async (t) => {
  const { fd } = await createFile('/ns');
  await c.call('Release', { fd });
  const host = join(d.brick, 'ns');
  await c.call('Setattr', {
    loc: loc('/ns'), valid: SETATTR.ATIME | SETATTR.MTIME, atime_sec: 1_900_000_000, atime_nsec: 123_456_789, mtime_sec: 1_800_000_000, mtime_nsec: 987_654_321,
  });
  let st = await lstat(host, { bigint: true });
  t.is(st.atimeNs, 1_900_000_000_123_456_789n);
  t.is(st.mtimeNs, 1_800_000_000_987_654_321n);
  // Only mtime (as tar does): atime stays exactly, even a value float seconds cannot hold.
  const res = await c.call('Setattr', { loc: loc('/ns'), valid: SETATTR.MTIME, mtime_sec: 1_700_000_000, mtime_nsec: 1 });
  st = await lstat(host, { bigint: true });
  t.is(st.atimeNs, 1_900_000_000_123_456_789n, 'an omitted atime stays to the nanosecond');
  t.is(st.mtimeNs, 1_700_000_000_000_000_001n);
  t.is(Number(res.iatt.mtime_nsec), 1);
  // Only atime: mtime stays.
  await c.call('Setattr', { loc: loc('/ns'), valid: SETATTR.ATIME, atime_sec: 1_000_000_000, atime_nsec: 999_999_999 });
  st = await lstat(host, { bigint: true });
  t.is(st.atimeNs, 1_000_000_000_999_999_999n);
  t.is(st.mtimeNs, 1_700_000_000_000_000_001n, 'an omitted mtime stays to the nanosecond');
  // MTIME_NOW with atime omitted.
  const before = BigInt(Date.now() - 5000) * 1_000_000n;
  await c.call('Setattr', { loc: loc('/ns'), valid: SETATTR.MTIME_NOW });
  st = await lstat(host, { bigint: true });
  t.true(st.mtimeNs > before);
  t.is(st.atimeNs, 1_000_000_000_999_999_999n);
  // A symlink's own times are set, never its target's.
  await symlink('ns', join(d.brick, 'ns-link'));
  await c.call('Setattr', { loc: loc('/ns-link'), valid: SETATTR.MTIME, mtime_sec: 1_234_567_890, mtime_nsec: 5 });
  t.is((await lstat(join(d.brick, 'ns-link'), { bigint: true })).mtimeNs, 1_234_567_890_000_000_005n);
  t.true((await lstat(host, { bigint: true })).mtimeNs > before, 'the target is untouched');
  // Before 1970.
  await c.call('Setattr', { loc: loc('/ns'), valid: SETATTR.MTIME, mtime_sec: -2, mtime_nsec: 250_000_000 });
  t.is((await lstat(host, { bigint: true })).mtimeNs, -1_750_000_000n);
  t.is(await errnoOf(c.call('Setattr', { loc: loc('/ns-none'), valid: SETATTR.MTIME, mtime_sec: 1, mtime_nsec: 0 })), 'ENOENT');
});

test('setattr times: many at once all land exactly', async (t) => {
  const n = 80; // more than the syscall module runs at once
  await Promise.all(Array.from({ length: n }, async (_, i) => {
    const { fd } = await createFile(`/many-${i}`);
    await c.call('Release', { fd });
  }));
  await Promise.all(Array.from({ length: n }, (_, i) =>
    c.call('Setattr', { loc: loc(`/many-${i}`), valid: SETATTR.MTIME, mtime_sec: 1_600_000_000 + i, mtime_nsec: i })));
  for (let i = 0; i < n; i++) {
    t.is((await lstat(join(d.brick, `many-${i}`), { bigint: true })).mtimeNs, BigInt(1_600_000_000 + i) * 1_000_000_000n + BigInt(i));
  }
});

test('mknod makes FIFOs, devices and sockets with the exact mode; an existing name is EEXIST', async (t) => {
  const S_IFIFO = 0o010000, S_IFCHR = 0o020000, S_IFBLK = 0o060000, S_IFSOCK = 0o140000;
  const fifo = await c.call('Mknod', { loc: loc('/fifo'), rdev: 0, args: { ...args(newGfid(), S_IFIFO | 0o4755), umask: 0o022 } });
  let st = await lstat(join(d.brick, 'fifo'));
  t.true(st.isFIFO());
  t.is(st.mode & 0o7777, 0o4755);
  t.truthy(fifo.iatt.gfid);
  t.is(await errnoOf(c.call('Mknod', { loc: loc('/fifo'), rdev: 0, args: args(newGfid(), S_IFIFO | 0o644) })), 'EEXIST');
  // rdev in the kernel's encoding: major 4095 and minor 0x12345 use both halves of it.
  const rdev = (0x45) | (4095 << 8) | (0x123 << 20);
  await c.call('Mknod', { loc: loc('/chr'), rdev, args: args(newGfid(), S_IFCHR | 0o600) });
  st = await lstat(join(d.brick, 'chr'));
  t.true(st.isCharacterDevice());
  t.is(st.rdev, rdev);
  t.is(st.mode & 0o7777, 0o600);
  await c.call('Mknod', { loc: loc('/blk'), rdev: (8 << 8) | 1, args: args(newGfid(), S_IFBLK | 0o640) });
  st = await lstat(join(d.brick, 'blk'));
  t.true(st.isBlockDevice());
  t.is(st.rdev, (8 << 8) | 1);
  await c.call('Mknod', { loc: loc('/sock'), rdev: 0, args: args(newGfid(), S_IFSOCK | 0o755) });
  st = await lstat(join(d.brick, 'sock'));
  t.true(st.isSocket());
  t.is(st.mode & 0o7777, 0o755);
  t.is(await errnoOf(c.call('Mknod', { loc: loc('/no-dir/fifo'), rdev: 0, args: args(newGfid(), S_IFIFO | 0o644) })), 'ENOENT');
});

test('fallocate extends, punches holes keeping the size, refuses unknown modes and read-only fds', async (t) => {
  const { fd } = await createFile('/falloc', Buffer.alloc(4096, 7));
  const host = join(d.brick, 'falloc');
  await c.call('Fallocate', { fd, mode: 0, offset: 0, len: 1 << 20 });
  t.is((await stat(host)).size, 1 << 20);
  await c.call('Fallocate', { fd, mode: 1, offset: 1 << 20, len: 1 << 20 }); // KEEP_SIZE
  t.is((await stat(host)).size, 1 << 20);
  await c.call('Fallocate', { fd, mode: 3, offset: 0, len: 4096 }); // PUNCH_HOLE | KEEP_SIZE
  t.is((await stat(host)).size, 1 << 20);
  t.deepEqual((await c.call('Read', { fd, offset: 0, size: 8 })).data, Buffer.alloc(8));
  t.is(await errnoOf(c.call('Fallocate', { fd, mode: 0x40, offset: 0, len: 10 })), 'EOPNOTSUPP');
  await c.call('Release', { fd });
  const ro = await c.call('Open', { loc: loc('/falloc'), flags: O_RDONLY });
  t.is(await errnoOf(c.call('Fallocate', { fd: ro.fd, mode: 0, offset: 0, len: 10 })), 'EBADF');
  await c.call('Release', { fd: ro.fd });
});

test.serial('without the libc bindings (GFS_BRICK_NO_FFI=1) times and special files still work', async (t) => {
  process.env.GFS_BRICK_NO_FFI = '1';
  let d2: Daemon;
  try {
    d2 = await startBrickd();
  } finally {
    delete process.env.GFS_BRICK_NO_FFI;
  }
  const c2 = new BrickClient(d2.port, d2.volumeId, d2.secret);
  t.teardown(() => c2.close());
  const res = await c2.call('Create', { loc: loc('/f'), flags: O_RDWR, args: args(newGfid()) });
  await c2.call('Release', { fd: res.fd });
  await c2.call('Setattr', { loc: loc('/f'), valid: SETATTR.ATIME | SETATTR.MTIME, atime_sec: 1_900_000_000, atime_nsec: 123_456_789, mtime_sec: 1, mtime_nsec: 2 });
  await c2.call('Setattr', { loc: loc('/f'), valid: SETATTR.MTIME, mtime_sec: 1_700_000_000, mtime_nsec: 3 });
  const st = await lstat(join(d2.brick, 'f'), { bigint: true });
  t.is(st.atimeNs, 1_900_000_000_123_456_789n);
  t.is(st.mtimeNs, 1_700_000_000_000_000_003n);
  await c2.call('Mknod', { loc: loc('/fifo'), rdev: 0, args: args(newGfid(), 0o010000 | 0o640) });
  const fst = await lstat(join(d2.brick, 'fifo'));
  t.true(fst.isFIFO());
  t.is(fst.mode & 0o7777, 0o640);
});

test('xattrs: flags, gfid immutability, listing, xattrop', async (t) => {
  const { fd } = await createFile('/xa');
  await c.call('Release', { fd });
  const host = join(d.brick, 'xa');
  await c.call('Setxattr', { loc: loc('/xa'), name: 'user.k', value: Buffer.from('v1'), flags: 1 });
  t.is(await errnoOf(c.call('Setxattr', { loc: loc('/xa'), name: 'user.k', value: Buffer.from('v2'), flags: 1 })), 'EEXIST');
  t.is(await errnoOf(c.call('Setxattr', { loc: loc('/xa'), name: 'user.none', value: Buffer.from('v'), flags: 2 })), 'ENODATA');
  await c.call('Setxattr', { loc: loc('/xa'), name: 'user.k', value: Buffer.from('v3'), flags: 2 });
  t.is((await getAttribute(host, 'user.k'))!.toString(), 'v3');
  t.is((await c.call('Getxattr', { loc: loc('/xa'), name: 'user.k' })).value.toString(), 'v3');
  t.is(await errnoOf(c.call('Setxattr', { loc: loc('/xa'), name: 'trusted.gfs.gfid', value: gfidToBytes(newGfid()), flags: 0 })), 'EEXIST');
  const names = (await c.call('Listxattr', { loc: loc('/xa') })).names as string[];
  t.true(names.includes('user.k') && names.includes('trusted.gfs.gfid'));
  await c.call('Removexattr', { loc: loc('/xa'), name: 'user.k' });
  t.is(await errnoOf(c.call('Removexattr', { loc: loc('/xa'), name: 'user.k' })), 'ENODATA');

  const one = Buffer.alloc(12);
  one.writeInt32BE(1, 0);
  one.writeInt32BE(-1, 8);
  const all = await Promise.all(Array.from({ length: 100 }, () => c.call('Xattrop', { loc: loc('/xa'), name: 'trusted.gfs.afr.c0', add: one })));
  t.is(all.length, 100);
  const v = await getAttribute(host, 'trusted.gfs.afr.c0');
  t.is(v!.readInt32BE(0), 100);
  t.is(v!.readInt32BE(4), 0);
  t.is(v!.readInt32BE(8), -100);
  t.is(await errnoOf(c.call('Xattrop', { loc: loc('/xa'), name: 'trusted.gfs.afr.c0', add: Buffer.alloc(4) })), 'EINVAL');
  t.is(await errnoOf(c.call('Xattrop', { loc: loc('/no-such-file'), name: 'trusted.gfs.afr.c0', add: one })), 'ENOENT');
  // A counter left non-zero: the heal index has the inode (its gfid read with the counters).
  const { gfid } = await createFile('/xb');
  await c.call('Xattrop', { loc: loc('/xb'), name: 'trusted.gfs.afr.c0', add: one });
  const entry = join(d.brick, '.gfs/indices/xattrop', gfid);
  const entryPath = async (file: string) => (await getAttribute(file, ENTRY_PATH_XATTR))?.toString();
  t.is(await entryPath(entry), '/xb');
  const minus = Buffer.from(one.map(() => 0));
  minus.writeInt32BE(-1, 0);
  minus.writeInt32BE(1, 8);
  // Another counter still set: the entry stays when this one goes back to zero.
  const unit = Buffer.alloc(12);
  unit.writeInt32BE(1, 0);
  await c.call('Xattrop', { loc: loc('/xb'), name: 'trusted.gfs.afr.c1', add: unit });
  await c.call('Xattrop', { loc: loc('/xb'), name: 'trusted.gfs.afr.c0', add: minus });
  await new Promise((res) => setTimeout(res, 1300)); // a removal round (1 s)
  t.true(existsSync(entry), 'c1 is still pending');
  unit.writeInt32BE(-1, 0);
  await c.call('Xattrop', { loc: loc('/xb'), name: 'trusted.gfs.afr.c1', add: unit });
  await waitFor('the index entry to go', async () => !existsSync(entry), 15_000);
  t.false(existsSync(entry), 'every counter back at zero: the entry goes with the next round');
  // A pre-op again: the entry is back.
  await c.call('Xattrop', { loc: loc('/xb'), name: 'trusted.gfs.afr.c0', add: one });
  t.true(existsSync(entry));
  // A pre-op naming its inode's gfid (replicate's do) writes the entry in its own job; one naming
  // a gfid the path does not have gets the entry under the gfid it has, and none under the other.
  const xc = await createFile('/xc');
  await c.call('Xattrop', { loc: { path: '/xc', gfid: xc.gfid }, name: 'trusted.gfs.afr.c0', add: one });
  t.is(await entryPath(join(d.brick, '.gfs/indices/xattrop', xc.gfid)), '/xc');
  const xd = await createFile('/xd');
  const wrong = newGfid();
  await c.call('Xattrop', { loc: { path: '/xd', gfid: wrong }, name: 'trusted.gfs.afr.c0', add: one });
  t.is(await entryPath(join(d.brick, '.gfs/indices/xattrop', xd.gfid)), '/xd');
  t.false(existsSync(join(d.brick, '.gfs/indices/xattrop', wrong)));
});

test('create xattrs are set before the reply', async (t) => {
  const layout = Buffer.from('00000001000000007fffffff', 'hex');
  const res = await c.call('Mkdir', { loc: loc('/laid'), args: args(newGfid(), 0o755, { 'trusted.gfs.dht': layout }) });
  t.truthy(res.iatt);
  t.deepEqual(await getAttribute(join(d.brick, 'laid'), 'trusted.gfs.dht'), layout);
  const f = await c.call('Create', { loc: loc('/laid/f'), flags: O_RDWR, args: args(newGfid(), 0o644, { 'trusted.gfs.linkto': Buffer.from('sub-1') }) });
  t.is((await getAttribute(join(d.brick, 'laid/f'), 'trusted.gfs.linkto'))!.toString(), 'sub-1');
  await c.call('Release', { fd: f.fd });
  const sf = await c.call('Statfs', { loc: loc('/') });
  t.true(sf.bsize > 0 && sf.blocks > 0 && sf.namemax === 255 && sf.frsize === sf.bsize);
});

test('entries without a gfid get one on lookup and keep it', async (t) => {
  await writeFile(join(d.brick, 'plain.txt'), 'put there by hand');
  const a = await c.call('Lookup', { loc: loc('/plain.txt') });
  const b = await c.call('Stat', { loc: loc('/plain.txt') });
  t.regex(a.iatt.gfid, /^[0-9a-f-]{36}$/);
  t.is(a.iatt.gfid, b.iatt.gfid);
  t.is(gfidFromBytes((await getAttribute(join(d.brick, 'plain.txt'), 'trusted.gfs.gfid'))!), a.iatt.gfid);
});

test('posix locks: conflicts, EAGAIN, setlkw granted after unlock, dropped at release', async (t) => {
  const { fd: fa, gfid } = await createFile('/locked', Buffer.alloc(100));
  const fb = (await c.call('Open', { loc: loc('/locked'), flags: O_RDWR })).fd;
  t.truthy(gfid);
  const lock = (type: string, start: number, len: number, owner: string) => ({ type, start, len, pid: 1, owner });
  await c.call('Lk', { fd: fa, cmd: 'setlk', lock: lock('write', 0, 100, 'A') });
  t.is(await errnoOf(c.call('Lk', { fd: fb, cmd: 'setlk', lock: lock('write', 50, 10, 'B') })), 'EAGAIN');
  t.is(await errnoOf(c.call('Lk', { fd: fb, cmd: 'setlk', lock: lock('read', 99, 0, 'B') })), 'EAGAIN');
  await c.call('Lk', { fd: fb, cmd: 'setlk', lock: lock('write', 100, 0, 'B') }); // beyond A's range
  const got = await c.call('Lk', { fd: fb, cmd: 'getlk', lock: lock('write', 10, 1, 'B') });
  t.is(got.lock.type, 'write');
  t.is(got.lock.owner, 'A');
  t.is(got.lock.start, 0);
  t.is(got.lock.len, 100);
  t.is((await c.call('Lk', { fd: fa, cmd: 'getlk', lock: lock('write', 10, 1, 'A') })).lock.type, 'unlock', 'own locks never conflict');
  // A unlocks the middle: the split leaves 0-40 and 60-100 locked
  await c.call('Lk', { fd: fa, cmd: 'setlk', lock: lock('unlock', 40, 20, 'A') });
  await c.call('Lk', { fd: fb, cmd: 'setlk', lock: lock('write', 45, 10, 'B') });
  t.is(await errnoOf(c.call('Lk', { fd: fb, cmd: 'setlk', lock: lock('write', 35, 10, 'B') })), 'EAGAIN');
  let granted = false;
  const waiting = c.call('Lk', { fd: fb, cmd: 'setlkw', lock: lock('write', 0, 10, 'B') }).then((r) => { granted = true; return r; });
  await new Promise((r) => setTimeout(r, 300));
  t.false(granted, 'setlkw waits while A holds the range');
  await c.call('Lk', { fd: fa, cmd: 'setlk', lock: lock('unlock', 0, 10, 'A') });
  await waiting;
  t.true(granted);
  // release of A's fd drops A's remaining lock (60-100)
  await c.call('Release', { fd: fa });
  await c.call('Lk', { fd: fb, cmd: 'setlk', lock: lock('write', 60, 40, 'B') });
  t.is((await c.call('Lk', { fd: fb, cmd: 'getlk', lock: lock('write', 0, 0, 'C') })).lock.owner, 'B');
  await c.call('Release', { fd: fb });
  const fc = (await c.call('Open', { loc: loc('/locked'), flags: O_RDWR })).fd;
  t.is((await c.call('Lk', { fd: fc, cmd: 'getlk', lock: lock('write', 0, 0, 'C') })).lock.type, 'unlock');
  t.is(await errnoOf(c.call('Lk', { fd: 777777, cmd: 'setlk', lock: lock('write', 0, 0, 'C') })), 'EBADF');
  await c.call('Release', { fd: fc });
});

test('a setlkw given up by its caller is never granted later', async (t) => {
  const { fd: fa } = await createFile('/lkw', Buffer.alloc(10));
  const fb = (await c.call('Open', { loc: loc('/lkw'), flags: O_RDWR })).fd;
  const lock = (type: string, owner: string) => ({ type, start: 0, len: 0, pid: 1, owner });
  await c.call('Lk', { fd: fa, cmd: 'setlk', lock: lock('write', 'A') });
  const err = await c.call('Lk', { fd: fb, cmd: 'setlkw', lock: lock('write', 'B') }, undefined, 300).catch((e: grpc.ServiceError) => e);
  t.is((err as grpc.ServiceError).code, grpc.status.DEADLINE_EXCEEDED);
  await new Promise((r) => setTimeout(r, 100));
  await c.call('Lk', { fd: fa, cmd: 'setlk', lock: lock('unlock', 'A') });
  t.is((await c.call('Lk', { fd: fb, cmd: 'getlk', lock: lock('write', 'C') })).lock.type, 'unlock');
  for (const fd of [fa, fb]) await c.call('Release', { fd });
});

test('readdirp of 2,000 entries returns each exactly once with attributes', async (t) => {
  await c.call('Mkdir', { loc: loc('/many'), args: args(newGfid(), 0o755) });
  const dir = join(d.brick, 'many');
  await Promise.all(Array.from({ length: 2000 }, (_, i) => writeFile(join(dir, `f${i}`), String(i))));
  await setAttribute(join(dir, 'f7'), 'trusted.gfs.tag', Buffer.from('seven'));
  const { entries } = await c.call('Readdirp', { loc: loc('/many'), xattrs: ['trusted.gfs.tag'] });
  t.is(entries.length, 2000);
  const names = new Set(entries.map((e: { name: string }) => e.name));
  t.is(names.size, 2000);
  for (let i = 0; i < 2000; i++) t.true(names.has(`f${i}`));
  const f7 = entries.find((e: { name: string }) => e.name === 'f7');
  t.is(f7.xattrs['trusted.gfs.tag'].toString(), 'seven');
  t.is(f7.iatt.size, 1);
  t.true(entries.every((e: { iatt: { gfid: string } }) => e.iatt.gfid.length === 36));
  t.is(new Set(entries.map((e: { iatt: { gfid: string } }) => e.iatt.gfid)).size, 2000);
  // Three names or more: one listxattr per entry picks those present; gfids are kept now.
  const again = await c.call('Readdirp', { loc: loc('/many'), xattrs: ['trusted.gfs.tag', 'security.selinux', 'system.posix_acl_access'] });
  t.deepEqual(again.entries.filter((e: { xattrs: object }) => Object.keys(e.xattrs).length).map((e: { name: string; xattrs: object }) => [e.name, Object.keys(e.xattrs)]), [['f7', ['trusted.gfs.tag']]]);
  t.deepEqual(new Set(again.entries.map((e: { iatt: { gfid: string } }) => e.iatt.gfid)), new Set(entries.map((e: { iatt: { gfid: string } }) => e.iatt.gfid)));
  t.is(await errnoOf(c.call('Readdirp', { loc: loc('/many/f1') })), 'ENOTDIR');
  t.is(await errnoOf(c.call('Readdirp', { loc: loc('/no-such-dir') })), 'ENOENT');
});

test('a second brickd on the same port exits 98 naming the port', async (t) => {
  const second = await spawnBrickd({ port: d.port });
  const { code } = await second.exited;
  t.is(code, 98);
  t.regex(second.stderr(), new RegExp(`port ${HOST.replace(/\./g, '\\.')}:${d.port} is already in use`));
  await rm(second.brick, { recursive: true, force: true });
});

test('a missing brick directory is refused with exit 1', async (t) => {
  const r = await spawnBrickd({ brick: '/nonexistent/gfs-brick-dir' });
  t.false(r.listening);
  t.is((await r.exited).code, 1);
  t.regex(r.stderr(), /brick directory '\/nonexistent\/gfs-brick-dir' does not exist/);
  const file = join(await tempDir('gfs-notdir-'), 'file');
  await writeFile(file, '');
  const r2 = await spawnBrickd({ brick: file });
  t.is((await r2.exited).code, 1);
  t.regex(r2.stderr(), /is not a directory/);
});

test('a brick of another volume is refused with exit 1; the right id is accepted', async (t) => {
  const brick = await tempDir('gfs-brick-other-');
  t.teardown(() => rm(brick, { recursive: true, force: true }));
  const first = await startBrickd({ brick, volumeId: '11111111-2222-4333-8444-555555555555' });
  first.proc.kill('SIGTERM');
  t.is((await first.exited).code, 0);
  t.is(gfidFromBytes((await getAttribute(brick, 'trusted.gfs.volume-id'))!), '11111111-2222-4333-8444-555555555555');
  const wrong = await spawnBrickd({ brick, volumeId: '99999999-2222-4333-8444-555555555555' });
  t.is((await wrong.exited).code, 1);
  t.regex(wrong.stderr(), /belongs to volume id 11111111-2222-4333-8444-555555555555/);
  const again = await startBrickd({ brick, volumeId: '11111111-2222-4333-8444-555555555555' });
  again.proc.kill('SIGTERM');
  t.is((await again.exited).code, 0);
});

test('SIGTERM stops brickd with exit 0, also with open fds; a pid file is written', async (t) => {
  const pidDir = await tempDir('gfs-pid-');
  const pidFile = join(pidDir, 'brickd.pid');
  const b = await startBrickd({ extra: ['--pid-file', pidFile] });
  t.teardown(() => rm(b.brick, { recursive: true, force: true }));
  t.is(Number((await readFile(pidFile, 'utf8')).trim()), b.proc.pid ?? -1);
  const cl = new BrickClient(b.port, b.volumeId, b.secret);
  t.teardown(() => cl.close());
  const f = await cl.call('Create', { loc: loc('/open'), flags: O_RDWR, args: args(newGfid()) });
  t.truthy(f.fd);
  b.proc.kill('SIGTERM');
  t.deepEqual(await b.exited, { code: 0, signal: null });
});

test('bad arguments exit 2 with one line; --help exits 0', async (t) => {
  const help = await runBrickd(['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /usage: gfs-brickd --brick-path DIR --listen HOST:PORT/);
  const missing = await runBrickd(['--brick-path', '/tmp']);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /missing --listen/);
  const port = await freePort();
  const badListen = await runBrickd(['--brick-path', '/tmp', '--listen', 'nohost', '--volume', 'v', '--volume-id', newGfid(), '--auth-file', '/etc/hostname']);
  t.is(badListen.code, 2);
  t.regex(badListen.stderr, /--listen 'nohost' is not HOST:PORT/);
  const badId = await runBrickd(['--brick-path', '/tmp', '--listen', `${HOST}:${port}`, '--volume', 'v', '--volume-id', 'xyz', '--auth-file', '/etc/hostname']);
  t.is(badId.code, 2);
  t.regex(badId.stderr, /--volume-id 'xyz' is not a UUID/);
  const noAuth = await runBrickd(['--brick-path', '/tmp', '--listen', `${HOST}:${port}`, '--volume', 'v', '--volume-id', newGfid(), '--auth-file', '/nonexistent/secret']);
  t.is(noAuth.code, 2);
  t.regex(noAuth.stderr, /cannot read --auth-file/);
  t.is(noAuth.stderr.trim().split('\n').length, 1);
});


const sessionErrno = (p: Promise<unknown>) => p.then(() => 'no error', (e: unknown) => toErrno(e));

/** A protocol/client (the mount's own, over the Session stream) of brick daemon b. */
async function sessionOf(b: Daemon, name = 'c'): Promise<Xlator> {
  const xl = createClient(name, { 'remote-host': HOST, 'remote-subvolume': b.brick, 'remote-port': b.port }, [],
    { log: createLogger('test', 'silent'), volume: 'testvol', volumeId: b.volumeId, secret: b.secret, rootCtx: ROOT_CTX });
  await xl.init();
  return xl;
}

/** Two brick daemons of one volume, and replicate translators over protocol/clients of them. */
async function replicaPair() {
  const [b1, b2] = [await startBrickd(), await startBrickd()];
  const xctx = { log: createLogger('test', 'silent'), volume: 'testvol', volumeId: b1.volumeId, secret: b1.secret, rootCtx: ROOT_CTX };
  const clients = async () => [await sessionOf(b1, 'testvol-client-0'), await sessionOf(b2, 'testvol-client-1')];
  const replicaOf = async (children?: Xlator[]) => {
    const r = new Replicate('testvol-replicate-0', { 'background-self-heal-count': 0 }, children ?? (await clients()), xctx);
    await r.init();
    return r;
  };
  return { b1, b2, clients, replicaOf };
}

/** Counts the inodelk calls made through these clients from now on. */
function countInodelks(children: Xlator[]): () => number {
  let n = 0;
  for (const c of children) {
    const orig = c.inodelk.bind(c);
    c.inodelk = (...a: Parameters<Xlator['inodelk']>) => { n++; return orig(...a); };
  }
  return () => n;
}

test('replicate over two real bricks: an open for writing takes the data transaction lock with it, so its writes send no lock call; another client\'s writer waits for it, and an open whose lock is held goes on without', async (t) => {
  const { b1, b2, clients, replicaOf } = await replicaPair();
  const children = await clients();
  const lks: string[] = [];
  for (const c of children) {
    const orig = c.lk.bind(c);
    c.lk = (...a: Parameters<Xlator['lk']>) => { lks.push(a[3].type); return orig(...a); };
  }
  const [mount, other] = [await replicaOf(children), await replicaOf()];
  t.teardown(async () => { await mount.fini(); await other.fini(); });
  const gfid = newGfid();
  const made = await mount.create(USER, { path: '/ol' }, O_RDWR, args(gfid));
  await mount.release(USER, made.fd);
  const fd = await mount.open(USER, { path: '/ol', gfid }, O_RDWR);
  for (let i = 0; i < 8; i++) await mount.write(USER, fd, i * 4096, Buffer.alloc(4096, i + 1));
  // The other client's write waits for this client's transaction (its lock, held by the open).
  const ofd = await other.open(USER, { path: '/ol', gfid }, O_RDWR);
  let otherDone = false;
  const otherWrite = other.write(USER, ofd, 0, Buffer.from('other')).then(() => { otherDone = true; });
  await new Promise((res) => setTimeout(res, 100));
  t.false(otherDone, 'the other client waits for the transaction');
  t.deepEqual(lks.filter((x) => x !== 'unlock'), [], 'no lock call: the open took it');
  await mount.flush(USER, fd);
  await mount.release(USER, fd);
  await otherWrite;
  await other.flush(USER, ofd);
  await other.release(USER, ofd);
  const data = await readFile(join(b1.brick, 'ol'));
  t.is(data.subarray(0, 5).toString(), 'other');
  t.is(data.length, 8 * 4096);
  t.deepEqual(await readFile(join(b2.brick, 'ol')), data);
  for (const b of [b1, b2]) {
    for (const k of ['dirty', 'testvol-client-0', 'testvol-client-1']) {
      const v = await getAttribute(join(b.brick, 'ol'), `trusted.gfs.afr.${k}`);
      t.deepEqual(v ? [...v] : [], v ? new Array(12).fill(0) : [], `${k} on ${b.brick}`);
    }
  }
  // A read-only open takes no lock; nor does a write-open's lock outlive the post-op delay unused.
  lks.length = 0;
  const ro = await mount.open(USER, { path: '/ol', gfid }, O_RDONLY);
  await mount.release(USER, ro);
  const idle = await mount.open(USER, { path: '/ol', gfid }, O_RDWR);
  const ofd2 = await other.open(USER, { path: '/ol', gfid }, O_RDWR);
  await other.write(USER, ofd2, 0, Buffer.from('after')); // waits at most the delay (1 s)
  await other.flush(USER, ofd2);
  await other.release(USER, ofd2);
  await mount.release(USER, idle);
  t.deepEqual(lks, ['unlock', 'unlock'], 'the idle open let its lock go once, on each brick');
  t.is((await readFile(join(b2.brick, 'ol'))).subarray(0, 5).toString(), 'after');
});

test('a write answers with the file\'s attributes after it, and a stat that follows takes them without a call; a setattr or a second since forget them, and another client\'s write is seen', async (t) => {
  const b = await startBrickd();
  const xl = await sessionOf(b);
  const other = await sessionOf(b, 'other');
  t.teardown(async () => { await xl.fini(); await other.fini(); });
  // The Stat and Fstat requests xl sends.
  let asked = 0;
  const priv = xl as unknown as { call: (method: string, ...rest: unknown[]) => Promise<unknown> };
  const call = priv.call.bind(xl);
  priv.call = (method, ...rest) => { if (method === 'Stat' || method === 'Fstat') asked++; return call(method, ...rest); };
  const gfid = newGfid();
  const { fd } = await xl.create(USER, { path: '/pw' }, O_RDWR, args(gfid));
  const loc = { path: '/pw', gfid };
  await xl.write(USER, fd, 0, Buffer.alloc(10_000, 1));
  await xl.write(USER, fd, 10_000, Buffer.alloc(5_000, 2));
  const after = await xl.stat(USER, loc);
  const fstatted = await xl.fstat(USER, fd);
  t.is(asked, 0, 'no stat request');
  const onBrick = await stat(join(b.brick, 'pw'), { bigint: true });
  for (const a of [after, fstatted]) {
    t.is(a.size, 15_000n);
    t.is(a.mtime, onBrick.mtimeNs);
    t.is(a.ctime, onBrick.ctimeNs);
    t.is(a.gfid, gfid);
  }
  // A setattr through this client: asked again.
  await xl.setattr(USER, loc, { mode: 0o600 });
  t.is(Number((await xl.stat(USER, loc)).mode & 0o777), 0o600);
  t.is(asked, 1, 'a setattr went since: the brick is asked');
  // Written again, then another client changes it (told by upcall, or found after the second).
  await xl.write(USER, fd, 0, Buffer.alloc(100, 3));
  t.is((await xl.stat(USER, loc)).size, 15_000n);
  t.is(asked, 1);
  const ofd = await other.open(USER, loc, O_RDWR);
  await other.write(USER, ofd, 20_000, Buffer.alloc(200, 4));
  await other.release(USER, ofd);
  await waitFor("the other client's write", async () => (await xl.stat(USER, loc)).size === 20_200n, 5000).catch(() => undefined);
  t.is((await xl.stat(USER, loc)).size, 20_200n, "another client's write is seen");
  // Kept a second at most.
  await xl.write(USER, fd, 0, Buffer.alloc(300, 5));
  const before = asked;
  await new Promise((res) => setTimeout(res, 1100));
  t.is((await xl.stat(USER, loc)).size, 20_200n);
  t.is(asked, before + 1, 'a second later: asked');
  await xl.release(USER, fd);
});

test('a closed file costs no round trip: its release rides on the next request, or goes alone 50 ms later, or at fini', async (t) => {
  const b = await startBrickd(); // its own daemon: other tests' files would be counted
  const xl = await sessionOf(b);
  // The daemon's fds open on files of its brick.
  const open = () => readdirSync(`/proc/${b.proc.pid}/fd`).filter((fd) => {
    try { return readlinkSync(`/proc/${b.proc.pid}/fd/${fd}`).startsWith(`${b.brick}/rel-`); } catch { return false; }
  }).length;
  const base = open();
  t.is(base, 0);
  const make = async (p: string) => xl.release(ROOT_CTX, (await xl.create(ROOT_CTX, { path: p }, O_RDWR, args(newGfid()))).fd);
  for (let i = 0; i < 100; i++) await make(`/rel-${i}`);
  t.true(open() - base <= 1, `fds open on the brick after 100 create+release: ${open() - base}`);
  // No other request comes: it goes by itself (50 ms later; a loaded machine may take longer).
  await waitFor('the last release', async () => open() === base, 5000).catch(() => undefined);
  t.is(open() - base, 0, 'the last release went alone');
  await make('/rel-last');
  await xl.fini();
  await waitFor('the held release', async () => open() === base, 5000).catch(() => undefined);
  t.is(open() - base, 0, 'fini sent the release it held');
});

test('inode locks: readers share, a waiting writer goes before new readers, and a client\'s locks end with its session', async (t) => {
  const b = await startBrickd();
  const [x, y] = [await sessionOf(b), await sessionOf(b)];
  t.teardown(() => x.fini());
  const lock = (type: 'read' | 'write' | 'unlock', owner: string) => ({ type, start: 1n << 50n, len: 1n, pid: 0, owner });
  const dir = { path: '/' };
  await x.inodelk(ROOT_CTX, dir, 'setlk', lock('read', 'r1'));
  await y.inodelk(ROOT_CTX, dir, 'setlk', lock('read', 'r2'));
  let wrote = false;
  const writer = y.inodelk(ROOT_CTX, dir, 'setlkw', lock('write', 'w')).then(() => { wrote = true; });
  await new Promise((r) => setTimeout(r, 100));
  t.false(wrote, 'the writer waits for both readers');
  t.is(await sessionErrno(x.inodelk(ROOT_CTX, dir, 'setlk', lock('read', 'r3'))), 'EAGAIN', 'a new reader waits behind the writer');
  await x.inodelk(ROOT_CTX, dir, 'setlk', lock('unlock', 'r1'));
  await y.inodelk(ROOT_CTX, dir, 'setlk', lock('unlock', 'r2'));
  await writer;
  t.true(wrote);
  let read = false;
  const reader = x.inodelk(ROOT_CTX, dir, 'setlkw', lock('read', 'r4')).then(() => { read = true; });
  await new Promise((r) => setTimeout(r, 100));
  t.false(read, 'a reader waits while the writer holds it');
  await y.fini(); // the writer's client goes: its lock with it
  await reader;
  t.true(read);
  t.is(await sessionErrno(x.inodelk(ROOT_CTX, { path: '/no-such' }, 'setlk', lock('read', 'r5'))), 'ENOENT');
  t.is(await sessionErrno(x.inodelk(ROOT_CTX, dir, 'getlk', lock('read', 'r6'))), 'EINVAL');
  t.is(await sessionErrno(x.inodelk(ROOT_CTX, dir, 'setlk', lock('read', ''))), 'EINVAL', 'an inode lock needs an owner');
});

test('replicate over two real bricks: metadata heals of another client while this one chmods: no counter left skewed, both copies end alike', async (t) => {
  const { b1, b2, replicaOf } = await replicaPair();
  const [mount, shd] = [await replicaOf(), await replicaOf()];
  t.teardown(async () => { await mount.fini(); await shd.fini(); });
  const { fd } = await mount.create(USER, { path: '/m' }, O_RDWR, args(newGfid()));
  await mount.release(USER, fd);
  let changing = true;
  let heals = 0;
  const healing = (async () => {
    while (changing) { await shd.heal('/m', true); heals++; }
  })();
  const modes = [0o600, 0o640, 0o644, 0o660, 0o664, 0o666];
  for (let i = 0; i < 120; i++) await mount.setattr(USER, { path: '/m' }, { mode: modes[i % modes.length] });
  changing = false;
  await healing;
  await mount.fini();
  t.true(heals > 3, `heals: ${heals}`);
  const last = modes[119 % modes.length];
  for (const b of [b1, b2]) {
    t.is((await stat(join(b.brick, 'm'))).mode & 0o777, last, `the mode on ${b.brick}`);
    for (const k of ['dirty', 'testvol-client-0', 'testvol-client-1']) {
      const v = await getAttribute(join(b.brick, 'm'), `trusted.gfs.afr.${k}`);
      t.deepEqual(v ? [...v] : [], v ? new Array(12).fill(0) : [], `${k} on ${b.brick}`);
    }
  }
});

test('a listing or lookup that meets a file being created waits for its gfid instead of giving it one of its own', async (t) => {
  await c.call('Mkdir', { loc: loc('/racing'), args: args(newGfid(), 0o755) });
  const made = new Map<string, string>();
  const seen: { path: string; gfid: string }[] = []; // what listings and lookups answered
  let creating = true;
  const listing = (async () => {
    let n = 0;
    while (creating) {
      for (const e of (await c.call('Readdirp', { loc: loc('/racing') })).entries ?? []) seen.push({ path: `/racing/${e.name}`, gfid: e.iatt.gfid });
      n++;
    }
    return n;
  })();
  for (let i = 0; i < 100; i++) {
    const batch = Array.from({ length: 5 }, (_, k) => `/racing/f${i * 5 + k}`);
    await Promise.all(batch.map(async (p) => {
      const gfid = newGfid();
      made.set(p, gfid);
      const lookups = Promise.all([1, 2, 3].map(async () => {
        const r = await c.call('Lookup', { loc: loc(p) }).catch(() => undefined);
        if (r) seen.push({ path: p, gfid: r.iatt.gfid });
      }));
      const r = await c.call('Create', { loc: loc(p), flags: O_RDWR, args: args(gfid) });
      await lookups;
      await c.call('Release', { fd: r.fd });
    }));
  }
  creating = false;
  t.true((await listing) > 0);
  const wrong = seen.filter((x) => x.gfid !== made.get(x.path));
  t.deepEqual(wrong, [], `${wrong.length} of ${seen.length} answers named another gfid`);
  for (const [p, gfid] of made) t.is(gfidFromBytes((await getAttribute(join(d.brick, p), 'trusted.gfs.gfid'))!), gfid, p);
});

test('a request\'s unlock lets its inode lock go once the operation is done, also when the operation fails', async (t) => {
  const b = await startBrickd();
  const [x, y] = [await sessionOf(b), await sessionOf(b)];
  t.teardown(async () => { await x.fini(); await y.fini(); });
  const lock = (type: 'read' | 'write' | 'unlock', owner: string) => ({ type, start: 1n << 50n, len: 1n, pid: 0, owner });
  const root = { path: '/' };
  const writerGets = () => sessionErrno(y.inodelk(ROOT_CTX, root, 'setlk', lock('write', 'w')).then(() => y.inodelk(ROOT_CTX, root, 'setlk', lock('unlock', 'w'))));
  // Taken in one call (lock), let go in a later one (unlock) that fails: the lock goes anyway.
  await x.stat({ ...ROOT_CTX, lock: { loc: root, lock: lock('read', 'm1') } }, root);
  t.is(await writerGets(), 'EAGAIN', 'the compound call took the lock');
  t.is(await sessionErrno(x.stat({ ...ROOT_CTX, unlock: { loc: root, lock: lock('unlock', 'm1') } }, { path: '/no-such-file' })), 'ENOENT');
  t.is(await writerGets(), 'no error', 'let go after the failed stat');
  // And after one that works.
  await x.inodelk(ROOT_CTX, root, 'setlk', lock('read', 'm2'));
  t.is(await writerGets(), 'EAGAIN');
  await x.stat({ ...ROOT_CTX, unlock: { loc: root, lock: lock('unlock', 'm2') } }, root);
  t.is(await writerGets(), 'no error');
});

test('a setattr sent behind writes not yet answered lands after them (after_writes): the times and mode it set stay, and the data is all there', async (t) => {
  const b = await startBrickd();
  const [x, y] = [await sessionOf(b), await sessionOf(b)];
  t.teardown(async () => { await x.fini(); await y.fini(); });
  const size = 8 * 1024 * 1024;
  for (let round = 1; round <= 4; round++) {
    const path = `/behind-${round}`;
    const gfid = newGfid();
    const { fd } = await x.create(ROOT_CTX, { path }, constants.O_RDWR, { mode: 0o100644, umask: 0, gfid });
    // As write-behind at close: 16 writes leave, and the setattr right behind them on the same session.
    const piece = size / 16;
    const marks = Array.from({ length: 16 }, () => new WriteMark());
    let written = 0;
    const ws = marks.map((mark, k) => x.write({ ...ROOT_CTX, written: mark }, fd, k * piece, Buffer.alloc(piece, round + k)).then((n) => { written++; return n; }));
    const mtime = BigInt(1_000_000_000 + round) * 1_000_000_000n + 123n;
    const iatt = await x.setattr({ ...ROOT_CTX, after: marks }, { path, gfid }, { mode: 0o600, atime: mtime, mtime });
    // It did not wait for the writes' answers to leave (done() was never called), yet the brick
    // ran it after them: no write's own mtime overwrote it.
    t.is(written, 16, 'the brick answered every write before the setattr');
    t.deepEqual(await Promise.all(ws), marks.map(() => piece));
    for (const m of marks) m.done();
    t.is(iatt.mtime, mtime, 'the setattr\'s answer');
    const st = await stat(join(b.brick, path), { bigint: true });
    t.is(st.mtimeNs, mtime, `${path}: mtime on the brick`);
    t.is(Number(st.mode) & 0o7777, 0o600);
    t.is(st.size, BigInt(size));
    await x.release(ROOT_CTX, fd);
  }
  // A write this session never sent (it went through another one): the setattr waits for it to end.
  const path = '/elsewhere';
  const gfid = newGfid();
  const { fd } = await y.create(ROOT_CTX, { path }, constants.O_RDWR, { mode: 0o100644, umask: 0, gfid });
  const mark = new WriteMark();
  const w = y.write({ ...ROOT_CTX, written: mark }, fd, 0, Buffer.alloc(size, 7));
  let set = false;
  const mtime = 1_500_000_000n * 1_000_000_000n;
  const s = x.setattr({ ...ROOT_CTX, after: [mark] }, { path, gfid }, { mtime }).then((r) => { set = true; return r; });
  await w;
  for (let i = 0; i < 20; i++) await new Promise((res) => setImmediate(res));
  t.false(set, 'still waiting for the write it follows to end');
  mark.done();
  t.is((await s).mtime, mtime);
  t.is((await stat(join(b.brick, path), { bigint: true })).mtimeNs, mtime);
  await y.release(ROOT_CTX, fd);
});

test('inode locks follow the inode, not its name: across renames, an unlink and a directory made in a file\'s place', async (t) => {
  const b = await startBrickd();
  const [x, y] = [await sessionOf(b), await sessionOf(b)];
  t.teardown(async () => { await x.fini(); await y.fini(); });
  const lock = (type: 'write' | 'unlock', owner: string) => ({ type, start: 1n << 50n, len: 1n, pid: 0, owner });
  const make = async (path: string) => { const { fd } = await x.create(ROOT_CTX, { path }, constants.O_RDWR, { mode: 0o100644, umask: 0, gfid: newGfid() }); await x.release(ROOT_CTX, fd); };
  const yGets = async (path: string) => {
    const e = await sessionErrno(y.inodelk(ROOT_CTX, { path }, 'setlk', lock('write', 'y')));
    if (e === 'no error') await y.inodelk(ROOT_CTX, { path }, 'setlk', lock('unlock', 'y'));
    return e;
  };
  await make('/a');
  await make('/c');
  await x.inodelk(ROOT_CTX, { path: '/a' }, 'setlk', lock('write', 'x')); // inode A, by its name /a
  t.is(await yGets('/a'), 'EAGAIN');
  await x.rename(ROOT_CTX, { path: '/a' }, { path: '/moved' });
  t.is(await yGets('/moved'), 'EAGAIN', 'A under its new name is still locked');
  await x.rename(ROOT_CTX, { path: '/moved' }, { path: '/a' });
  t.is(await yGets('/a'), 'EAGAIN', 'and back under its old one');
  await x.rename(ROOT_CTX, { path: '/c' }, { path: '/a' }); // C replaces A at /a
  t.is(await yGets('/a'), 'no error', '/a names C now, which nobody locked');
  await make('/b');
  await x.inodelk(ROOT_CTX, { path: '/b' }, 'setlk', lock('write', 'x'));
  await x.unlink(ROOT_CTX, { path: '/b' });
  await x.mkdir(ROOT_CTX, { path: '/b' }, { mode: 0o755, umask: 0, gfid: newGfid() });
  t.is(await yGets('/b'), 'no error', 'a directory made after the unlink is another inode');
});

test('a setattr relying on a write\'s lock and marks (after_marks_of) goes before the write\'s answer and runs after it, only if they were made', async (t) => {
  const b = await startBrickd();
  const [x, y] = [await sessionOf(b), await sessionOf(b)];
  t.teardown(async () => { await x.fini(); await y.fini(); });
  const lock = (type: 'read' | 'write' | 'unlock', owner: string) => ({ type, start: 1n << 50n, len: 1n, pid: 0, owner });
  const dirty = (n: number) => { const v = Buffer.alloc(12); v.writeInt32BE(n, 4); return v; };
  const size = 4 * 1024 * 1024;
  const fresh = async (path: string) => {
    const gfid = newGfid();
    const { fd } = await x.create(ROOT_CTX, { path }, constants.O_RDWR, { mode: 0o100644, umask: 0, gfid });
    return { loc: { path, gfid }, fd };
  };
  // The marks made: the setattr leaves with the write still unanswered and lands after it.
  const a = await fresh('/marked');
  const mark = new WriteMark();
  let answered = false;
  const w = x.write({ ...ROOT_CTX, written: mark, lock: { loc: a.loc, lock: lock('read', 'm1') }, pre: [{ loc: a.loc, name: 'trusted.gfs.afr.dirty', add: dirty(1) }] }, a.fd, 0, Buffer.alloc(size, 1))
    .then((n) => { answered = true; return n; });
  const mtime = 1_700_000_000n * 1_000_000_000n + 7n;
  const iatt = await x.setattr({ ...ROOT_CTX, marksOf: mark }, a.loc, { mode: 0o600, mtime });
  t.true(answered, 'the brick answered the write first');
  t.is(await w, size);
  mark.done();
  t.is(iatt.mtime, mtime);
  const st = await stat(join(b.brick, 'marked'), { bigint: true });
  t.is(st.mtimeNs, mtime, 'the write\'s own mtime did not overwrite it');
  t.is(Number(st.mode) & 0o7777, 0o600);
  t.is(st.size, BigInt(size));
  t.deepEqual([...(await getAttribute(join(b.brick, 'marked'), 'trusted.gfs.afr.dirty'))!], [...dirty(1)]);
  // A heal holds the inode: the write's lock failed, so nothing rode on it and the mode stays.
  const c = await fresh('/busy');
  await y.inodelk(ROOT_CTX, c.loc, 'setlk', lock('write', 'healer'));
  const busyMark = new WriteMark();
  const bw = x.write({ ...ROOT_CTX, written: busyMark, lock: { loc: c.loc, lock: lock('read', 'm2') }, pre: [{ loc: c.loc, name: 'trusted.gfs.afr.dirty', add: dirty(1) }] }, c.fd, 0, Buffer.alloc(4096, 2));
  const refused = await x.setattr({ ...ROOT_CTX, marksOf: busyMark }, c.loc, { mode: 0o600 }).then(() => undefined, (e: unknown) => e as FsError & { preFailed?: boolean });
  t.is(refused?.errno, 'EAGAIN');
  t.true(refused?.preFailed, 'refused as its own pre-op would be: the caller sets up its own');
  t.is(await sessionErrno(bw), 'EAGAIN');
  busyMark.done();
  t.is((await stat(join(b.brick, 'busy'))).mode & 0o7777, 0o644, 'the setattr did not run');
  // A write sent on another session: this one cannot ride on it, and says so without sending.
  const other = new WriteMark();
  const ow = y.write({ ...ROOT_CTX, written: other }, (await y.open(ROOT_CTX, c.loc, constants.O_RDWR)), 0, Buffer.alloc(10, 3)).finally(() => other.done());
  const unsent = await x.setattr({ ...ROOT_CTX, marksOf: other }, c.loc, { mode: 0o600 }).then(() => undefined, (e: unknown) => e as FsError & { preFailed?: boolean });
  await ow;
  t.is(unsent?.errno, 'EAGAIN');
  t.true(unsent?.preFailed);
  t.is((await stat(join(b.brick, 'busy'))).mode & 0o7777, 0o644);
  await y.inodelk(ROOT_CTX, c.loc, 'setlk', lock('unlock', 'healer'));
  await x.release(ROOT_CTX, a.fd);
  await x.release(ROOT_CTX, c.fd);
});

test('replicate over two real bricks: a new file\'s chmod and utimes at close leave with its data, before the writes are answered, and nothing stays pending', async (t) => {
  const { b1, b2, clients, replicaOf } = await replicaPair();
  const children = await clients();
  // Per brick, in order: a write answered, a setattr sent.
  const events: string[][] = [[], []];
  children.forEach((c, i) => {
    const write = c.write.bind(c);
    const setattr = c.setattr.bind(c);
    c.write = (...a: Parameters<Xlator['write']>) => write(...a).then((n) => { events[i].push('write answered'); return n; });
    c.setattr = (...a: Parameters<Xlator['setattr']>) => { events[i].push(a[0].marksOf ? 'setattr riding' : 'setattr'); return setattr(...a); };
  });
  const locked: string[] = [];
  for (const c of children) {
    const inodelk = c.inodelk.bind(c);
    c.inodelk = (...a: Parameters<Xlator['inodelk']>) => { locked.push(a[1].path); return inodelk(...a); };
  }
  const mount = await replicaOf(children);
  t.teardown(() => mount.fini());
  await mount.mkdir(USER, { path: '/d' }, { mode: 0o755, umask: 0, gfid: newGfid() });
  await new Promise((r) => setTimeout(r, 300)); // the directory's entry transaction is over
  const mtime = 1_650_000_000_000_000_001n;
  for (let k = 0; k < 3; k++) {
    const path = `/d/f${k}`;
    const gfid = newGfid();
    const { fd } = await mount.create(USER, { path }, O_RDWR, args(gfid));
    // As write-behind sends a small file's data and setattr-behind's held change at close.
    const mark = new WriteMark();
    const w = mount.write({ ...USER, written: mark }, fd, 0, Buffer.alloc(10_000, k));
    await mount.setattr({ ...USER, after: [mark] }, { path, gfid }, { mode: 0o600, atime: mtime, mtime: mtime + BigInt(k) });
    t.is(await w, 10_000);
    mark.done();
    await mount.flush(USER, fd);
    await mount.release(USER, fd);
  }
  for (const [i, e] of events.entries()) {
    t.deepEqual(e, ['setattr riding', 'write answered', 'setattr riding', 'write answered', 'setattr riding', 'write answered'], `brick ${i}: each setattr left before its write's answer`);
  }
  t.deepEqual(locked.filter((p) => p.startsWith('/d/')), [], 'no inode lock call of a file: its metadata lock rode on its data calls');
  await new Promise((r) => setTimeout(r, 200));
  for (const b of [b1, b2]) {
    for (let k = 0; k < 3; k++) {
      const host = join(b.brick, `d/f${k}`);
      const st = await stat(host, { bigint: true });
      t.is(Number(st.mode & 0o777n), 0o600, `mode of ${host}`);
      t.is(st.mtimeNs, mtime + BigInt(k), `mtime of ${host}`);
      t.is(st.size, 10_000n);
      for (const key of ['dirty', 'testvol-client-0', 'testvol-client-1']) {
        const v = await getAttribute(host, `trusted.gfs.afr.${key}`);
        t.deepEqual(v ? [...v] : [], v ? new Array(12).fill(0) : [], `${key} of ${host}`);
      }
    }
  }
  // The metadata and data locks are gone: another client takes the inode exclusively at once.
  const other = await sessionOf(b2);
  t.teardown(() => other.fini());
  await other.inodelk(ROOT_CTX, { path: '/d/f2' }, 'setlk', { type: 'write', start: 1n << 50n, len: 1n, pid: 0, owner: 'x' });
});

test('replicate over two real bricks: chmod and utimes of a file being written join its data transaction (no inode lock calls of their own), another client\'s heals wait, nothing stays pending', async (t) => {
  const { b1, b2, clients, replicaOf } = await replicaPair();
  const children = await clients();
  const inodelks = countInodelks(children);
  // What each call to the bricks carried: the lock it took first, the counters it set.
  const carried: { op: string; lock: boolean; pre: string[] }[] = [];
  for (const c of children) {
    for (const op of ['write', 'setattr'] as const) {
      const orig = (c[op] as (...a: unknown[]) => Promise<unknown>).bind(c);
      (c as unknown as Record<string, unknown>)[op] = (ctx: Ctx, ...rest: unknown[]) => {
        carried.push({ op, lock: !!ctx.lock, pre: (ctx.pre ?? []).map((p) => [...p.add].join(',')) });
        return orig(ctx, ...rest);
      };
    }
  }
  const [mount, shd] = [await replicaOf(children), await replicaOf()];
  t.teardown(async () => { await mount.fini(); await shd.fini(); });
  await mount.mkdir(USER, { path: '/d' }, { mode: 0o755, umask: 0, gfid: newGfid() });
  await new Promise((r) => setTimeout(r, 200)); // the directory's entry transaction is over
  const before = inodelks();
  let changing = true;
  let heals = 0;
  const healing = (async () => {
    while (changing) { await shd.heal('/d/w', true).catch(() => undefined); heals++; }
  })();
  const gfid = newGfid();
  const { fd } = await mount.create(USER, { path: '/d/w' }, O_RDWR, args(gfid));
  const mtime = 1_600_000_000_123_456_789n;
  const modes = [0o600, 0o640, 0o604, 0o660];
  for (let i = 0; i < 40; i++) {
    await mount.write(USER, fd, i * 4096, Buffer.alloc(4096, i));
    await mount.setattr(USER, { path: '/d/w', gfid }, { mode: modes[i % modes.length], mtime: mtime + BigInt(i) });
  }
  await mount.flush(USER, fd);
  await mount.release(USER, fd);
  const lockCalls = inodelks() - before;
  changing = false;
  await healing;
  await mount.fini();
  // The create's entry transaction locks and unlocks /d once on each brick; the file's own
  // metadata lock rides on its data calls.
  t.true(lockCalls <= 4, `${lockCalls} inodelk calls for one file with 40 chmods`);
  t.true(heals > 0);
  // A file created through this fd: its first write to each brick took the metadata lock and
  // raised the data and metadata dirty counters at once; the chmods carried nothing.
  const firstWrites = carried.filter((c) => c.op === 'write' && c.pre.length);
  t.is(firstWrites.length, 2, 'one write per brick carried the pre-op');
  for (const w of firstWrites) {
    t.true(w.lock, 'with the metadata lock');
    t.deepEqual(w.pre, ['0,0,0,1,0,0,0,1,0,0,0,0'], 'dirty +1 for data and metadata, in one update');
  }
  t.deepEqual(carried.filter((c) => c.op === 'setattr' && (c.lock || c.pre.length)), [], 'no chmod or utimes took a lock or set a counter');
  for (const b of [b1, b2]) {
    const st = await stat(join(b.brick, 'd/w'), { bigint: true });
    t.is(Number(st.mode & 0o777n), modes[39 % modes.length], `the mode on ${b.brick}`);
    t.is(st.mtimeNs, mtime + 39n, `mtime on ${b.brick}`);
    t.is(st.size, 40n * 4096n);
    for (const k of ['dirty', 'testvol-client-0', 'testvol-client-1']) {
      const v = await getAttribute(join(b.brick, 'd/w'), `trusted.gfs.afr.${k}`);
      t.deepEqual(v ? [...v] : [], v ? new Array(12).fill(0) : [], `${k} on ${b.brick}`);
    }
  }
  // The metadata lock is gone: another client takes the inode exclusively at once.
  const other = await sessionOf(b1);
  t.teardown(() => other.fini());
  await other.inodelk(ROOT_CTX, { path: '/d/w' }, 'setlk', { type: 'write', start: 1n << 50n, len: 1n, pid: 0, owner: 'x' });
});

test('replicate over real bricks: a brick that does not say it lets a request\'s unlock go (one from before that) gets metadata transactions of their own, and no lock stays held', async (t) => {
  const { b1, b2, clients, replicaOf } = await replicaPair();
  const children = await clients();
  t.true((children[0] as unknown as { unlockCompound: boolean }).unlockCompound, 'a brick of this release says it does (Ping)');
  Object.defineProperty(children[1], 'unlockCompound', { value: false });
  const inodelks = countInodelks(children);
  const mount = await replicaOf(children);
  t.teardown(() => mount.fini());
  const gfid = newGfid();
  const { fd } = await mount.create(USER, { path: '/f' }, O_RDWR, args(gfid));
  await new Promise((r) => setTimeout(r, 300)); // the root's entry transaction is over
  const before = inodelks();
  for (let i = 0; i < 3; i++) {
    await mount.write(USER, fd, i * 4096, Buffer.alloc(4096, i));
    await mount.setattr(USER, { path: '/f', gfid }, { mode: 0o600 + i });
  }
  await mount.release(USER, fd);
  t.true(inodelks() - before >= 6, `${inodelks() - before} inodelk calls: each chmod locked and unlocked the inode itself`);
  for (const b of [b1, b2]) t.is((await stat(join(b.brick, 'f'))).mode & 0o777, 0o602, `mode on ${b.brick}`);
  const other = await sessionOf(b2);
  t.teardown(() => other.fini());
  await other.inodelk(ROOT_CTX, { path: '/f' }, 'setlk', { type: 'write', start: 1n << 50n, len: 1n, pid: 0, owner: 'x' });
});

test('replicate over two real bricks: a chmod that fails on one brick inside a data transaction leaves that brick blamed for metadata only, and a heal levels it', async (t) => {
  const { b1, b2, clients, replicaOf } = await replicaPair();
  const children = await clients();
  let failing = false;
  const orig = children[1].setattr.bind(children[1]);
  children[1].setattr = (...a: Parameters<Xlator['setattr']>) => (failing ? Promise.reject(new FsError('EIO', 'injected')) : orig(...a));
  const mount = await replicaOf(children);
  t.teardown(() => mount.fini());
  const gfid = newGfid();
  const { fd } = await mount.create(USER, { path: '/f' }, O_RDWR, args(gfid));
  await mount.write(USER, fd, 0, Buffer.from('data'));
  await mount.setattr(USER, { path: '/f', gfid }, { mode: 0o640 });
  failing = true;
  await mount.setattr(USER, { path: '/f', gfid }, { mode: 0o600 }); // one brick took it: no error
  failing = false;
  await mount.write(USER, fd, 4, Buffer.from('more'));
  await mount.flush(USER, fd);
  await mount.release(USER, fd);
  await mount.fini();
  const counters = async (b: Daemon, k: string) => [...((await getAttribute(join(b.brick, 'f'), `trusted.gfs.afr.${k}`)) ?? Buffer.alloc(12))];
  const meta1 = (await counters(b1, 'testvol-client-1')).slice(4, 8);
  t.notDeepEqual(meta1, [0, 0, 0, 0], 'the first brick blames the second for metadata');
  t.deepEqual((await counters(b1, 'testvol-client-1')).slice(0, 4), [0, 0, 0, 0], 'not for data: both wrote it');
  t.deepEqual(await counters(b1, 'testvol-client-0'), new Array(12).fill(0));
  t.deepEqual(await counters(b1, 'dirty'), new Array(12).fill(0), 'the post-op lowered the dirty counter');
  t.is((await stat(join(b1.brick, 'f'))).mode & 0o777, 0o600);
  t.is((await stat(join(b2.brick, 'f'))).mode & 0o777, 0o640);
  const healer = await replicaOf();
  t.teardown(() => healer.fini());
  await healer.heal('/f', true);
  for (const b of [b1, b2]) {
    t.is((await stat(join(b.brick, 'f'))).mode & 0o777, 0o600, `mode on ${b.brick} after the heal`);
    t.is(await readFile(join(b.brick, 'f'), 'utf8'), 'datamore');
    for (const k of ['dirty', 'testvol-client-0', 'testvol-client-1']) t.deepEqual(await counters(b, k), new Array(12).fill(0), `${k} on ${b.brick}`);
  }
});

test('replicate over two real bricks: while both take every operation a file and its directory hold one changelog xattr (dirty, back at zero) and no blame; with one brick down the other blames it by name', async (t) => {
  const { b1, b2, replicaOf } = await replicaPair();
  const mount = await replicaOf();
  t.teardown(() => mount.fini());
  const changelog = async (host: string) => {
    const out: Record<string, number[]> = {};
    for (const name of await listAttributes(host)) if (name.startsWith('trusted.gfs.afr.')) out[name] = [...((await getAttribute(host, name)) ?? [])];
    return out;
  };
  const zeros = new Array(12).fill(0);
  await mount.mkdir(USER, { path: '/cl' }, { mode: 0o755, umask: 0, gfid: newGfid() });
  const gfid = newGfid();
  const { fd } = await mount.create(USER, { path: '/cl/f' }, O_RDWR, args(gfid));
  await mount.write(USER, fd, 0, Buffer.from('hello'));
  await mount.setattr(USER, { path: '/cl/f', gfid }, { mode: 0o600 });
  await mount.release(USER, fd);
  await mount.lookup(USER, { path: '/cl/f' }); // waits for the post-ops
  await mount.lookup(USER, { path: '/cl' });
  for (const b of [b1, b2]) {
    t.deepEqual(await changelog(join(b.brick, 'cl/f')), { 'trusted.gfs.afr.dirty': zeros }, `the file on ${b.brick}`);
    t.deepEqual(await changelog(join(b.brick, 'cl')), { 'trusted.gfs.afr.dirty': zeros }, `the directory on ${b.brick}`);
  }
  b2.proc.kill('SIGTERM');
  await b2.exited;
  const g2 = newGfid();
  const made = await mount.create(USER, { path: '/cl/g' }, O_RDWR, args(g2));
  await mount.write(USER, made.fd, 0, Buffer.from('while one brick is down'));
  await mount.release(USER, made.fd);
  await mount.lookup(USER, { path: '/cl/g' });
  await mount.lookup(USER, { path: '/cl' });
  const blamed = (type: number) => { const b = Buffer.alloc(12); b.writeInt32BE(1, type * 4); return [...b]; };
  t.deepEqual(await changelog(join(b1.brick, 'cl/g')), { 'trusted.gfs.afr.dirty': zeros, 'trusted.gfs.afr.testvol-client-1': blamed(0) }, 'the up brick blames the down one for the data');
  const dir = await changelog(join(b1.brick, 'cl'));
  t.deepEqual(dir['trusted.gfs.afr.dirty'], zeros);
  t.true(Buffer.from(dir['trusted.gfs.afr.testvol-client-1'] ?? []).readInt32BE(8) > 0, 'and for the name it missed');
  t.false('trusted.gfs.afr.testvol-client-0' in dir, 'a brick never blames itself by name');
});

test('replicate over real bricks: a truncate by path waits while a data heal holds the file, then cuts every copy', async (t) => {
  const { b1, b2, replicaOf } = await replicaPair();
  const mount = await replicaOf();
  t.teardown(() => mount.fini());
  const gfid = newGfid();
  const { fd } = await mount.create(USER, { path: '/tr' }, O_RDWR, { ...args(gfid), mode: 0o100644 });
  await mount.write(USER, fd, 0, Buffer.alloc(64 * 1024, 7));
  await mount.release(USER, fd);
  // A healer's data lock on the first brick's copy, as a data heal takes it (on an fd, the
  // transaction range, exclusive).
  const healer = await sessionOf(b1);
  t.teardown(() => healer.fini());
  const hfd = await healer.open(ROOT_CTX, { path: '/tr', gfid }, O_RDWR);
  const healLock = { type: 'write' as const, start: 1n << 50n, len: 1n, pid: 0, owner: 'a-healer' };
  await healer.lk(ROOT_CTX, hfd, 'setlk', healLock);
  let cut = false;
  const truncated = mount.truncate(USER, { path: '/tr', gfid }, 100).then((iatt) => { cut = true; return iatt; });
  await new Promise((r) => setTimeout(r, 500));
  t.false(cut, 'the truncate waits for the heal');
  for (const b of [b1, b2]) t.is((await stat(join(b.brick, 'tr'))).size, 64 * 1024, `${b.brick} untouched while the heal holds the file`);
  await healer.lk(ROOT_CTX, hfd, 'setlk', { ...healLock, type: 'unlock' });
  t.is(Number((await truncated).size), 100);
  for (const b of [b1, b2]) {
    t.is((await stat(join(b.brick, 'tr'))).size, 100, `size on ${b.brick}`);
    for (const k of ['dirty', 'testvol-client-0', 'testvol-client-1']) {
      t.deepEqual([...((await getAttribute(join(b.brick, 'tr'), `trusted.gfs.afr.${k}`)) ?? Buffer.alloc(12))], new Array(12).fill(0), `${k} on ${b.brick}`);
    }
  }
});

/** What a protocol/client's Session stream carries each way, as message counts (a carrier counts its
 *  requests or replies), spied on from now on. */
function spySession(x: Xlator): { out: number[]; replies: number[] } {
  const s = (x as unknown as { session: { stream: grpc.ClientDuplexStream<Buffer, { batch?: unknown[] }> } }).session.stream;
  const Session = brickService().service.Session;
  const seen = { out: [] as number[], replies: [] as number[] };
  const write = s.write.bind(s);
  s.write = ((m: Buffer, cb?: () => void) => {
    seen.out.push((Session.requestDeserialize(m) as { batch: unknown[] }).batch.length || 1);
    return write(m, cb);
  }) as typeof s.write;
  s.on('data', (r: { batch?: unknown[] }) => seen.replies.push(r.batch?.length || 1));
  return seen;
}

/** n 4 KiB writes at once at scattered offsets of a new file through x; checks the brick's copy. */
async function scatteredWrites(t: ExecutionContext, b: Daemon, x: Xlator, path: string, n: number): Promise<{ out: number[]; replies: number[] }> {
  const { fd } = await x.create(ROOT_CTX, { path }, constants.O_RDWR, { mode: 0o100644, umask: 0, gfid: newGfid() });
  const seen = spySession(x);
  const page = (i: number) => Buffer.alloc(4096, (i * 7) % 251);
  const order = Array.from({ length: n }, (_, i) => (i * 163) % n); // a random writer's offsets
  t.deepEqual(await Promise.all(order.map((i) => x.write(ROOT_CTX, fd, i * 4096, page(i)))), order.map(() => 4096));
  const onDisk = await readFile(join(b.brick, path));
  t.is(onDisk.length, n * 4096);
  for (let i = 0; i < n; i++) if (!onDisk.subarray(i * 4096, (i + 1) * 4096).equals(page(i))) t.fail(`${path}: page ${i} on the brick`);
  const back = await Promise.all(Array.from({ length: 8 }, (_, i) => x.read(ROOT_CTX, fd, i * 4096, 4096)));
  t.true(back.every((d, i) => d.equals(page(i))), 'reads sent at once come back, each its own');
  await x.release(ROOT_CTX, fd);
  return seen;
}

test('requests sent at once travel in carrier messages both ways (session-batch): each is answered, and the bytes land where they were written', async (t) => {
  const b = await startBrickd();
  const x = await sessionOf(b);
  t.teardown(() => x.fini());
  const n = 400;
  const { out, replies } = await scatteredWrites(t, b, x, '/batched', n);
  t.is(out.reduce((a, c) => a + c, 0), n + 8, 'every request went, once');
  t.true(out.length < n / 2, `${n} writes in ${out.length} messages`);
  t.true(replies.some((c) => c > 1), `replies in carriers (${replies.length} messages)`);
  t.is(replies.reduce((a, c) => a + c, 0), n + 8);
  // A brick that does not name 'session-batch' (one from before it) gets one message per request.
  const y = await sessionOf(b, 'older');
  t.teardown(() => y.fini());
  (y as unknown as { features: Set<string> }).features.delete('session-batch');
  const old = await scatteredWrites(t, b, y, '/one-by-one', 100);
  t.true(old.out.every((c) => c === 1), 'no carrier to that brick');
  t.is(old.out.length, 100 + 8);
});

test('a brick answers a carrier\'s requests one message each to a client that does not ask for carriers (an older mount)', async (t) => {
  const b = await startBrickd();
  const c = new BrickClient(b.port, b.volumeId, b.secret);
  t.teardown(() => c.close());
  const call = c.raw.Session(ctxToMetadata(ROOT_CTX, b.volumeId, b.secret)) as grpc.ClientDuplexStream<unknown, { id: number; stat?: { iatt: { mode: number } }; errno: string }>;
  const got: { id: number; errno: string; dir: boolean }[] = [];
  const all = new Promise<void>((res) => call.on('data', (r) => { got.push({ id: Number(r.id), errno: r.errno, dir: ((r.stat?.iatt.mode ?? 0) & 0o170000) === 0o040000 }); if (got.length === 3) res(); }));
  call.write({ batch: [{ id: 1, stat: { loc: { path: '/' } } }, { id: 2, stat: { loc: { path: '/nope' } } }, { id: 3, stat: { loc: { path: '/' } } }] });
  await all;
  call.end();
  t.deepEqual(got.sort((p, q) => p.id - q.id), [{ id: 1, errno: '', dir: true }, { id: 2, errno: 'ENOENT', dir: false }, { id: 3, errno: '', dir: true }]);
});
