// Open-file requests: OPEN, CREATE, READ, WRITE, FLUSH, FSYNC, RELEASE, the locks (GETLK, SETLK,
// SETLKW; flock(2) arrives as SETLK* with FUSE_LK_FLOCK), FALLOCATE and COPY_FILE_RANGE.
import { donate } from '../../../common/buffers.js';
import { FsError } from '../../../common/errors.js';
import { newGfid } from '../../../common/gfid.js';
import { FLOCK_OWNER_PREFIX, O_TRUNC, OPEN_IATT, type Fd, type Flock, type Iatt, type LockCmd, type LockType } from '../../../common/types.js';
import {
  F_RDLCK, F_UNLCK, F_WRLCK, FOPEN, FSYNC_FDATASYNC, LK_FLOCK, OFFSET_MAX, OPEN_KILL_SUIDGID, OP, WRITE_KILL_SUIDGID, lkOut, openOut,
  readFileLock, u32Out,
} from './abi.js';
import { childLoc, loc } from './ops-entry.js';
import type { OpDef, Request, Session } from './session.js';

const O_ACCMODE = 3;
const O_DIRECT = 0o40000;
/** Flags the bricks must not see: O_DIRECT needs aligned buffers there, the kernel did the rest. */
const brickFlags = (flags: number) => flags & ~O_DIRECT;

/** keep_cache when the kernel's pages of the file can be trusted (close-to-open): the attributes
 *  the open saw on the brick are the ones the kernel last got, so nobody changed the file since. */
function openFlags(s: Session, flags: number, fd?: Fd, nodeid?: bigint): number {
  let f = 0;
  if (flags & O_DIRECT) return f | FOPEN.DIRECT_IO;
  if (s.opts.writebackCache) return f | FOPEN.KEEP_CACHE;
  const at = fd?.ctx.get(OPEN_IATT) as Iatt | undefined;
  const n = nodeid !== undefined ? s.inodes.tryGet(nodeid) : undefined;
  if (at && n && !n.wroteLocally && n.seen === `${at.mtime}:${at.size}`) f |= FOPEN.KEEP_CACHE;
  return f;
}

async function open(s: Session, req: Request) {
  const flags = req.body.u32();
  const inFlags = req.body.u32();
  if ((flags & O_ACCMODE) !== 0 || flags & O_TRUNC) s.writable();
  const l = loc(s, req.h.nodeid);
  const fd = await s.top.open(req.ctx, l, brickFlags(flags));
  if (flags & O_TRUNC && inFlags & OPEN_KILL_SUIDGID) await s.killSetId(req.h.nodeid, l, req.h.pid);
  const fh = s.newFh();
  s.files.set(fh, { fd, nodeid: req.h.nodeid, lockOwners: new Set() });
  if (flags & O_TRUNC) s.inodes.get(req.h.nodeid).wroteLocally = true;
  return openOut(fh, openFlags(s, flags, fd, req.h.nodeid));
}

async function create(s: Session, req: Request) {
  const flags = req.body.u32();
  const mode = req.body.u32();
  req.body.skip(8); // umask (applied by the kernel), open_flags
  const name = req.body.str();
  s.writable();
  const l = childLoc(s, req.h.nodeid, name);
  const r = await s.top.create(req.ctx, l, brickFlags(flags), { mode: mode & 0o7777, umask: 0, gfid: newGfid() });
  const entry = s.entry(req.h.nodeid, name, r.iatt);
  const fh = s.newFh();
  s.files.set(fh, { fd: r.fd, nodeid: s.inodes.child(req.h.nodeid, name)!.nodeid, lockOwners: new Set() });
  return [entry, openOut(fh, openFlags(s, flags))];
}

async function read(s: Session, req: Request) {
  const fh = req.body.u64();
  const offset = req.body.n64();
  const size = req.body.u32();
  s.stats.add('read', size);
  return s.top.read(req.ctx, s.file(fh).fd, offset, size);
}

/** WRITE payloads from this size on keep their request buffer; smaller ones are copied. */
const KEEP_MIN = 256 * 1024;

async function write(s: Session, req: Request) {
  const fh = req.body.u64();
  const offset = req.body.n64();
  const size = req.body.u32();
  const writeFlags = req.body.u32();
  req.body.skip(16); // lock_owner, flags, padding
  // A large payload keeps its request buffer (the device reads the next request into a new one);
  // a small one is copied out, so the device goes on with its buffer instead of allocating 1 MiB
  // per 4 KiB write (and write-behind does not pin a 1 MiB buffer for each small write it holds).
  let data: Buffer;
  if (size >= KEEP_MIN) {
    req.keep();
    data = req.body.rest(size);
  } else {
    data = Buffer.from(req.body.rest(size));
  }
  donate(data); // ours for good either way: layers below may keep it without a copy
  s.stats.add('write', size);
  const f = s.file(fh);
  s.inodes.get(f.nodeid).wroteLocally = true;
  const n = await s.top.write(req.ctx, f.fd, offset, data);
  if (writeFlags & WRITE_KILL_SUIDGID) await s.killSetId(f.nodeid, f.fd.loc, req.h.pid);
  return u32Out(n);
}

const ownerOf = (s: Session, owner: bigint, flock: boolean) =>
  `${flock ? FLOCK_OWNER_PREFIX : 'posix:'}${s.mountId}:${owner.toString(16)}`;

async function flush(s: Session, req: Request) {
  const fh = req.body.u64();
  req.body.skip(8);
  const owner = ownerOf(s, req.body.u64(), false);
  const f = s.file(fh);
  // close(2) drops the closing process's POSIX locks on the file, whichever fd set them.
  if (f.lockOwners.has(owner)) {
    await s.top.lk(req.ctx, f.fd, 'setlk', { type: 'unlock', start: 0n, len: 0n, pid: req.h.pid, owner });
    f.lockOwners.delete(owner);
  }
  await s.top.flush(req.ctx, f.fd);
}

async function fsync(s: Session, req: Request) {
  const fh = req.body.u64();
  const flags = req.body.u32();
  await s.top.fsync(req.ctx, s.file(fh).fd, !!(flags & FSYNC_FDATASYNC));
}

async function release(s: Session, req: Request) {
  const fh = req.body.u64();
  const f = s.files.get(fh);
  s.files.delete(fh);
  if (f) await s.top.release(req.ctx, f.fd);
}

const TYPES: Record<number, LockType> = { [F_RDLCK]: 'read', [F_WRLCK]: 'write', [F_UNLCK]: 'unlock' };
const CODES: Record<LockType, number> = { read: F_RDLCK, write: F_WRLCK, unlock: F_UNLCK };

function decodeLk(s: Session, req: Request): { fh: bigint; lock: Flock; flock: boolean } {
  const fh = req.body.u64();
  const owner = req.body.u64();
  const lk = readFileLock(req.body);
  const flock = !!(req.body.u32() & LK_FLOCK);
  const type = TYPES[lk.type];
  if (!type) throw new FsError('EINVAL', `lock type ${lk.type}`);
  const len = lk.end >= OFFSET_MAX ? 0n : lk.end - lk.start + 1n;
  return { fh, flock, lock: { type, start: lk.start, len, pid: lk.pid || req.h.pid, owner: ownerOf(s, owner, flock) } };
}

function lkHandler(cmd: LockCmd) {
  return async (s: Session, req: Request) => {
    const { fh, lock } = decodeLk(s, req);
    const f = s.file(fh);
    const got = await s.top.lk(req.ctx, f.fd, cmd, lock);
    if (cmd === 'getlk') {
      const end = got.len === 0n ? OFFSET_MAX : got.start + got.len - 1n;
      return lkOut({ start: got.start, end, type: CODES[got.type], pid: got.type === 'unlock' ? 0 : got.pid });
    }
    if (lock.type !== 'unlock') f.lockOwners.add(lock.owner);
  };
}

async function fallocate(s: Session, req: Request) {
  const fh = req.body.u64();
  const offset = req.body.n64();
  const length = req.body.n64();
  const mode = req.body.u32();
  s.writable();
  const f = s.file(fh);
  s.inodes.get(f.nodeid).wroteLocally = true;
  await s.top.fallocate(req.ctx, f.fd, mode, offset, length);
}

const COPY_CHUNK = 1024 * 1024;

/** copy_file_range through the stack: reads and writes of 1 MiB, no data through the kernel. */
async function copyFileRange(s: Session, req: Request) {
  const fhIn = req.body.u64();
  let offIn = req.body.n64();
  req.body.skip(8); // nodeid_out
  const fhOut = req.body.u64();
  let offOut = req.body.n64();
  const len = req.body.n64();
  s.writable();
  const src = s.file(fhIn);
  const dst = s.file(fhOut);
  s.inodes.get(dst.nodeid).wroteLocally = true;
  let done = 0;
  while (done < len) {
    if (req.ctx.signal?.aborted) break;
    const data = await s.top.read(req.ctx, src.fd, offIn, Math.min(COPY_CHUNK, len - done));
    if (data.length === 0) break;
    const n = await s.top.write(req.ctx, dst.fd, offOut, data);
    done += n;
    offIn += n;
    offOut += n;
    if (n < data.length) break;
  }
  return u32Out(done);
}

export const FILE_OPS: [number, OpDef][] = [
  [OP.OPEN, { name: 'OPEN', handler: open, groups: true }],
  [OP.CREATE, { name: 'CREATE', handler: create, groups: true }],
  [OP.READ, { name: 'READ', handler: read }],
  [OP.WRITE, { name: 'WRITE', handler: write }],
  [OP.FLUSH, { name: 'FLUSH', handler: flush }],
  [OP.FSYNC, { name: 'FSYNC', handler: fsync }],
  [OP.RELEASE, { name: 'RELEASE', handler: release }],
  [OP.GETLK, { name: 'GETLK', handler: lkHandler('getlk') }],
  [OP.SETLK, { name: 'SETLK', handler: lkHandler('setlk') }],
  [OP.SETLKW, { name: 'SETLKW', handler: lkHandler('setlkw') }],
  [OP.FALLOCATE, { name: 'FALLOCATE', handler: fallocate }],
  [OP.COPY_FILE_RANGE, { name: 'COPY_FILE_RANGE', handler: copyFileRange }],
];
