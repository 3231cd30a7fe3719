// File data operations over the fd table: create, open, read, write, fstat, truncate, ftruncate,
// flush, fsync, release and POSIX locks. Opens never follow a final symlink (O_NOFOLLOW).
import { constants, fstatSync } from 'node:fs';
import { lstat, open, unlink, type FileHandle } from 'node:fs/promises';
import { BULK_MIN, bulkBuffers } from '../common/buffers.js';
import { FsError } from '../common/errors.js';
import { FLOCK_OWNER_PREFIX, isFlockOwner, type CreateArgs, type Ctx, type Flock, type Iatt, type LockCmd } from '../common/types.js';
import type { Brick } from './brick.js';
import { readable, writable, type OpenFile } from './fd-table.js';
import { checkGfid, creatingEntry, ensureGfid, statToIatt, writeGfid } from './iatt.js';
import { applyCreateXattrs, newOwner, readNamed, refuseRoot } from './posix-entry.js';

const { O_CREAT, O_EXCL, O_NOFOLLOW, O_WRONLY } = constants;
/** Largest read answered in one message (the gRPC limit is 64 MiB). */
export const MAX_IO = 32 * 1024 * 1024;

/** fstat(2) of an open file, on the event loop: it reads the in-memory inode, never the disk, and a
 *  trip to the thread pool would cost ~20 times the call itself. */
function fdIatt(f: OpenFile | { fh: FileHandle; gfid: string }): Iatt {
  return statToIatt(fstatSync(f.fh.fd, { bigint: true }), f.gfid);
}

export async function createOp(
  b: Brick, ctx: Ctx, loc: { path: string }, flags: number, args: CreateArgs, lock?: Flock,
): Promise<{ fd: number; iatt: Iatt; locked: boolean }> {
  const hp = await b.resolve(loc.path);
  refuseRoot(hp, 'EEXIST', 'create');
  const gfid = checkGfid(args.gfid);
  const since = b.generation;
  const mode = args.mode & ~args.umask & 0o7777;
  const base = (flags & ~O_CREAT) | O_NOFOLLOW;
  // Who will own the file is found while it is created (one lstat of the parent, off the wait).
  const ownerP = newOwner(ctx, hp.parent);
  ownerP.catch(() => undefined);
  for (let attempt = 0; attempt < 3; attempt++) {
    // A new file: made, owned and given its gfid while marked as being created (undefined: the
    // name exists already).
    const made = await creatingEntry(hp.host, async () => {
      let fh: FileHandle;
      try {
        fh = await open(hp.host, base | O_CREAT | O_EXCL, mode);
      } catch (err) {
        if ((err as { code?: string }).code !== 'EEXIST' || flags & O_EXCL) throw err;
        return undefined;
      }
      try {
        const owner = await ownerP;
        const chown = owner ? fh.chown(owner.uid, owner.gid) : undefined;
        await Promise.all([writeGfid(hp.host, gfid), chown]);
        if (chown && mode & 0o6000) await fh.chmod(mode); // chown clears setuid/setgid on regular files
        await applyCreateXattrs(hp.host, args.xattrs);
      } catch (err) {
        await fh.close().catch(() => undefined);
        await unlink(hp.host).catch(() => undefined);
        throw err;
      }
      return fh;
    });
    if (made) {
      b.made(hp.host, gfid, since);
      const f = b.fds.add(made, hp.host, loc.path, gfid, flags);
      return { fd: f.id, iatt: fdIatt(f), locked: await lockNew(b, f, lock) };
    }
    let fh: FileHandle;
    try {
      fh = await open(hp.host, base);
    } catch (err2) {
      if ((err2 as { code?: string }).code === 'ENOENT') continue; // removed meanwhile: create again
      throw err2;
    }
    const existing = await ensureGfid(hp.host).catch(async (e) => { await fh.close(); throw e; });
    const f = b.fds.add(fh, hp.host, loc.path, existing, flags);
    return { fd: f.id, iatt: fdIatt(f), locked: await lockNew(b, f, lock) };
  }
  throw new FsError('EAGAIN', `'${loc.path}' keeps appearing and vanishing; try again`);
}

/** The lock a create asked for, taken through its new fd if free (never waits). */
async function lockNew(b: Brick, f: OpenFile, lock: Flock | undefined): Promise<boolean> {
  if (!lock || lock.type === 'unlock') return false;
  try {
    await lkOp(b, f.id, 'setlk', lock);
    return true;
  } catch {
    return false;
  }
}

/** Opens loc; with `xattrs`, also reads those that exist (a lookup and an open in one call); with
 *  `lock`, takes it through the new fd if free, as a create does. */
export async function openOp(b: Brick, loc: { path: string }, flags: number, xattrs?: readonly string[], lock?: Flock): Promise<{ fd: number; iatt: Iatt; xattrs: Record<string, Buffer>; locked: boolean }> {
  const hp = await b.resolve(loc.path);
  const fh = await open(hp.host, (flags & ~(O_CREAT | O_EXCL)) | O_NOFOLLOW);
  let opened: { f: OpenFile; iatt: Iatt; xattrs: Record<string, Buffer> };
  try {
    const [gfid, named] = await Promise.all([ensureGfid(hp.host, hp.isRoot), readNamed(hp.host, xattrs ?? [])]);
    const f = b.fds.add(fh, hp.host, loc.path, gfid, flags & ~(O_CREAT | O_EXCL));
    opened = { f, iatt: fdIatt(f), xattrs: named };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
  return { fd: opened.f.id, iatt: opened.iatt, xattrs: opened.xattrs, locked: await lockNew(b, opened.f, lock) };
}

export async function readOp(b: Brick, fd: number, offset: number, size: number): Promise<Buffer> {
  const f = b.fds.get(fd);
  if (!readable(f)) throw new FsError('EBADF', `fd ${fd} is not open for reading`);
  if (size > MAX_IO) throw new FsError('EINVAL', `read of ${size} bytes exceeds the ${MAX_IO}-byte limit per call`);
  // A large read's buffer is pooled: the Session gives it back once the reply is encoded.
  const buf = size >= BULK_MIN ? bulkBuffers.take(size) : Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const { bytesRead } = await f.fh.read(buf, got, size - got, offset + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === size ? buf : buf.subarray(0, got);
}

/** The bytes written, and the file's attributes after them. */
export async function writeOp(b: Brick, fd: number, offset: number, data: Buffer): Promise<{ written: number; iatt: Iatt }> {
  const f = b.fds.get(fd);
  if (!writable(f)) throw new FsError('EBADF', `fd ${fd} is not open for writing`);
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await f.fh.write(data, done, data.length - done, offset + done);
    if (bytesWritten === 0) break;
    done += bytesWritten;
  }
  return { written: done, iatt: fdIatt(f) };
}

export async function fstatOp(b: Brick, fd: number): Promise<Iatt> {
  return fdIatt(b.fds.get(fd));
}

export async function ftruncateOp(b: Brick, fd: number, size: number): Promise<Iatt> {
  const f = b.fds.get(fd);
  if (!writable(f)) throw new FsError('EBADF', `fd ${fd} is not open for writing`);
  await f.fh.truncate(size);
  return fdIatt(f);
}

/** truncate by path: regular files only; a symlink is refused, never followed. */
export async function truncateOp(b: Brick, loc: { path: string }, size: number | bigint): Promise<Iatt> {
  const hp = await b.resolve(loc.path);
  const st = await lstat(hp.host);
  if (st.isDirectory()) throw new FsError('EISDIR', `'${loc.path}' is a directory`);
  if (!st.isFile()) throw new FsError('EINVAL', `'${loc.path}' is not a regular file`);
  const fh = await open(hp.host, O_WRONLY | O_NOFOLLOW);
  try {
    await fh.truncate(Number(size));
    return statToIatt(fstatSync(fh.fd, { bigint: true }), await ensureGfid(hp.host));
  } finally {
    await fh.close();
  }
}

export async function flushOp(b: Brick, fd: number): Promise<void> {
  b.fds.get(fd); // data goes to the kernel at write; flush only checks the fd
}

export async function fsyncOp(b: Brick, fd: number, datasync: boolean): Promise<void> {
  const f = b.fds.get(fd);
  await (datasync ? f.fh.datasync() : f.fh.sync());
}

export async function releaseOp(b: Brick, fd: number): Promise<void> {
  const f = b.fds.take(fd);
  b.locks.release(f.gfid, f.id, f.lockOwners);
  b.locks.release(lockKey(f.gfid, FLOCK_OWNER_PREFIX), f.id, f.lockOwners);
  await f.fh.close();
}

/** Drops every lock an fd holds (its client went away); the fd itself stays open, for the client
 *  to use again after it reconnects to this same daemon. */
export function dropLocksOp(b: Brick, fd: number): void {
  let f;
  try { f = b.fds.get(fd); } catch { return; } // released meanwhile
  b.locks.release(f.gfid, f.id, f.lockOwners);
  b.locks.release(lockKey(f.gfid, FLOCK_OWNER_PREFIX), f.id, f.lockOwners);
  f.lockOwners.clear();
}

/** The lock table key of a file: flock(2) locks live apart from POSIX record locks. */
const lockKey = (gfid: string, owner: string) => (isFlockOwner(owner) ? `${gfid}:flock` : gfid);

export async function lkOp(b: Brick, fd: number, cmd: LockCmd, lock: Flock, signal?: AbortSignal): Promise<Flock> {
  const f = b.fds.get(fd);
  if (cmd !== 'getlk') {
    if (isFlockOwner(lock.owner)) {
      if (lock.type !== 'unlock') f.lockOwners.add(lock.owner);
      return b.locks.lk(lockKey(f.gfid, lock.owner), f.id, cmd, lock, signal);
    }
    if (lock.type === 'write' && !writable(f)) throw new FsError('EBADF', `fd ${fd} is not open for writing (write lock)`);
    if (lock.type === 'read' && !readable(f)) throw new FsError('EBADF', `fd ${fd} is not open for reading (read lock)`);
    if (lock.type !== 'unlock') f.lockOwners.add(lock.owner);
  }
  return b.locks.lk(lockKey(f.gfid, lock.owner), f.id, cmd, lock, signal);
}

/** An inode lock by path (replicate's domain, apart from POSIX locks), fair to waiting writers. */
export async function inodelkOp(b: Brick, loc: { path: string }, cmd: LockCmd, lock: Flock, signal?: AbortSignal): Promise<Flock> {
  if (cmd !== 'setlk' && cmd !== 'setlkw') throw new FsError('EINVAL', `inodelk takes setlk or setlkw, not '${String(cmd)}'`);
  if (!lock.owner) throw new FsError('EINVAL', 'inodelk needs an owner');
  const hp = await b.resolve(loc.path);
  const gfid = await b.gfidOf(hp.host, loc.path === '/');
  return b.locks.lk(`${gfid}:inodelk`, -1, cmd, lock, signal, true);
}
