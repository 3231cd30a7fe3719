// The values every translator and both wire ends share. Buffers passed into an operation belong to
// the caller until the returned promise settles; Buffers returned belong to the receiver.
import type { WriteMark } from './write-mark.js';

/** Who asks: carried from the FUSE request down to the brick, which acts with these ids. */
export interface Ctx {
  uid: number;
  gid: number;
  groups: number[];
  pid: number;
  signal?: Interrupt;
  /** A compound operation: counter additions (xattrop) the brick makes, in order, before the
   *  operation itself, in the same round trip (replicate's pre-op). Only protocol/client reads it;
   *  a failure of one fails the call with `preFailed` set and the operation not run. */
  pre?: readonly { loc: Loc; name: string; add: Buffer }[];
  /** A compound operation: an inode lock the brick takes (setlk) before `pre` and the operation;
   *  a busy one fails the call with `preFailed` set (replicate's metadata transactions). */
  lock?: { loc: Loc; lock: Flock };
  /** A compound operation: an inode lock (its owner's) the brick lets go once the operation is
   *  done, whatever its outcome (replicate ends a transaction's two locks in one call). */
  unlock?: { loc: Loc; lock: Flock };
  /** A write that write-behind sends ahead of a setattr of its file; protocol/client notes the
   *  sessions it leaves on. */
  written?: WriteMark;
  /** A setattr: the writes it must follow. Sent on a brick session after them, it goes at once
   *  and the brick applies it after them; otherwise it waits for their answers. */
  after?: readonly WriteMark[];
  /** A setattr that relies on the lock and marks this write carried (replicate's metadata part,
   *  which a new file's first write sets up): it goes right behind that write, before its answer,
   *  and the brick runs it only if they were made. Where it cannot go so (the write went on
   *  another session, a brick without 'after-marks'), it fails with `preFailed` (EAGAIN), unsent. */
  marksOf?: WriteMark;
  /** open only: xattrs the brick reads with the open, in the same round trip (replicate's
   *  changelog: lookup + open as one call); they come back as the fd's OPEN_XATTRS. */
  openXattrs?: readonly string[];
  /** open only: a lock the brick takes on the file through the new fd (setlk, never waiting:
   *  replicate's data transaction lock for the writes of an fd opened for writing); the fd's
   *  OPEN_LOCKED says whether it did. */
  openLock?: Flock;
}

/** The caller gave up (FUSE INTERRUPT): the part of AbortSignal that operations use. */
export interface Interrupt {
  readonly aborted: boolean;
  addEventListener(type: 'abort', fn: () => void, opts?: { once?: boolean }): void;
  removeEventListener(type: 'abort', fn: () => void): void;
}

export const ROOT_CTX: Ctx = Object.freeze({ uid: 0, gid: 0, groups: [], pid: 0 });

/** Where an inode is: its path from the volume root ('/' or '/a/b'), and its gfid when known. */
export interface Loc {
  path: string;
  gfid?: string;
}

/** Nanoseconds since the epoch. */
export type Nanos = bigint;

/** One attribute type for every layer (GlusterFS's iatt). */
export interface Iatt {
  gfid: string;
  ino: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: bigint;
  blocks: bigint;
  blksize: number;
  atime: Nanos;
  mtime: Nanos;
  ctime: Nanos;
}

/** What setattr changes; absent fields stay as they are. 'now' is UTIME_NOW. */
export interface SetattrArgs {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: bigint;
  atime?: Nanos | 'now';
  mtime?: Nanos | 'now';
}

export interface Statfs {
  bsize: number;
  frsize: number;
  blocks: bigint;
  bfree: bigint;
  bavail: bigint;
  files: bigint;
  ffree: bigint;
  namemax: number;
}

export interface Dirent {
  name: string;
  iatt: Iatt;
  /** Extended attributes asked for by name in readdirp (missing ones are absent). */
  xattrs: Record<string, Buffer>;
}

export interface LookupReply {
  iatt: Iatt;
  xattrs: Record<string, Buffer>;
}

/** An open file. Each layer keeps its own state in ctx under its own key. */
export interface Fd {
  readonly loc: Loc;
  readonly flags: number;
  gfid: string;
  readonly ctx: Map<object, unknown>;
}

export function newFd(loc: Loc, flags: number, gfid: string): Fd {
  return { loc, flags, gfid, ctx: new Map() };
}

/** Fd.ctx key under which the layer that opened a file may leave the Iatt the open saw, so the FUSE
 *  bridge can keep the kernel's cached pages when the file did not change (close-to-open). */
export const OPEN_IATT: object = Object.freeze({ key: 'open-iatt' });
/** Fd.ctx key of the xattrs (name -> value, the existing ones of ctx.openXattrs) the open read. */
export const OPEN_XATTRS: object = Object.freeze({ key: 'open-xattrs' });
/** Fd.ctx key: true when the open took ctx.openLock. */
export const OPEN_LOCKED: object = Object.freeze({ key: 'open-locked' });

export type LockType = 'read' | 'write' | 'unlock';

export interface Flock {
  type: LockType;
  start: bigint;
  /** 0 means to the end of the file, as in struct flock. */
  len: bigint;
  pid: number;
  /** Identifies the lock owner across calls (the kernel's lock_owner). */
  owner: string;
}

export type LockCmd = 'getlk' | 'setlk' | 'setlkw';

/** Owners of BSD flock(2) locks start with this; bricks keep them apart from POSIX record locks
 *  (the two kinds never conflict with each other, as on Linux) and need no read/write access. */
export const FLOCK_OWNER_PREFIX = 'flock:';
export const isFlockOwner = (owner: string) => owner.startsWith(FLOCK_OWNER_PREFIX);

/** Entry-creating operations carry the new inode's gfid and the caller's umask. */
export interface CreateArgs {
  mode: number;
  umask: number;
  gfid: string;
  /** Extended attributes set atomically with creation (layouts, linkto). */
  xattrs?: Record<string, Buffer>;
  /** create only: a lock to take on the new file through its fd (replicate's transaction lock). */
  lock?: Flock;
}

/** open(2)'s truncating flag (Linux), for the layers that must see it before the brick does. */
export const O_TRUNC = 0o1000;

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_ISVTX = 0o1000;

export const isDir = (mode: number) => (mode & S_IFMT) === S_IFDIR;
export const isReg = (mode: number) => (mode & S_IFMT) === S_IFREG;
export const isLnk = (mode: number) => (mode & S_IFMT) === S_IFLNK;

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

export function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
