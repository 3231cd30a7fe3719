// One served connection: reads requests off the device, finds each opcode's row in the table,
// builds the caller's Ctx (uid/gid/pid from the header, supplementary groups from /proc), runs the
// handler and replies as each finishes, in any order. Errors become -errno in one place; a throw
// that is no FsError is a bug: EIO, logged with its stack.
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { errnoNumber, FsError, toErrno } from '../../../common/errors.js';
import type { Xlator } from '../../../common/fops.js';
import type { Logger } from '../../../common/log.js';
import { profileAdd, profileEnabled } from '../../../common/profile.js';
import type { Ctx, Fd, Iatt, Dirent, Interrupt, Loc } from '../../../common/types.js';
import {
  IN_HEADER_SIZE, NOTIFY, Reader, entryOut, invalEntryOut, invalInodeOut, readInHeader, type InHeader, type Validity,
} from './abi.js';
import type { FuseDevice } from './device.js';
import { InodeTable, type Inode } from './inodes.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o0010;

/** The set-id bits the kernel's VFS clears when an unprivileged caller writes, truncates or chowns
 *  a regular file: set-uid always, set-gid only with group execute. */
export function setIdToKill(mode: number): number {
  if ((mode & S_IFMT) !== S_IFREG) return 0;
  return (mode & S_ISUID) | ((mode & (S_ISGID | S_IXGRP)) === (S_ISGID | S_IXGRP) ? S_ISGID : 0);
}

/** What a handler answers: payload buffers, nothing (an empty success), or NO_REPLY (FORGET). */
export const NO_REPLY: unique symbol = Symbol('no-reply');
export type Reply = Buffer | Buffer[] | void | typeof NO_REPLY;

export interface Request {
  readonly h: InHeader;
  readonly body: Reader;
  readonly ctx: Ctx;
  /** Keeps the request buffer past the handler's first await (WRITE data). */
  keep(): void;
}

export interface OpDef {
  name: string;
  handler: (s: Session, req: Request) => Promise<Reply>;
  /** Reads /proc/PID/status for the caller's supplementary groups (ops where ownership matters). */
  groups?: boolean;
}

export interface SessionOptions {
  log: Logger;
  readOnly: boolean;
  valid: Validity;
  writebackCache: boolean;
  acl?: boolean;
  selinux?: boolean;
}

/** One per request, so cheaper than an AbortController (whose signal and EventTarget cost ~5% of
 *  the mount's CPU): listeners run once, on the first abort. */
class Interruption implements Interrupt {
  aborted = false;
  private fns?: (() => void)[];
  addEventListener(_type: 'abort', fn: () => void): void {
    (this.fns ??= []).push(fn);
  }
  removeEventListener(_type: 'abort', fn: () => void): void {
    const i = this.fns ? this.fns.indexOf(fn) : -1;
    if (i >= 0) this.fns!.splice(i, 1);
  }
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const fns = this.fns ?? [];
    this.fns = undefined;
    for (const fn of fns) fn();
  }
}

export interface OpenFile { fd: Fd; nodeid: bigint; lockOwners: Set<string> }
export interface OpenDir { nodeid: bigint; entries?: Dirent[] }

/** Counts of READ and WRITE request sizes, for the log and the benchmark. */
export class SizeStats {
  readonly read = new Map<number, number>();
  readonly write = new Map<number, number>();
  add(which: 'read' | 'write', size: number): void {
    const m = this[which];
    if (m.size < 256 || m.has(size)) m.set(size, (m.get(size) ?? 0) + 1);
  }
  summary(): Record<string, Record<string, number>> {
    const obj = (m: Map<number, number>) => Object.fromEntries([...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, 16));
    return { read: obj(this.read), write: obj(this.write) };
  }
}

export class Session {
  readonly inodes = new InodeTable();
  readonly files = new Map<bigint, OpenFile>();
  readonly dirs = new Map<bigint, OpenDir>();
  readonly stats = new SizeStats();
  /** Distinguishes this mount's lock owners from other clients' on the bricks. */
  readonly mountId = randomBytes(6).toString('hex');
  private nextFh = 1n;
  private readonly inflight = new Map<bigint, Interruption>();
  private readonly groupCache = new LRUCache<number, number[]>({ max: 4096, ttl: 2000 });
  initDone = false;
  onInit?: () => void;

  constructor(
    readonly top: Xlator,
    readonly dev: FuseDevice,
    readonly opts: SessionOptions,
    private readonly table: ReadonlyMap<number, OpDef>,
  ) {}

  get log(): Logger {
    return this.opts.log;
  }

  newFh(): bigint {
    return this.nextFh++;
  }

  file(fh: bigint): OpenFile {
    const f = this.files.get(fh);
    if (!f) throw new FsError('EBADF', `no open file ${fh}`);
    return f;
  }

  /** The entry reply for parent/name resolving to iatt; counts one kernel lookup. */
  entry(parent: bigint, name: string, iatt: Iatt): Buffer {
    const n = this.inodes.link(parent, name, iatt);
    this.saw(n, iatt);
    return entryOut(n.nodeid, iatt, this.opts.valid);
  }

  /** Notes the attributes handed to the kernel; a change of mtime or size that none of our own
   *  writes made came from another client: drop the kernel's cached pages of the file. */
  saw(n: Inode, iatt: Iatt): void {
    const key = `${iatt.mtime}:${iatt.size}`;
    n.mode = iatt.mode;
    const changed = n.seen !== undefined && n.seen !== key && !n.wroteLocally;
    n.seen = key;
    n.wroteLocally = false;
    if (changed && (iatt.mode & 0o170000) === 0o100000) {
      setImmediate(() => void this.dev.notify(NOTIFY.INVAL_INODE, invalInodeOut(n.nodeid, 0n, 0n)));
    }
  }

  /** HANDLE_KILLPRIV_V2 leaves clearing set-id bits to us: after an unprivileged write or O_TRUNC
   *  open of such a file, chmod them away as root (the writer may not own the file, the kernel's
   *  own clearing is forced too) and drop the kernel's attributes of it. */
  async killSetId(nodeid: bigint, loc: Loc, pid: number): Promise<Iatt | undefined> {
    const n = this.inodes.get(nodeid);
    const kill = setIdToKill(n.mode ?? 0);
    if (!kill) return undefined;
    const iatt = await this.top.setattr({ uid: 0, gid: 0, groups: [], pid }, loc, { mode: (n.mode! & 0o7777) & ~kill });
    n.mode = iatt.mode;
    setImmediate(() => void this.dev.notify(NOTIFY.INVAL_INODE, invalInodeOut(nodeid, -1n, 0n))); // attributes only
    return iatt;
  }

  /** parent/name now names another inode than the kernel may have cached: drop that dentry. */
  invalEntry(parent: bigint, name: string): void {
    setImmediate(() => void this.dev.notify(NOTIFY.INVAL_ENTRY, invalEntryOut(parent, name)));
  }

  writable(): void {
    if (this.opts.readOnly) throw new FsError('EROFS', 'mounted read-only');
  }

  private async groupsOf(pid: number): Promise<number[]> {
    const hit = this.groupCache.get(pid);
    if (hit) return hit;
    const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const line = /^Groups:(.*)$/m.exec(text)?.[1] ?? '';
    const groups = line.trim().split(/\s+/).filter(Boolean).map(Number).filter((g) => Number.isInteger(g));
    if (pid) this.groupCache.set(pid, groups);
    return groups;
  }

  /** Takes one request buffer from the device. keep() tells the device the buffer stays ours. */
  handle(buf: Buffer, keepBuf: () => void): void {
    const h = readInHeader(buf);
    const row = this.table.get(h.opcode);
    const raw = buf.subarray(IN_HEADER_SIZE, Math.min(h.len, buf.length));
    // Handlers decode before their first await; rows that wait for /proc first get a copy.
    const body = new Reader(row?.groups ? Buffer.from(raw) : raw);
    if (!row) {
      this.log.debug({ opcode: h.opcode }, 'unknown opcode: ENOSYS');
      this.dev.reply(h.unique, -errnoNumber('ENOSYS'));
      return;
    }
    const abort = new Interruption();
    this.inflight.set(h.unique, abort);
    void this.run(row, h, body, abort, keepBuf);
  }

  /** INTERRUPT: the op's AbortSignal fires; the op answers (EINTR) when it notices. */
  interrupt(unique: bigint): void {
    this.inflight.get(unique)?.abort();
  }

  private async run(row: OpDef, h: InHeader, body: Reader, abort: Interruption, keepBuf: () => void): Promise<void> {
    const started = process.hrtime.bigint();
    let reply: Reply;
    try {
      const groups = row.groups && h.pid ? await this.groupsOf(h.pid) : [];
      const ctx: Ctx = { uid: h.uid, gid: h.gid, groups, pid: h.pid, signal: abort };
      reply = await row.handler(this, { h, body, ctx, keep: keepBuf });
    } catch (err) {
      this.inflight.delete(h.unique);
      // Failures count too: a cached ENODATA getxattr before every write is half the requests.
      if (profileEnabled()) profileAdd(`fuse.${row.name}`, Number(process.hrtime.bigint() - started) / 1e6);
      const errno = abort.aborted ? 'EINTR' : toErrno(err);
      if (!(err instanceof FsError) && errno === 'EIO') {
        this.log.error({ op: row.name, nodeid: String(h.nodeid), err, stack: (err as Error)?.stack }, 'handler failed unexpectedly');
      } else if (this.log.isLevelEnabled('debug')) {
        this.log.debug({ op: row.name, nodeid: String(h.nodeid), errno, msg: (err as Error)?.message }, 'op failed');
      }
      this.dev.reply(h.unique, -errnoNumber(errno));
      return;
    }
    this.inflight.delete(h.unique);
    if (profileEnabled()) profileAdd(`fuse.${row.name}`, Number(process.hrtime.bigint() - started) / 1e6);
    if (reply === NO_REPLY) return;
    if (this.log.isLevelEnabled('trace')) {
      this.log.trace({ op: row.name, nodeid: String(h.nodeid), us: Number(process.hrtime.bigint() - started) / 1000 }, 'ok');
    }
    this.dev.reply(h.unique, 0, reply === undefined ? [] : Array.isArray(reply) ? reply : [reply]);
  }
}
