// Conversions between the shared types and brick.proto messages, used by both wire ends:
// attributes, setattr masks, caller credentials and errors.
import * as grpc from '@grpc/grpc-js';
import { FsError, isErrno, toFsError, type Errno } from './errors.js';
import { gfidToIno } from './gfid.js';
import type { Ctx, Iatt, SetattrArgs } from './types.js';

const NS = 1_000_000_000n;

export interface WireIatt {
  gfid: string; mode: number; nlink: number; uid: number; gid: number; rdev: number; size: number;
  blocks: number; blksize: number;
  atime_sec: number; atime_nsec: number; mtime_sec: number; mtime_nsec: number; ctime_sec: number; ctime_nsec: number;
}

export function splitNanos(ns: bigint): { sec: number; nsec: number } {
  let sec = ns / NS;
  let nsec = ns % NS;
  if (nsec < 0n) { nsec += NS; sec -= 1n; }
  return { sec: Number(sec), nsec: Number(nsec) };
}

export function joinNanos(sec: number, nsec: number): bigint {
  return BigInt(sec) * NS + BigInt(nsec);
}

export function iattToWire(a: Iatt): WireIatt {
  const at = splitNanos(a.atime), mt = splitNanos(a.mtime), ct = splitNanos(a.ctime);
  return {
    gfid: a.gfid, mode: a.mode, nlink: a.nlink, uid: a.uid, gid: a.gid, rdev: a.rdev,
    size: Number(a.size), blocks: Number(a.blocks), blksize: a.blksize,
    atime_sec: at.sec, atime_nsec: at.nsec, mtime_sec: mt.sec, mtime_nsec: mt.nsec, ctime_sec: ct.sec, ctime_nsec: ct.nsec,
  };
}

export function iattFromWire(w: WireIatt): Iatt {
  return {
    gfid: w.gfid, ino: w.gfid ? gfidToIno(w.gfid) : 0n, mode: w.mode, nlink: w.nlink, uid: w.uid, gid: w.gid,
    rdev: Number(w.rdev), size: BigInt(w.size), blocks: BigInt(w.blocks), blksize: w.blksize,
    atime: joinNanos(w.atime_sec, w.atime_nsec), mtime: joinNanos(w.mtime_sec, w.mtime_nsec), ctime: joinNanos(w.ctime_sec, w.ctime_nsec),
  };
}

export const SETATTR = { MODE: 1, UID: 2, GID: 4, SIZE: 8, ATIME: 16, MTIME: 32, ATIME_NOW: 64, MTIME_NOW: 128 } as const;

export interface WireSetattr {
  valid: number; mode: number; uid: number; gid: number; size: number;
  atime_sec: number; atime_nsec: number; mtime_sec: number; mtime_nsec: number;
}

export function setattrToWire(s: SetattrArgs): WireSetattr {
  const w: WireSetattr = { valid: 0, mode: 0, uid: 0, gid: 0, size: 0, atime_sec: 0, atime_nsec: 0, mtime_sec: 0, mtime_nsec: 0 };
  if (s.mode !== undefined) { w.valid |= SETATTR.MODE; w.mode = s.mode; }
  if (s.uid !== undefined) { w.valid |= SETATTR.UID; w.uid = s.uid; }
  if (s.gid !== undefined) { w.valid |= SETATTR.GID; w.gid = s.gid; }
  if (s.size !== undefined) { w.valid |= SETATTR.SIZE; w.size = Number(s.size); }
  if (s.atime === 'now') w.valid |= SETATTR.ATIME_NOW;
  else if (s.atime !== undefined) { w.valid |= SETATTR.ATIME; const t = splitNanos(s.atime); w.atime_sec = t.sec; w.atime_nsec = t.nsec; }
  if (s.mtime === 'now') w.valid |= SETATTR.MTIME_NOW;
  else if (s.mtime !== undefined) { w.valid |= SETATTR.MTIME; const t = splitNanos(s.mtime); w.mtime_sec = t.sec; w.mtime_nsec = t.nsec; }
  return w;
}

export function setattrFromWire(w: WireSetattr): SetattrArgs {
  const s: SetattrArgs = {};
  if (w.valid & SETATTR.MODE) s.mode = w.mode;
  if (w.valid & SETATTR.UID) s.uid = w.uid;
  if (w.valid & SETATTR.GID) s.gid = w.gid;
  if (w.valid & SETATTR.SIZE) s.size = BigInt(w.size);
  if (w.valid & SETATTR.ATIME_NOW) s.atime = 'now';
  else if (w.valid & SETATTR.ATIME) s.atime = joinNanos(w.atime_sec, w.atime_nsec);
  if (w.valid & SETATTR.MTIME_NOW) s.mtime = 'now';
  else if (w.valid & SETATTR.MTIME) s.mtime = joinNanos(w.mtime_sec, w.mtime_nsec);
  return s;
}

// --- metadata: credentials of the volume and of the caller ---

export const MD = {
  volumeId: 'gfs-volume-id',
  auth: 'gfs-auth',
  uid: 'gfs-uid',
  gid: 'gfs-gid',
  groups: 'gfs-groups',
  pid: 'gfs-pid',
  errno: 'gfs-errno',
  /** On a Session: this client reads FopReply.batch. */
  sessionBatch: 'gfs-session-batch',
  /** On a Session: this client wants upcalls (FopReply.upcall: other clients' changes). */
  upcall: 'gfs-upcall',
} as const;

export function ctxToMetadata(ctx: Ctx, volumeId: string, secret: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(MD.volumeId, volumeId);
  md.set(MD.auth, secret);
  md.set(MD.uid, String(ctx.uid));
  md.set(MD.gid, String(ctx.gid));
  if (ctx.groups.length) md.set(MD.groups, ctx.groups.join(','));
  md.set(MD.pid, String(ctx.pid));
  return md;
}

function mdInt(md: grpc.Metadata, key: string, fallback: number): number {
  const v = md.get(key)[0];
  const n = v === undefined ? NaN : Number(v);
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}

export function ctxFromMetadata(md: grpc.Metadata): Ctx {
  const groups = String(md.get(MD.groups)[0] ?? '').split(',').filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n >= 0);
  return { uid: mdInt(md, MD.uid, 65534), gid: mdInt(md, MD.gid, 65534), groups, pid: mdInt(md, MD.pid, 0) };
}

// --- errors ---

/** The server side: any thrown value as a gRPC error carrying gfs-errno. */
export function toGrpcError(err: unknown): grpc.ServiceError {
  const fe = toFsError(err);
  const md = new grpc.Metadata();
  md.set(MD.errno, fe.errno);
  return Object.assign(new Error(fe.message), { code: grpc.status.UNKNOWN, details: fe.message, metadata: md }) as grpc.ServiceError;
}

export function authError(message: string): grpc.ServiceError {
  const md = new grpc.Metadata();
  md.set(MD.errno, 'EACCES');
  return Object.assign(new Error(message), { code: grpc.status.UNAUTHENTICATED, details: message, metadata: md }) as grpc.ServiceError;
}

/** The client side: a gRPC failure as an FsError. A brick that cannot be reached is ENOTCONN. */
export function fromGrpcError(err: unknown, where: string): FsError {
  const e = err as Partial<grpc.ServiceError>;
  const name = e.metadata?.get(MD.errno)[0];
  if (typeof name === 'string' && isErrno(name)) {
    return new FsError(name as Errno, `${where}: ${(e.details ?? '').replace(/^E[A-Z0-9]+: /, '')}`, { cause: err });
  }
  switch (e.code) {
    case grpc.status.UNAVAILABLE: return new FsError('ENOTCONN', `${where}: brick not reachable (${e.details})`, { cause: err });
    case grpc.status.DEADLINE_EXCEEDED: return new FsError('ETIMEDOUT', `${where}: no answer in time`, { cause: err });
    case grpc.status.CANCELLED: return new FsError('EINTR', `${where}: cancelled`, { cause: err });
    case grpc.status.UNAUTHENTICATED: return new FsError('EACCES', `${where}: ${e.details}`, { cause: err });
    case grpc.status.UNIMPLEMENTED: return new FsError('ENOSYS', `${where}: ${e.details}`, { cause: err });
    default: return new FsError('EIO', `${where}: ${e.details ?? (err as Error)?.message}`, { cause: err });
  }
}
