// The one table of file operations. The Xlator type, the pass-through defaults and the list the
// wire ends check against are all derived from it, so adding an operation is one edit here.
import type {
  CreateArgs, Ctx, Dirent, Fd, Flock, Iatt, LockCmd, Loc, LookupReply, SetattrArgs, Statfs,
} from './types.js';

export interface Fops {
  /** Resolves a path; returns its attributes and the named extended attributes it has. */
  lookup(ctx: Ctx, loc: Loc, xattrs?: string[]): Promise<LookupReply>;
  stat(ctx: Ctx, loc: Loc): Promise<Iatt>;
  fstat(ctx: Ctx, fd: Fd): Promise<Iatt>;
  /** Every entry of a directory but '.' and '..', with attributes and the named xattrs. */
  readdirp(ctx: Ctx, loc: Loc, xattrs?: string[]): Promise<Dirent[]>;
  mkdir(ctx: Ctx, loc: Loc, args: CreateArgs): Promise<Iatt>;
  /** args.lock: a lock the brick takes on the file through the new fd before it answers (setlk);
   *  `locked` says whether it got it. */
  create(ctx: Ctx, loc: Loc, flags: number, args: CreateArgs): Promise<{ fd: Fd; iatt: Iatt; locked?: boolean }>;
  open(ctx: Ctx, loc: Loc, flags: number): Promise<Fd>;
  /** The returned Buffer is the caller's; it is shorter than size only at end of file. */
  read(ctx: Ctx, fd: Fd, offset: number, size: number): Promise<Buffer>;
  /** data stays the caller's; returns bytes written. */
  write(ctx: Ctx, fd: Fd, offset: number, data: Buffer): Promise<number>;
  truncate(ctx: Ctx, loc: Loc, size: number): Promise<Iatt>;
  ftruncate(ctx: Ctx, fd: Fd, size: number): Promise<Iatt>;
  flush(ctx: Ctx, fd: Fd): Promise<void>;
  fsync(ctx: Ctx, fd: Fd, datasync: boolean): Promise<void>;
  release(ctx: Ctx, fd: Fd): Promise<void>;
  unlink(ctx: Ctx, loc: Loc): Promise<void>;
  rmdir(ctx: Ctx, loc: Loc): Promise<void>;
  rename(ctx: Ctx, from: Loc, to: Loc): Promise<void>;
  link(ctx: Ctx, from: Loc, to: Loc): Promise<Iatt>;
  symlink(ctx: Ctx, target: string, loc: Loc, args: CreateArgs): Promise<Iatt>;
  /** A special file: args.mode carries its type (S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK, S_IFREG); rdev
   *  is the device number in the kernel's encoding (major << 8 | minor, minor's high bits above). */
  mknod(ctx: Ctx, loc: Loc, rdev: number, args: CreateArgs): Promise<Iatt>;
  /** fallocate(2) on an open file: mode is FALLOC_FL_* (0 allocates and extends). */
  fallocate(ctx: Ctx, fd: Fd, mode: number, offset: number, len: number): Promise<void>;
  readlink(ctx: Ctx, loc: Loc): Promise<string>;
  setattr(ctx: Ctx, loc: Loc, attrs: SetattrArgs): Promise<Iatt>;
  statfs(ctx: Ctx, loc: Loc): Promise<Statfs>;
  getxattr(ctx: Ctx, loc: Loc, name: string): Promise<Buffer>;
  /** flags: 0, XATTR_CREATE (1) or XATTR_REPLACE (2). */
  setxattr(ctx: Ctx, loc: Loc, name: string, value: Buffer, flags: number): Promise<void>;
  listxattr(ctx: Ctx, loc: Loc): Promise<string[]>;
  removexattr(ctx: Ctx, loc: Loc, name: string): Promise<void>;
  /** Atomically adds big-endian int32 counters elementwise to an xattr (absent = zeros); returns the sum. */
  xattrop(ctx: Ctx, loc: Loc, name: string, add: Buffer): Promise<Buffer>;
  /** POSIX record locks; getlk returns the conflicting lock or one of type 'unlock'. */
  lk(ctx: Ctx, fd: Fd, cmd: LockCmd, lock: Flock): Promise<Flock>;
  /** A lock on the inode at loc in a domain apart from POSIX locks (setlk or setlkw; replicate's
   *  transactions and heals): waiting writers go before new readers; a client's hold ends with
   *  its connection. */
  inodelk(ctx: Ctx, loc: Loc, cmd: LockCmd, lock: Flock): Promise<Flock>;
}

export type FopName = keyof Fops;

export const FOP_NAMES = [
  'lookup', 'stat', 'fstat', 'readdirp', 'mkdir', 'create', 'open', 'read', 'write', 'truncate',
  'ftruncate', 'flush', 'fsync', 'release', 'unlink', 'rmdir', 'rename', 'link', 'symlink',
  'readlink', 'setattr', 'statfs', 'getxattr', 'setxattr', 'listxattr', 'removexattr', 'xattrop', 'lk', 'mknod', 'fallocate', 'inodelk',
] as const satisfies readonly FopName[];

// A compile-time check that the list names every operation.
type Missing = Exclude<FopName, (typeof FOP_NAMES)[number]>;
const _allListed: Missing extends never ? true : Missing = true;
void _allListed;

/** A change another client made to what this one looked at, as a brick told it (GlusterFS's
 *  upcall cache invalidation; see proto/brick.proto's Upcall). */
export interface UpcallChange { path: string; gfid?: string; entry?: boolean; tree?: boolean; data?: boolean }

/** Passed up unchanged by every translator. all: forget everything (a brick's session ended, so
 *  news may have been lost); unsupported with it: this brick sends no upcalls, so cache no
 *  longer than without them. */
export interface UpcallEvent { type: 'upcall'; changes: UpcallChange[]; all?: boolean; unsupported?: boolean }

/** How long a cache keeps what it learned, in ms: `timeout` seconds while the bricks tell of other
 *  clients' changes (upcalls) or when the timeout was set explicitly (`given`), else at most
 *  `untold` seconds. */
export function cacheTtlMs(timeout: number, untold: number, told: boolean, given = false): number {
  return Math.max(1, (told || given ? timeout : Math.min(timeout, untold)) * 1000);
}

/** Events a translator passes up to its parents (GlusterFS's notify). */
export type XlatorEvent = 'child-up' | 'child-down' | UpcallEvent;

export interface Xlator extends Fops {
  readonly name: string;
  readonly type: string;
  readonly children: readonly Xlator[];
  parent?: Xlator;
  init(): Promise<void>;
  fini(): Promise<void>;
  notify(event: XlatorEvent, from: Xlator): void;
}

/**
 * The pass-through base: every operation a translator leaves out goes straight to its first
 * child (GlusterFS's default fops). init/fini/notify reach all children.
 */
export interface PassThrough extends Fops {}
export class PassThrough {
  parent?: Xlator;
  constructor(
    readonly name: string,
    readonly type: string,
    readonly children: readonly Xlator[],
  ) {
    for (const c of children) c.parent = this as unknown as Xlator;
  }

  async init(): Promise<void> {
    await Promise.all(this.children.map((c) => c.init()));
  }

  async fini(): Promise<void> {
    await Promise.allSettled(this.children.map((c) => c.fini()));
  }

  notify(event: XlatorEvent, _from: Xlator): void {
    this.parent?.notify(event, this as unknown as Xlator);
  }
}

for (const op of FOP_NAMES) {
  Object.defineProperty(PassThrough.prototype, op, {
    configurable: true,
    writable: true,
    value: function (this: PassThrough, ...args: unknown[]) {
      const child = this.children[0] as unknown as Record<string, (...a: unknown[]) => unknown>;
      return child[op](...args);
    },
  });
}
