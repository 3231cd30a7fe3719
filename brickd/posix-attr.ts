// Attribute operations: setattr, statfs and extended attributes, including xattrop (atomic
// elementwise addition of big-endian int32 counters, replicate's changelog primitive).
import { chmod, lchown, lstat, statfs } from 'node:fs/promises';
import { FsError } from '../common/errors.js';
import { isGfid } from '../common/gfid.js';
import type { Iatt, SetattrArgs, Statfs } from '../common/types.js';
import type { Brick } from './brick.js';
import { GFID_XATTR, iattOf } from './iatt.js';
import { truncateOp } from './posix-file.js';
import { setTimes } from './posix-special.js';
import { sys } from './syscalls.js';
import { xget, xlist, xremove, xset } from './xattr.js';
import { AFR_PREFIX, INDEX_XATTR } from './heal-index.js';
import type { IndexWrite } from './io-threads.js';

export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

export async function setattrOp(b: Brick, loc: { path: string }, attrs: SetattrArgs): Promise<Iatt> {
  const hp = await b.resolve(loc.path);
  if (attrs.size === undefined && sys) {
    const { uid, gid, mode, atime, mtime } = attrs;
    return (await b.io.setattr(hp.host, loc.path, { uid, gid, mode, atime, mtime })) ?? iattOf(hp.host, hp.isRoot);
  }
  // Steps that cannot disturb each other go at once (each step is a trip to the thread pool): the
  // owner (lchown never follows a link) alongside the lstat that tells a symlink, whose mode
  // cannot change; then the mode alongside the times (chmod leaves times, utimensat the mode).
  // The owner goes before the mode, as a chown clears set-id bits and a mode given with it is the
  // one wanted after; a size change before the times, which it would move.
  const chown = attrs.uid !== undefined || attrs.gid !== undefined ? lchown(hp.host, attrs.uid ?? -1, attrs.gid ?? -1) : undefined;
  const [st] = await Promise.all([lstat(hp.host), chown]);
  if (attrs.mode !== undefined && st.isSymbolicLink()) throw new FsError('EOPNOTSUPP', `cannot change the mode of symlink '${loc.path}'`);
  if (attrs.size !== undefined) await truncateOp(b, loc, attrs.size);
  await Promise.all([
    attrs.mode !== undefined ? chmod(hp.host, attrs.mode & 0o7777) : undefined,
    // To the nanosecond; the time not asked for stays exactly as it was (UTIME_OMIT).
    attrs.atime !== undefined || attrs.mtime !== undefined ? setTimes(hp.host, attrs.atime ?? 'omit', attrs.mtime ?? 'omit') : undefined,
  ]);
  return iattOf(hp.host, hp.isRoot);
}

export async function statfsOp(b: Brick): Promise<Statfs> {
  const s = await statfs(b.config.realRoot, { bigint: true });
  return {
    bsize: Number(s.bsize), frsize: Number(s.bsize), blocks: s.blocks, bfree: s.bfree, bavail: s.bavail,
    files: s.files, ffree: s.ffree, namemax: 255,
  };
}

function checkName(name: string): void {
  if (!name || name.includes('\0') || Buffer.byteLength(name) > 255) throw new FsError('EINVAL', `bad xattr name '${name}'`);
  if (!/^(user|trusted|security|system)\./.test(name)) throw new FsError('EOPNOTSUPP', `xattr name '${name}' has no known namespace`);
}

export async function getxattrOp(b: Brick, loc: { path: string }, name: string): Promise<Buffer> {
  checkName(name);
  // A virtual xattr of the root: the heal index, as JSON [{gfid, path}].
  if (name === INDEX_XATTR && loc.path === '/') return Buffer.from(JSON.stringify(await b.index.list()));
  const hp = await b.resolve(loc.path);
  await lstat(hp.host); // ENOENT for a missing file (the binding reads that as "no value")
  const v = await xget(hp.host, name);
  if (!v) throw new FsError('ENODATA', `'${loc.path}' has no xattr ${name}`);
  return v;
}

export async function setxattrOp(b: Brick, loc: { path: string }, name: string, value: Buffer, flags: number): Promise<void> {
  checkName(name);
  if (flags & ~(XATTR_CREATE | XATTR_REPLACE) || flags === (XATTR_CREATE | XATTR_REPLACE)) {
    throw new FsError('EINVAL', `bad setxattr flags ${flags}`);
  }
  const hp = await b.resolve(loc.path);
  await lstat(hp.host);
  await b.xattrMutex.run(`${hp.host}\0${name}`, async () => {
    const have = await xget(hp.host, name);
    if (name === GFID_XATTR) {
      if (have) throw new FsError('EEXIST', `'${loc.path}' already has a gfid; a gfid never changes`);
      if (value.length !== 16) throw new FsError('EINVAL', 'a gfid xattr holds 16 bytes');
    }
    if (flags & XATTR_CREATE && have) throw new FsError('EEXIST', `'${loc.path}' already has xattr ${name}`);
    if (flags & XATTR_REPLACE && !have) throw new FsError('ENODATA', `'${loc.path}' has no xattr ${name}`);
    await xset(hp.host, name, value);
  });
}

export async function listxattrOp(b: Brick, loc: { path: string }): Promise<string[]> {
  const hp = await b.resolve(loc.path);
  return xlist(hp.host);
}

export async function removexattrOp(b: Brick, loc: { path: string }, name: string): Promise<void> {
  checkName(name);
  if (name === GFID_XATTR) throw new FsError('EPERM', 'the gfid xattr cannot be removed');
  const hp = await b.resolve(loc.path);
  await lstat(hp.host);
  await b.xattrMutex.run(`${hp.host}\0${name}`, async () => {
    if (!(await xget(hp.host, name))) throw new FsError('ENODATA', `'${loc.path}' has no xattr ${name}`);
    await xremove(hp.host, name);
  });
}

export async function xattropOp(b: Brick, loc: { path: string }, name: string, add: Buffer): Promise<Buffer> {
  return (await xattropManyOp(b, loc, [{ name, add }]))[0];
}

/** Several xattrops on one inode (a compound request's pre-op: one per child key), under the
 *  mutex of each name: one trip to an io-thread and one heal-index update for them all. */
export async function xattropManyOp(b: Brick, loc: { path: string; gfid?: string }, adds: readonly { name: string; add: Buffer }[]): Promise<Buffer[]> {
  for (const { name, add } of adds) {
    checkName(name);
    if (name === GFID_XATTR) throw new FsError('EPERM', 'xattrop on the gfid xattr');
    if (add.length === 0 || add.length % 4 !== 0) throw new FsError('EINVAL', `xattrop needs a multiple of 4 bytes, got ${add.length}`);
  }
  const hp = await b.resolve(loc.path);
  const indexed = !adds.some(({ name }) => name.startsWith(AFR_PREFIX)) || b.index.knows(hp.host, loc.path);
  const xattrop = (entry?: IndexWrite) => b.xattrMutex.runAll(adds.map(({ name }) => `${hp.host}\0${name}`), () => b.io.xattrop(hp.host, loc.path, adds, !indexed, entry));
  // An inode the index does not know, named with its gfid (a pre-op): its entry in the same job.
  const { outs, gfid } = !indexed && loc.gfid && isGfid(loc.gfid) && adds.some(({ add }) => add.some((byte) => byte !== 0))
    ? await b.index.marking(hp.host, loc.path, loc.gfid, xattrop)
    : await xattrop();
  const afr = outs.filter((_, k) => adds[k].name.startsWith(AFR_PREFIX));
  const pending = afr.find((out) => out.some((byte) => byte !== 0));
  if (pending) await b.index.update(hp.host, loc.path, pending, gfid);
  else if (afr.length) b.index.settled(hp.host, loc.path, gfid);
  return outs;
}
