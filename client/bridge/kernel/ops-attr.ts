// Attribute requests: GETATTR, SETATTR (nanosecond times, UTIME_NOW via FATTR_*_NOW, UTIME_OMIT as
// an absent bit), READLINK, STATFS, ACCESS and the xattr family (the bricks' trusted.gfs.* hidden).
import { FsError } from '../../../common/errors.js';
import type { Iatt, SetattrArgs } from '../../../common/types.js';
import { FATTR, GETATTR_FH, OP, attrOut, statfsOut, u32Out } from './abi.js';
import { INTERNAL_XATTR_PREFIX, unsupportedXattr } from '../index.js';
import { loc } from './ops-entry.js';
import type { OpDef, Request, Session } from './session.js';

const NS = 1_000_000_000n;

function checkSame(s: Session, nodeid: bigint, iatt: Iatt): void {
  const n = s.inodes.get(nodeid);
  if (n.gfid !== iatt.gfid) throw new FsError('ESTALE', `inode ${nodeid} (${n.gfid}) now names ${iatt.gfid}`);
}

function attrReply(s: Session, nodeid: bigint, iatt: Iatt): Buffer {
  s.saw(s.inodes.get(nodeid), iatt);
  return attrOut(iatt, s.opts.valid.attr);
}

async function getattr(s: Session, req: Request) {
  const flags = req.body.u32();
  req.body.skip(4);
  const fh = req.body.u64();
  const f = flags & GETATTR_FH ? s.files.get(fh) : undefined;
  const iatt = f ? await s.top.fstat(req.ctx, f.fd) : await s.top.stat(req.ctx, loc(s, req.h.nodeid)).catch((err) => {
    // fstat(2) of an open but unlinked file comes without a handle (the kernel sends one only from
    // read paths): answer from any open file of the inode, as a local file system would (nlink 0).
    const open = (err as FsError).errno === 'ENOENT' ? [...s.files.values()].find((o) => o.nodeid === req.h.nodeid) : undefined;
    if (!open) throw err;
    return s.top.fstat(req.ctx, open.fd);
  });
  checkSame(s, req.h.nodeid, iatt);
  return attrReply(s, req.h.nodeid, iatt);
}

async function setattr(s: Session, req: Request) {
  const r = req.body;
  const valid = r.u32();
  r.skip(4);
  const fh = r.u64();
  const size = r.u64();
  r.skip(8); // lock_owner
  const atime = r.u64();
  const mtime = r.u64();
  r.skip(8); // ctime
  const atimensec = r.u32();
  const mtimensec = r.u32();
  r.skip(4);
  const mode = r.u32();
  r.skip(4);
  const uid = r.u32();
  const gid = r.u32();
  s.writable();
  const l = loc(s, req.h.nodeid);
  const f = valid & FATTR.FH ? s.files.get(fh) : undefined;
  const attrs: SetattrArgs = {};
  if (valid & FATTR.MODE) attrs.mode = mode & 0o7777;
  if (valid & FATTR.UID) attrs.uid = uid;
  if (valid & FATTR.GID) attrs.gid = gid;
  if (valid & FATTR.ATIME) attrs.atime = valid & FATTR.ATIME_NOW ? 'now' : BigInt.asIntN(64, atime) * NS + BigInt(atimensec);
  if (valid & FATTR.MTIME) attrs.mtime = valid & FATTR.MTIME_NOW ? 'now' : BigInt.asIntN(64, mtime) * NS + BigInt(mtimensec);
  let iatt: Iatt | undefined;
  // The size first, so that times given with it are the ones that stay.
  if (valid & FATTR.SIZE) {
    iatt = f ? await s.top.ftruncate(req.ctx, f.fd, Number(size)) : await s.top.truncate(req.ctx, l, Number(size));
    s.inodes.get(req.h.nodeid).wroteLocally = true;
  }
  if (Object.keys(attrs).length) iatt = await s.top.setattr(req.ctx, l, attrs);
  // An unprivileged truncate, or a chown: the set-id bits go too (HANDLE_KILLPRIV_V2).
  if (valid & FATTR.KILL_SUIDGID && !(valid & FATTR.MODE)) {
    if (iatt) s.inodes.get(req.h.nodeid).mode = iatt.mode;
    iatt = (await s.killSetId(req.h.nodeid, l, req.h.pid)) ?? iatt;
  }
  iatt ??= f ? await s.top.fstat(req.ctx, f.fd) : await s.top.stat(req.ctx, l);
  return attrReply(s, req.h.nodeid, iatt);
}

async function readlink(s: Session, req: Request) {
  return Buffer.from(await s.top.readlink(req.ctx, loc(s, req.h.nodeid)));
}

async function statfs(s: Session, req: Request) {
  const st = await s.top.statfs(req.ctx, loc(s, req.h.nodeid));
  return statfsOut({ ...st, frsize: st.frsize || st.bsize });
}

async function access() {
  // default_permissions: the kernel checks with our attributes and never asks; answer yes if it does.
}

/** getxattr/listxattr size protocol: size 0 asks for the length; too small a size is ERANGE. */
function sized(value: Buffer, size: number): Buffer {
  if (size === 0) return u32Out(value.length);
  if (value.length > size) throw new FsError('ERANGE', `value of ${value.length} bytes, buffer of ${size}`);
  return value;
}

const internal = (name: string) => name.startsWith(INTERNAL_XATTR_PREFIX);

function supported(s: Session, name: string): void {
  if (unsupportedXattr(name, s.opts)) throw new FsError('EOPNOTSUPP', `${name}: mounted without ${name.startsWith('system.') ? 'acl' : 'selinux'}`);
}

async function setxattr(s: Session, req: Request) {
  const size = req.body.u32();
  const flags = req.body.u32();
  const name = req.body.str();
  const value = Buffer.from(req.body.rest(size));
  s.writable();
  if (internal(name)) throw new FsError('EPERM', `${name} is reserved`);
  supported(s, name);
  await s.top.setxattr(req.ctx, loc(s, req.h.nodeid), name, value, flags);
}

async function getxattr(s: Session, req: Request) {
  const size = req.body.u32();
  req.body.skip(4);
  const name = req.body.str();
  if (internal(name)) throw new FsError('ENODATA', name);
  supported(s, name);
  return sized(await s.top.getxattr(req.ctx, loc(s, req.h.nodeid), name), size);
}

async function listxattr(s: Session, req: Request) {
  const size = req.body.u32();
  const names = (await s.top.listxattr(req.ctx, loc(s, req.h.nodeid))).filter((n) => !internal(n) && !unsupportedXattr(n, s.opts));
  return sized(Buffer.from(names.map((n) => `${n}\0`).join('')), size);
}

async function removexattr(s: Session, req: Request) {
  const name = req.body.str();
  s.writable();
  if (internal(name)) throw new FsError('EPERM', `${name} is reserved`);
  supported(s, name);
  await s.top.removexattr(req.ctx, loc(s, req.h.nodeid), name);
}

export const ATTR_OPS: [number, OpDef][] = [
  [OP.GETATTR, { name: 'GETATTR', handler: getattr }],
  [OP.SETATTR, { name: 'SETATTR', handler: setattr, groups: true }],
  [OP.READLINK, { name: 'READLINK', handler: readlink }],
  [OP.STATFS, { name: 'STATFS', handler: statfs }],
  [OP.ACCESS, { name: 'ACCESS', handler: access }],
  [OP.SETXATTR, { name: 'SETXATTR', handler: setxattr, groups: true }],
  [OP.GETXATTR, { name: 'GETXATTR', handler: getxattr }],
  [OP.LISTXATTR, { name: 'LISTXATTR', handler: listxattr }],
  [OP.REMOVEXATTR, { name: 'REMOVEXATTR', handler: removexattr, groups: true }],
];
