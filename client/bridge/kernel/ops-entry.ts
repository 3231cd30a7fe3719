// Namespace requests: LOOKUP, FORGET, BATCH_FORGET, MKDIR, MKNOD, SYMLINK, LINK, UNLINK, RMDIR,
// RENAME, RENAME2. Each decodes its body before the first await (the buffer is reused after).
import { FsError, toErrno } from '../../../common/errors.js';
import { newGfid } from '../../../common/gfid.js';
import { S_IFDIR, S_IFMT, S_IFREG, type Loc } from '../../../common/types.js';
import { OP, entryOut } from './abi.js';
import { NO_REPLY, type OpDef, type Reply, type Request, type Session } from './session.js';

const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;
const O_WRONLY = 1;

export function loc(s: Session, nodeid: bigint): Loc {
  return { path: s.inodes.path(nodeid), gfid: s.inodes.get(nodeid).gfid };
}

export function childLoc(s: Session, parent: bigint, name: string): Loc {
  if (name.length === 0 || name.includes('/')) throw new FsError('EINVAL', `bad name '${name}'`);
  if (Buffer.byteLength(name) > 255) throw new FsError('ENAMETOOLONG', name);
  return { path: s.inodes.childPath(parent, name), gfid: s.inodes.child(parent, name)?.gfid };
}

async function lookup(s: Session, req: Request) {
  const name = req.body.str();
  const parent = req.h.nodeid;
  const l = childLoc(s, parent, name);
  const known = s.inodes.child(parent, name);
  let iatt;
  try {
    ({ iatt } = await s.top.lookup(req.ctx, { path: l.path }));
  } catch (e) {
    // A negative entry: the kernel caches the absence for the entry timeout (PATH searches,
    // create's lookup-then-create) instead of asking again.
    if (toErrno(e) !== 'ENOENT' || !s.opts.valid.entry) throw e;
    if (known) s.inodes.unlinked(parent, name);
    return entryOut(0n, null, { entry: s.opts.valid.entry, attr: 0 });
  }
  if (known && known.gfid !== iatt.gfid) s.log.debug({ path: l.path }, 'name now holds another inode');
  return s.entry(parent, name, iatt);
}

async function forget(s: Session, req: Request): Promise<Reply> {
  s.inodes.forget(req.h.nodeid, req.body.u64());
  return NO_REPLY;
}

async function batchForget(s: Session, req: Request): Promise<Reply> {
  const count = req.body.u32();
  req.body.skip(4);
  for (let i = 0; i < count && req.body.remaining >= 16; i++) s.inodes.forget(req.body.u64(), req.body.u64());
  return NO_REPLY;
}

async function mkdir(s: Session, req: Request) {
  const mode = req.body.u32();
  req.body.skip(4); // umask: already applied by the kernel (no FUSE_DONT_MASK)
  const name = req.body.str();
  s.writable();
  const l = childLoc(s, req.h.nodeid, name);
  const iatt = await s.top.mkdir(req.ctx, l, { mode: (mode & 0o7777) | S_IFDIR, umask: 0, gfid: newGfid() });
  return s.entry(req.h.nodeid, name, iatt);
}

async function mknod(s: Session, req: Request) {
  const mode = req.body.u32();
  const rdev = req.body.u32();
  req.body.skip(8);
  const name = req.body.str();
  s.writable();
  const l = childLoc(s, req.h.nodeid, name);
  const args = { mode, umask: 0, gfid: newGfid() };
  let iatt;
  if ((mode & S_IFMT) === S_IFREG) {
    const r = await s.top.create(req.ctx, l, O_WRONLY | 0o200 /* O_EXCL */, { ...args, mode: mode & 0o7777 });
    await s.top.release(req.ctx, r.fd);
    iatt = r.iatt;
  } else {
    iatt = await s.top.mknod(req.ctx, l, rdev, args);
  }
  return s.entry(req.h.nodeid, name, iatt);
}

async function symlink(s: Session, req: Request) {
  const name = req.body.str();
  const target = req.body.str();
  s.writable();
  const l = childLoc(s, req.h.nodeid, name);
  const iatt = await s.top.symlink(req.ctx, target, l, { mode: 0o777, umask: 0, gfid: newGfid() });
  return s.entry(req.h.nodeid, name, iatt);
}

async function link(s: Session, req: Request) {
  const old = req.body.u64();
  const name = req.body.str();
  s.writable();
  const to = childLoc(s, req.h.nodeid, name);
  const iatt = await s.top.link(req.ctx, loc(s, old), to);
  return s.entry(req.h.nodeid, name, iatt);
}

async function unlink(s: Session, req: Request) {
  const name = req.body.str();
  s.writable();
  await s.top.unlink(req.ctx, childLoc(s, req.h.nodeid, name));
  s.inodes.unlinked(req.h.nodeid, name);
}

async function rmdir(s: Session, req: Request) {
  const name = req.body.str();
  s.writable();
  await s.top.rmdir(req.ctx, childLoc(s, req.h.nodeid, name));
  s.inodes.unlinked(req.h.nodeid, name);
}

async function doRename(s: Session, req: Request, newdir: bigint, flags: number) {
  const oldName = req.body.str();
  const newName = req.body.str();
  s.writable();
  if (flags & RENAME_EXCHANGE) throw new FsError('EINVAL', 'RENAME_EXCHANGE is not supported');
  if (flags & ~RENAME_NOREPLACE) throw new FsError('EINVAL', `rename flags ${flags}`);
  const from = childLoc(s, req.h.nodeid, oldName);
  const to = childLoc(s, newdir, newName);
  if (flags & RENAME_NOREPLACE) {
    // Not atomic across clients: the check and the rename are two calls.
    const exists = await s.top.lookup(req.ctx, { path: to.path }).then(() => true, (e) => {
      if (toErrno(e) === 'ENOENT') return false;
      throw e;
    });
    if (exists) throw new FsError('EEXIST', to.path);
  }
  await s.top.rename(req.ctx, from, to);
  s.inodes.renamed(req.h.nodeid, oldName, newdir, newName);
}

async function rename(s: Session, req: Request) {
  return doRename(s, req, req.body.u64(), 0);
}

async function rename2(s: Session, req: Request) {
  const newdir = req.body.u64();
  const flags = req.body.u32();
  req.body.skip(4);
  return doRename(s, req, newdir, flags);
}

export const ENTRY_OPS: [number, OpDef][] = [
  [OP.LOOKUP, { name: 'LOOKUP', handler: lookup }],
  [OP.FORGET, { name: 'FORGET', handler: forget }],
  [OP.BATCH_FORGET, { name: 'BATCH_FORGET', handler: batchForget }],
  [OP.MKDIR, { name: 'MKDIR', handler: mkdir, groups: true }],
  [OP.MKNOD, { name: 'MKNOD', handler: mknod, groups: true }],
  [OP.SYMLINK, { name: 'SYMLINK', handler: symlink, groups: true }],
  [OP.LINK, { name: 'LINK', handler: link, groups: true }],
  [OP.UNLINK, { name: 'UNLINK', handler: unlink, groups: true }],
  [OP.RMDIR, { name: 'RMDIR', handler: rmdir, groups: true }],
  [OP.RENAME, { name: 'RENAME', handler: rename, groups: true }],
  [OP.RENAME2, { name: 'RENAME2', handler: rename2, groups: true }],
];
