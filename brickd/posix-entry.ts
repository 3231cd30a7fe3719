// Namespace operations: lookup, stat, readdirp, mkdir, symlink, link, unlink, rmdir, rename,
// readlink. New entries get the caller's gfid, owner (setgid parents pass their group on) and
// xattrs before the reply; if any of that fails, the entry is removed again.
import { lchown, link, lstat, mkdir, readlink, rename, rmdir, symlink, unlink } from 'node:fs/promises';
import { FsError } from '../common/errors.js';
import type { CreateArgs, Ctx, Dirent, Iatt, LookupReply } from '../common/types.js';
import { isDir } from '../common/types.js';
import type { Brick } from './brick.js';
import { PRIVATE_DIR, type HostPath } from './confine.js';
import { GFID_XATTR, checkGfid, creatingEntry, iattOf, statToIatt, writeGfid } from './iatt.js';
import { xget, xset } from './xattr.js';
import { mapBounded } from '../common/concurrency.js';

const S_ISGID = 0o2000;
const READDIR_PARALLEL = 32;

const PROC_UID = process.getuid?.() ?? -1;
const PROC_GID = process.getgid?.() ?? -1;

export interface NewOwner { uid: number; gid: number; setgid: boolean }

/** Who owns a new entry of ctx in the directory parent (Linux's setgid-directory rule), or
 *  undefined when ctx is the daemon itself: then the kernel's own rule (its uid; the parent's group
 *  and, for a directory, its setgid bit under a setgid parent; else its gid) already gives the
 *  entry that owner, and neither the parent's lstat nor a chown is needed. */
export async function newOwner(ctx: Ctx, parent: string): Promise<NewOwner | undefined> {
  if (ctx.uid === PROC_UID && ctx.gid === PROC_GID) return undefined;
  const st = await lstat(parent);
  if (st.mode & S_ISGID) return { uid: ctx.uid, gid: st.gid, setgid: true };
  return { uid: ctx.uid, gid: ctx.gid, setgid: false };
}

/** The asked-for xattrs of host that exist (each read a trip to libuv's pool: all at once). */
export async function readNamed(host: string, names: readonly string[]): Promise<Record<string, Buffer>> {
  const values = await Promise.all(names.map((n) => xget(host, n)));
  const out: Record<string, Buffer> = {};
  names.forEach((n, i) => { if (values[i]) out[n] = values[i]!; });
  return out;
}

/** The CreateArgs xattrs, after the gfid; a gfid in them is refused (it comes from args.gfid). */
export async function applyCreateXattrs(host: string, xattrs: Record<string, Buffer> | undefined): Promise<void> {
  for (const [name, value] of Object.entries(xattrs ?? {})) {
    if (name === GFID_XATTR) continue;
    await xset(host, name, value);
  }
}

export function refuseRoot(hp: HostPath, errno: 'EEXIST' | 'EBUSY', op: string): void {
  if (hp.isRoot) throw new FsError(errno, `${op} of the volume root`);
}

async function undo(host: string, dir: boolean): Promise<void> {
  await (dir ? rmdir(host) : unlink(host)).catch(() => undefined);
}

/** Makes a just-created entry ours: its gfid, the caller's ownership, the creation xattrs (after
 *  `adjust`, e.g. a mode the creating tool could not set); on any failure the entry is removed,
 *  so a failed create leaves nothing behind. Returns its attributes. */
export async function finishEntry(
  host: string, gfid: string, owner: NewOwner | undefined, xattrs: Record<string, Buffer> | undefined,
  dir: boolean, adjust?: () => Promise<void>,
): Promise<Iatt> {
  try {
    await Promise.all([writeGfid(host, gfid), owner && lchown(host, owner.uid, owner.gid)]);
    await adjust?.();
    await applyCreateXattrs(host, xattrs);
    return statToIatt(await lstat(host, { bigint: true }), gfid); // the gfid is the one just written
  } catch (err) {
    await undo(host, dir);
    throw err;
  }
}

export async function lookup(b: Brick, loc: { path: string }, xattrs?: string[]): Promise<LookupReply> {
  const hp = await b.resolve(loc.path);
  // The xattrs alongside the attributes (a missing file's read as absent; its lstat fails). A few
  // small calls cost less here than one io-thread job.
  const [iatt, named] = await Promise.all([iattOf(hp.host, hp.isRoot), readNamed(hp.host, xattrs ?? [])]);
  return { iatt, xattrs: named };
}

export async function stat(b: Brick, loc: { path: string }): Promise<Iatt> {
  const hp = await b.resolve(loc.path);
  return iattOf(hp.host, hp.isRoot);
}

export async function readdirp(b: Brick, loc: { path: string }, xattrs?: string[]): Promise<Dirent[]> {
  const hp = await b.resolve(loc.path);
  const listed = await b.io.list(hp.host, loc.path, xattrs ?? [], hp.host === b.config.realRoot ? PRIVATE_DIR : undefined);
  // An entry without a gfid yet gets one here (the event loop assigns gfids).
  const entries = await mapBounded(listed, READDIR_PARALLEL, async (e): Promise<Dirent | null> => {
    if (e.iatt) return { name: e.name, iatt: e.iatt, xattrs: e.xattrs };
    try {
      return { name: e.name, iatt: await iattOf(`${hp.host}/${e.name}`), xattrs: e.xattrs };
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return null; // removed meanwhile
      throw err;
    }
  });
  return entries.filter((e): e is Dirent => e !== null);
}

export async function mkdirOp(b: Brick, ctx: Ctx, loc: { path: string }, args: CreateArgs): Promise<Iatt> {
  const hp = await b.resolve(loc.path);
  refuseRoot(hp, 'EEXIST', 'mkdir');
  const gfid = checkGfid(args.gfid);
  const owner = await newOwner(ctx, hp.parent);
  let mode = args.mode & ~args.umask & 0o7777;
  if (owner?.setgid) mode |= S_ISGID;
  return creatingEntry(hp.host, async () => {
    await mkdir(hp.host, mode);
    return finishEntry(hp.host, gfid, owner, args.xattrs, true);
  });
}

export async function symlinkOp(b: Brick, ctx: Ctx, target: string, loc: { path: string }, args: CreateArgs): Promise<Iatt> {
  if (!target || target.includes('\0')) throw new FsError('EINVAL', 'symlink target is empty or contains a NUL byte');
  const hp = await b.resolve(loc.path);
  refuseRoot(hp, 'EEXIST', 'symlink');
  const gfid = checkGfid(args.gfid);
  const owner = await newOwner(ctx, hp.parent);
  return creatingEntry(hp.host, async () => {
    await symlink(target, hp.host);
    return finishEntry(hp.host, gfid, owner, args.xattrs, false);
  });
}

export async function linkOp(b: Brick, from: { path: string }, to: { path: string }): Promise<Iatt> {
  const src = await b.resolve(from.path);
  const dst = await b.resolve(to.path);
  refuseRoot(src, 'EBUSY', 'link');
  refuseRoot(dst, 'EEXIST', 'link');
  const st = await lstat(src.host);
  if (isDir(st.mode)) throw new FsError('EPERM', `'${from.path}' is a directory; directories cannot be hard-linked`);
  await link(src.host, dst.host);
  return iattOf(dst.host);
}

export async function unlinkOp(b: Brick, loc: { path: string }): Promise<void> {
  const hp = await b.resolve(loc.path);
  refuseRoot(hp, 'EBUSY', 'unlink');
  try {
    await unlink(hp.host);
  } finally {
    b.namespaceChanged('unlink', hp.host);
  }
}

export async function rmdirOp(b: Brick, loc: { path: string }): Promise<void> {
  const hp = await b.resolve(loc.path);
  refuseRoot(hp, 'EBUSY', 'rmdir');
  try {
    await rmdir(hp.host);
  } finally {
    b.namespaceChanged('rmdir');
  }
}

export async function renameOp(b: Brick, from: { path: string }, to: { path: string }): Promise<void> {
  const src = await b.resolve(from.path);
  const dst = await b.resolve(to.path);
  refuseRoot(src, 'EBUSY', 'rename');
  refuseRoot(dst, 'EBUSY', 'rename');
  try {
    await rename(src.host, dst.host);
  } finally {
    b.namespaceChanged('rename');
  }
}

export async function readlinkOp(b: Brick, loc: { path: string }): Promise<string> {
  const hp = await b.resolve(loc.path);
  return readlink(hp.host);
}
