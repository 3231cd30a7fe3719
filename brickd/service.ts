// The gRPC face of the brick: one generic wrapper (auth, caller creds, errors, debug log) around
// one table of handlers that convert brick.proto messages to and from the posix-* operations.
import { createHash, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { bulkBuffers } from '../common/buffers.js';
import { FsError, toErrno, toFsError } from '../common/errors.js';
import { profileAdd, profileEnabled } from '../common/profile.js';
import { encodeSession, SessionOutbox } from '../common/proto.js';
import type { CreateArgs, Ctx, Flock, LockCmd, LockType } from '../common/types.js';
import { MD, authError, ctxFromMetadata, iattToWire, setattrFromWire, toGrpcError, type WireSetattr } from '../common/wire.js';
import type { Brick } from './brick.js';
import * as attr from './posix-attr.js';
import * as entry from './posix-entry.js';
import * as file from './posix-file.js';
import * as special from './posix-special.js';

type Wire = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Handler = (b: Brick, ctx: Ctx, req: Wire, signal: AbortSignal) => Promise<Wire>;

const loc = (l: Wire | null | undefined) => ({ path: String(l?.path ?? ''), gfid: String(l?.gfid ?? '') });

function createArgs(a: Wire | null | undefined): CreateArgs {
  return { mode: Number(a?.mode ?? 0), umask: Number(a?.umask ?? 0), gfid: String(a?.gfid ?? ''), xattrs: a?.xattrs ?? {} };
}

function flockFromWire(l: Wire | null | undefined): Flock {
  return {
    type: String(l?.type ?? '') as LockType, start: BigInt(l?.start ?? 0), len: BigInt(l?.len ?? 0),
    pid: Number(l?.pid ?? 0), owner: String(l?.owner ?? ''),
  };
}

const flockToWire = (l: Flock) => ({ type: l.type, start: Number(l.start), len: Number(l.len), pid: l.pid, owner: l.owner });

const iattRes = async (p: Promise<import('../common/types.js').Iatt>) => ({ iatt: iattToWire(await p) });
const empty = async (p: Promise<void>) => { await p; return {}; };

/** What this brick does beyond the calls (PingRes.features). */
const BRICK_FEATURES = ['after-writes', 'unlock-after', 'session-batch', 'upcall', 'open-xattrs', 'after-marks'] as const;

/** One row per rpc of proto/brick.proto. */
export const HANDLERS: Record<string, Handler> = {
  Ping: async (b) => ({ volume_id: b.config.volumeId, brick_path: b.config.brickPath, pid: process.pid, features: [...BRICK_FEATURES] }),
  Lookup: async (b, _c, r) => {
    const res = await entry.lookup(b, loc(r.loc), r.xattrs);
    return { iatt: iattToWire(res.iatt), xattrs: res.xattrs };
  },
  Stat: (b, _c, r) => iattRes(entry.stat(b, loc(r.loc))),
  Fstat: (b, _c, r) => iattRes(file.fstatOp(b, Number(r.fd))),
  Readdirp: async (b, _c, r) => {
    const list = await entry.readdirp(b, loc(r.loc), r.xattrs);
    return { entries: list.map((e) => ({ name: e.name, iatt: iattToWire(e.iatt), xattrs: e.xattrs })) };
  },
  Mkdir: (b, c, r) => iattRes(entry.mkdirOp(b, c, loc(r.loc), createArgs(r.args))),
  Create: async (b, c, r) => {
    const res = await file.createOp(b, c, loc(r.loc), Number(r.flags), createArgs(r.args), r.lock ? flockFromWire(r.lock) : undefined);
    return { fd: res.fd, iatt: iattToWire(res.iatt), locked: res.locked };
  },
  Open: async (b, _c, r) => {
    const res = await file.openOp(b, loc(r.loc), Number(r.flags), r.xattrs, r.lock ? flockFromWire(r.lock) : undefined);
    return { fd: res.fd, iatt: iattToWire(res.iatt), xattrs: res.xattrs, locked: res.locked };
  },
  Read: async (b, _c, r) => ({ data: await file.readOp(b, Number(r.fd), Number(r.offset), Number(r.size)) }),
  Write: async (b, _c, r) => {
    const res = await file.writeOp(b, Number(r.fd), Number(r.offset), r.data ?? Buffer.alloc(0));
    return { written: res.written, iatt: iattToWire(res.iatt) };
  },
  Truncate: (b, _c, r) => iattRes(file.truncateOp(b, loc(r.loc), Number(r.size))),
  Ftruncate: (b, _c, r) => iattRes(file.ftruncateOp(b, Number(r.fd), Number(r.size))),
  Flush: (b, _c, r) => empty(file.flushOp(b, Number(r.fd))),
  Fsync: (b, _c, r) => empty(file.fsyncOp(b, Number(r.fd), Boolean(r.datasync))),
  Release: (b, _c, r) => empty(file.releaseOp(b, Number(r.fd))),
  Unlink: (b, _c, r) => empty(entry.unlinkOp(b, loc(r.loc))),
  Rmdir: (b, _c, r) => empty(entry.rmdirOp(b, loc(r.loc))),
  Rename: (b, _c, r) => empty(entry.renameOp(b, loc(r.from), loc(r.to))),
  Link: (b, _c, r) => iattRes(entry.linkOp(b, loc(r.from), loc(r.to))),
  Symlink: (b, c, r) => iattRes(entry.symlinkOp(b, c, String(r.target ?? ''), loc(r.loc), createArgs(r.args))),
  Readlink: async (b, _c, r) => ({ target: await entry.readlinkOp(b, loc(r.loc)) }),
  Setattr: (b, _c, r) => iattRes(attr.setattrOp(b, loc(r.loc), setattrFromWire(r as WireSetattr))),
  Statfs: async (b, _c, r) => {
    await entry.stat(b, loc(r.loc ?? { path: '/' }));
    const s = await attr.statfsOp(b);
    return { ...s, blocks: Number(s.blocks), bfree: Number(s.bfree), bavail: Number(s.bavail), files: Number(s.files), ffree: Number(s.ffree) };
  },
  Getxattr: async (b, _c, r) => ({ value: await attr.getxattrOp(b, loc(r.loc), String(r.name ?? '')) }),
  Setxattr: (b, _c, r) => empty(attr.setxattrOp(b, loc(r.loc), String(r.name ?? ''), r.value ?? Buffer.alloc(0), Number(r.flags))),
  Listxattr: async (b, _c, r) => ({ names: await attr.listxattrOp(b, loc(r.loc)) }),
  Removexattr: (b, _c, r) => empty(attr.removexattrOp(b, loc(r.loc), String(r.name ?? ''))),
  Xattrop: async (b, _c, r) => ({ value: await attr.xattropOp(b, loc(r.loc), String(r.name ?? ''), r.add ?? Buffer.alloc(0)) }),
  Mknod: (b, c, r) => iattRes(special.mknodOp(b, c, loc(r.loc), Number(r.rdev), createArgs(r.args))),
  Fallocate: (b, _c, r) => empty(special.fallocateOp(b, Number(r.fd), Number(r.mode), Number(r.offset), Number(r.len))),
  Lk: async (b, _c, r, signal) => ({
    lock: flockToWire(await file.lkOp(b, Number(r.fd), String(r.cmd) as LockCmd, flockFromWire(r.lock), signal)),
  }),
  Inodelk: async (b, _c, r, signal) => ({
    lock: flockToWire(await file.inodelkOp(b, loc(r.loc), String(r.cmd) as LockCmd, flockFromWire(r.lock), signal)),
  }),
};

/** A compound request's additions on one inode (req.adds: XattropReq messages of one loc). */
const XATTROP_MANY: Handler = async (b, _c, r) => ({
  values: await attr.xattropManyOp(b, loc(r.loc), (r.adds as Wire[]).map((a) => ({ name: String(a.name ?? ''), add: a.add ?? Buffer.alloc(0) }))),
});

const digest = (s: string) => createHash('sha256').update(s).digest();
/** The digest of each volume secret, computed once rather than on every call. */
const secretDigests = new Map<string, Buffer>();
const secretDigest = (s: string) => {
  let d = secretDigests.get(s);
  if (!d) secretDigests.set(s, (d = digest(s)));
  return d;
};

export interface AuthConfig {
  volumeId: string;
  secret: string;
}

/** Null when the call carries the volume's credentials, else why not. */
export function checkAuth(md: grpc.Metadata, auth: AuthConfig): string | null {
  const vol = md.get(MD.volumeId)[0];
  if (typeof vol !== 'string' || vol.toLowerCase() !== auth.volumeId) return 'wrong or missing volume id';
  const given = md.get(MD.auth)[0];
  if (typeof given !== 'string' || !timingSafeEqual(digest(given), secretDigest(auth.secret))) return 'wrong or missing volume secret';
  return null;
}

function pathOf(req: Wire): string {
  return String(req?.loc?.path ?? req?.from?.path ?? (req?.fd !== undefined ? `fd ${req.fd}` : ''));
}

/** Runs one operation: the handler's answer, or its failure as an FsError, logged as GlusterFS's
 * server logs it (unexpected failures always, everything else at debug). */
async function runOp(name: string, h: Handler, brick: Brick, ctx: Ctx, req: Wire, signal: AbortSignal): Promise<Wire> {
  const started = process.hrtime.bigint();
  try {
    const res = await h(brick, ctx, req, signal);
    if (profileEnabled()) profileAdd(`brick.${name}`, Number(process.hrtime.bigint() - started) / 1e6);
    if (brick.log.isLevelEnabled('debug')) brick.log.debug({ op: name, path: pathOf(req), ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'ok');
    return res;
  } catch (err) {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (profileEnabled()) profileAdd(`brick.${name}`, ms);
    const errno = toErrno(err);
    if (errno === 'EIO' && !(err instanceof FsError)) {
      brick.log.error({ op: name, path: pathOf(req), ms, err, stack: (err as Error)?.stack }, 'unexpected failure');
    } else if (brick.log.isLevelEnabled('debug')) {
      brick.log.debug({ op: name, path: pathOf(req), ms, errno }, (err as Error)?.message ?? String(err));
    }
    throw toFsError(err);
  }
}

function refused(call: { metadata: grpc.Metadata; getPeer(): string }, name: string, brick: Brick, auth: AuthConfig): grpc.ServiceError | null {
  const why = checkAuth(call.metadata, auth);
  if (!why) return null;
  brick.log.warn({ op: name, peer: call.getPeer(), reason: why }, 'refused unauthenticated call');
  return authError(`${why} for volume ${brick.config.volume}`);
}

function wrap(name: string, h: Handler, brick: Brick, auth: AuthConfig): grpc.handleUnaryCall<Wire, Wire> {
  return (call, callback) => {
    const denied = refused(call, name, brick, auth);
    if (denied) {
      callback(denied);
      return;
    }
    const abort = new AbortController();
    call.on('cancelled', () => abort.abort());
    runOp(name, h, brick, ctxFromMetadata(call.metadata), call.request ?? {}, abort.signal)
      .then((res) => callback(null, res), (err: unknown) => callback(toGrpcError(err)));
  };
}

/** The oneof field of FopRequest/FopReply for each rpc: its name in lower case. */
const BY_FIELD = new Map(Object.entries(HANDLERS).filter(([n]) => n !== 'Ping').map(([n, h]) => [n.toLowerCase(), { name: n, h }]));

function callerCtx(c: Wire | null | undefined): Ctx {
  return { uid: Number(c?.uid ?? 65534), gid: Number(c?.gid ?? 65534), groups: ((c?.groups ?? []) as number[]).map(Number), pid: Number(c?.pid ?? 0) };
}

const NEVER = new AbortController().signal;
/** Writes a session remembers the marks of (FopRequest.after_marks_of): a request relying on one
 *  is sent while that write is in flight, and only a transaction's first write carries marks. */
const MARKING_MAX = 1024;

/** The Session stream: every request runs at once and is answered, by id, when it finishes. */
function session(brick: Brick, auth: AuthConfig): grpc.handleBidiStreamingCall<Wire, Wire> {
  return (call) => {
    const denied = refused(call, 'Session', brick, auth);
    if (denied) {
      call.emit('error', denied);
      return;
    }
    // The owners of the inode locks it asked for: they end with the session, however it ends.
    const inodelkOwners = new Set<string>();
    const dropInodelks = () => {
      if (inodelkOwners.size) brick.locks.dropOwners(inodelkOwners);
      inodelkOwners.clear();
    };
    // Ops in progress by id; only a lock wait can be cancelled (an AbortController costs ~10 us).
    const running = new Map<number, AbortController | null>();
    let closed = false;
    let ending = false;
    const out = new SessionOutbox('res', call.metadata.get(MD.sessionBatch)[0] === '1', (m, cb) => { if (!closed) call.write(m, cb); });
    // A session that asks for upcalls hears of other clients' changes to what it looked at.
    const upcallSid = call.metadata.get(MD.upcall)[0] === '1'
      ? brick.upcall.open((entries) => { if (!closed) out.send(encodeSession('res', { id: 0, upcall: { entries } })); })
      : 0;
    const fdInfo = (fd: number) => brick.fds.find(fd);
    const finish = () => {
      if (ending && !closed && running.size === 0) {
        out.flush();
        closed = true;
        brick.upcall.close(upcallSid);
        dropInodelks();
        call.end();
      }
    };
    // The fds this client took locks on: when it goes away, its locks go (a healer or another
    // client would wait on them for ever), as GlusterFS's server clears a disconnected client's.
    const locked = new Set<number>();
    // Writes in progress by their file's gfid, which a request with after_writes follows.
    const writing = new Map<string, Set<Promise<unknown>>>();
    const writesBefore = (gfid: string): Promise<unknown> | undefined => {
      const ps = gfid ? [...(writing.get(gfid) ?? [])] : [...writing.values()].flatMap((set) => [...set]);
      return ps.length ? Promise.allSettled(ps) : undefined;
    };
    // Whether each recent write that carried a lock or marks made them, by request id, for the
    // requests that rely on them (FopRequest.after_marks_of). Forgotten oldest first: a request
    // naming a forgotten write fails as if it had made none (its client then sets its own).
    const marking = new Map<number, Promise<boolean>>();
    // The closes this client asked for (FopRequest.released), which its later lock requests follow.
    let closing: Promise<unknown> = Promise.resolve();
    const close = (fds: number[], ctx: Ctx) => {
      const done = fds.map((fd) => {
        locked.delete(fd);
        return runOp('Release', HANDLERS.Release, brick, ctx, { fd }, NEVER).catch(() => undefined);
      });
      closing = Promise.all([closing, ...done]);
    };
    const stop = () => {
      if (closed && running.size === 0 && locked.size === 0 && inodelkOwners.size === 0) return;
      closed = true;
      brick.upcall.close(upcallSid);
      for (const a of running.values()) a?.abort();
      running.clear();
      for (const fd of locked) file.dropLocksOp(brick, fd);
      if (locked.size || inodelkOwners.size) brick.log.info({ peer: call.getPeer(), fds: locked.size, inodelks: inodelkOwners.size }, 'client gone: its locks dropped');
      locked.clear();
      dropInodelks();
    };
    call.on('cancelled', stop);
    call.on('error', stop);
    call.on('end', () => { ending = true; finish(); });
    // A carrier's requests run as if each had come on its own, in order.
    call.on('data', (m: Wire) => {
      if (m.batch?.length) for (const r of m.batch as Wire[]) onRequest(r);
      else onRequest(m);
    });
    function onRequest(m: Wire): void {
      const id = Number(m.id);
      if (m.cancel) {
        running.get(id)?.abort();
        return;
      }
      const field = String(m.req ?? '');
      const op = BY_FIELD.get(field);
      if (!op) {
        if (!closed) out.send(encodeSession('res', { id, errno: 'ENOSYS', message: `no operation '${field}' on this brick` }));
        return;
      }
      const ctx = callerCtx(m.caller);
      if (upcallSid) brick.upcall.before(upcallSid, field, m[field], fdInfo);
      const released = (m.released ?? []) as number[];
      if (released.length) close(released.map(Number), ctx);
      if (field === 'lk' && m.lk?.lock?.type !== 'unlock') locked.add(Number(m.lk?.fd));
      if (field === 'release') locked.delete(Number(m.release?.fd)); // its close drops its locks
      if (field === 'inodelk') {
        const owner = String(m.inodelk?.lock?.owner ?? '');
        if (m.inodelk?.lock?.type === 'unlock') inodelkOwners.delete(owner);
        else inodelkOwners.add(owner);
      }
      const lockFirst = m.lock?.lock?.owner ? (m.lock as Wire) : undefined;
      if (lockFirst) inodelkOwners.add(String(lockFirst.lock.owner));
      const unlockAfter = m.unlock?.lock?.owner ? (m.unlock as Wire) : undefined;
      const abort = field === 'lk' || field === 'inodelk' ? new AbortController() : null;
      running.set(id, abort);
      const signal = abort?.signal ?? NEVER;
      const pre = (m.pre ?? []) as Wire[];
      let preFailed = false;
      let marked = false;
      const after = field === 'lk' ? closing : m.after_writes ? writesBefore(String(m[field]?.loc?.gfid ?? '')) : undefined;
      const marksOf = m.after_marks_of ? marking.get(Number(m.after_marks_of)) ?? Promise.resolve(false) : undefined;
      // A compound request: its counter additions first (all at once: each is atomic on its own
      // name), the operation only after all of them worked.
      const run = async () => {
        if (after) await after; // the fd closes before it dropped their locks; the writes before it
        if (marksOf && !(await marksOf)) {
          preFailed = true;
          throw new FsError('EAGAIN', `${op.name}: the write it relies on made no marks`);
        }
        if (lockFirst) {
          try {
            await runOp('Inodelk', HANDLERS.Inodelk, brick, ctx, { ...lockFirst, cmd: 'setlk' }, signal);
          } catch (e) {
            preFailed = true;
            throw e;
          }
        }
        if (pre.length) {
          // The additions on one inode (one per child key) as one: one lookup, one index update.
          const byPath = new Map<string, Wire[]>();
          for (const p of pre) {
            const path = String(p.loc?.path ?? '');
            byPath.set(path, [...(byPath.get(path) ?? []), p]);
          }
          const added = await Promise.allSettled([...byPath.values()].map((ps) => runOp('Xattrop', XATTROP_MANY, brick, ctx, { loc: ps[0].loc, adds: ps }, signal)));
          const bad = added.find((x) => x.status === 'rejected');
          if (bad) { preFailed = true; throw bad.reason; }
        }
        marked = true;
        return runOp(op.name, op.h, brick, ctx, m[field] ?? {}, signal);
      };
      // The inode lock let go after the operation goes whether the rest worked or not.
      const runThenUnlock = !unlockAfter ? run : async () => {
        try {
          return await run();
        } finally {
          const owner = String(unlockAfter.lock.owner);
          await runOp('Inodelk', HANDLERS.Inodelk, brick, ctx, { ...unlockAfter, cmd: 'setlk', lock: { ...unlockAfter.lock, type: 'unlock' } }, NEVER).catch(() => undefined);
          inodelkOwners.delete(owner);
        }
      };
      const job = runThenUnlock();
      if (field === 'write') {
        if (lockFirst || pre.length) {
          marking.set(id, job.then(() => marked, () => marked));
          if (marking.size > MARKING_MAX) marking.delete(marking.keys().next().value!);
        }
        const gfid = brick.fds.find(Number(m.write?.fd))?.gfid;
        if (gfid) {
          const set = writing.get(gfid) ?? new Set();
          writing.set(gfid, set.add(job));
          const gone = () => { set.delete(job); if (set.size === 0 && writing.get(gfid) === set) writing.delete(gfid); };
          job.then(gone, gone);
        }
      }
      job.then(
        (res) => {
          if (field === 'create' && res.locked) locked.add(Number(res.fd)); // dropped with the session too
          if (upcallSid) brick.upcall.after(upcallSid, field, m[field], res, fdInfo);
          return { id, [field]: res };
        },
        (err: FsError) => ({ id, errno: err.errno, message: err.message, pre_failed: preFailed }),
      ).then((reply) => {
        if (!running.delete(id)) return; // the stream went away
        if (!closed) {
          const sent = encodeSession('res', reply);
          // Encoded: a read's data buffer is free again, the message once the stream has sent it.
          const data = field === 'read' ? (reply as { read?: { data?: Buffer } }).read?.data : undefined;
          if (data) bulkBuffers.give(data);
          out.send(sent, () => bulkBuffers.give(sent));
        }
        finish();
      });
    }
  };
}

/** The implementation object for server.addService(brickService().service, ...). */
export function brickImplementation(brick: Brick, auth: AuthConfig): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [name, h] of Object.entries(HANDLERS)) impl[name] = wrap(name, h, brick, auth);
  impl.Session = session(brick, auth);
  return impl;
}
