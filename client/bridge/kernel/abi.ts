// The FUSE kernel protocol's wire structs (linux/fuse.h, protocol 7.33 as negotiated here): constants,
// a little-endian reader for request bodies and encoders for replies. Knows nothing of volumes.

export const FUSE_KERNEL_VERSION = 7;
/** The minor version we speak; the kernel adapts to an older one. Fixes every struct size below. */
export const FUSE_KERNEL_MINOR = 33;
export const FUSE_ROOT_ID = 1n;

export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;

export const INIT = {
  ASYNC_READ: 1 << 0, POSIX_LOCKS: 1 << 1, ATOMIC_O_TRUNC: 1 << 3, BIG_WRITES: 1 << 5, DONT_MASK: 1 << 6,
  FLOCK_LOCKS: 1 << 10, AUTO_INVAL_DATA: 1 << 12, DO_READDIRPLUS: 1 << 13, READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15, WRITEBACK_CACHE: 1 << 16, PARALLEL_DIROPS: 1 << 18, HANDLE_KILLPRIV: 1 << 19, POSIX_ACL: 1 << 20,
  ABORT_ERROR: 1 << 21, MAX_PAGES: 1 << 22, CACHE_SYMLINKS: 1 << 23, HANDLE_KILLPRIV_V2: 1 << 28,
} as const;

export const FATTR = {
  MODE: 1 << 0, UID: 1 << 1, GID: 1 << 2, SIZE: 1 << 3, ATIME: 1 << 4, MTIME: 1 << 5, FH: 1 << 6,
  ATIME_NOW: 1 << 7, MTIME_NOW: 1 << 8, LOCKOWNER: 1 << 9, CTIME: 1 << 10, KILL_SUIDGID: 1 << 11,
} as const;

/** HANDLE_KILLPRIV_V2: an unprivileged writer's WRITE, OPEN with O_TRUNC (fuse_write_in.write_flags,
 *  fuse_open_in.open_flags) asks us to clear the set-id bits, as FATTR.KILL_SUIDGID does in SETATTR. */
export const WRITE_KILL_SUIDGID = 1 << 2;
export const OPEN_KILL_SUIDGID = 1 << 0;

export const FOPEN = { DIRECT_IO: 1 << 0, KEEP_CACHE: 1 << 1, NONSEEKABLE: 1 << 2 } as const;
export const GETATTR_FH = 1;
export const LK_FLOCK = 1;
export const RELEASE_FLOCK_UNLOCK = 2;
export const FSYNC_FDATASYNC = 1;
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;
export const OFFSET_MAX = 0x7fffffffffffffffn;

export const NOTIFY = { INVAL_INODE: 2, INVAL_ENTRY: 3, DELETE: 6 } as const;

/** One opcode per request type the kernel sends (enum fuse_opcode). */
export const OP = {
  LOOKUP: 1, FORGET: 2, GETATTR: 3, SETATTR: 4, READLINK: 5, SYMLINK: 6, MKNOD: 8, MKDIR: 9, UNLINK: 10,
  RMDIR: 11, RENAME: 12, LINK: 13, OPEN: 14, READ: 15, WRITE: 16, STATFS: 17, RELEASE: 18, FSYNC: 20,
  SETXATTR: 21, GETXATTR: 22, LISTXATTR: 23, REMOVEXATTR: 24, FLUSH: 25, INIT: 26, OPENDIR: 27,
  READDIR: 28, RELEASEDIR: 29, FSYNCDIR: 30, GETLK: 31, SETLK: 32, SETLKW: 33, ACCESS: 34, CREATE: 35,
  INTERRUPT: 36, BMAP: 37, DESTROY: 38, IOCTL: 39, POLL: 40, NOTIFY_REPLY: 41, BATCH_FORGET: 42,
  FALLOCATE: 43, READDIRPLUS: 44, RENAME2: 45, LSEEK: 46, COPY_FILE_RANGE: 47, SYNCFS: 50, TMPFILE: 51,
} as const;

export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: bigint;
  uid: number;
  gid: number;
  pid: number;
}

export function readInHeader(buf: Buffer): InHeader {
  return {
    len: buf.readUInt32LE(0), opcode: buf.readUInt32LE(4), unique: buf.readBigUInt64LE(8),
    nodeid: buf.readBigUInt64LE(16), uid: buf.readUInt32LE(24), gid: buf.readUInt32LE(28), pid: buf.readUInt32LE(32),
  };
}

/** Sequential little-endian reads of a request body; strings are NUL-terminated bytes. */
export class Reader {
  private pos = 0;
  constructor(readonly buf: Buffer) {}
  u32(): number { const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  i32(): number { const v = this.buf.readInt32LE(this.pos); this.pos += 4; return v; }
  u64(): bigint { const v = this.buf.readBigUInt64LE(this.pos); this.pos += 8; return v; }
  /** A u64 as a number (offsets and sizes below 2^53). */
  n64(): number { return Number(this.u64()); }
  skip(n: number): this { this.pos += n; return this; }
  /** A NUL-terminated name, as a utf8 string (names are bytes; invalid utf8 is kept lossy). */
  str(): string {
    const end = this.buf.indexOf(0, this.pos);
    const stop = end < 0 ? this.buf.length : end;
    const s = this.buf.toString('utf8', this.pos, stop);
    this.pos = stop + 1;
    return s;
  }
  /** The rest of the body: a view into the request buffer, not a copy. */
  rest(len?: number): Buffer {
    const b = this.buf.subarray(this.pos, len === undefined ? undefined : this.pos + len);
    this.pos += b.length;
    return b;
  }
  get remaining(): number { return this.buf.length - this.pos; }
}

/** What the attribute encoder needs: a subset of Iatt with bigint times in nanoseconds. */
export interface WireAttr {
  ino: bigint; size: bigint; blocks: bigint; atime: bigint; mtime: bigint; ctime: bigint;
  mode: number; nlink: number; uid: number; gid: number; rdev: number; blksize: number;
}

const NS = 1_000_000_000n;
const U32 = 0xffffffff;

export const ATTR_SIZE = 88;

function putTime(b: Buffer, secOff: number, nsecOff: number, t: bigint): void {
  let s = t / NS;
  let n = t % NS;
  if (n < 0n) { n += NS; s -= 1n; }
  b.writeBigInt64LE(s, secOff);
  b.writeUInt32LE(Number(n), nsecOff);
}

export function writeAttr(b: Buffer, off: number, a: WireAttr): void {
  b.writeBigUInt64LE(a.ino, off);
  b.writeBigUInt64LE(a.size, off + 8);
  b.writeBigUInt64LE(a.blocks, off + 16);
  putTime(b, off + 24, off + 48, a.atime);
  putTime(b, off + 32, off + 52, a.mtime);
  putTime(b, off + 40, off + 56, a.ctime);
  b.writeUInt32LE(a.mode >>> 0, off + 60);
  b.writeUInt32LE(a.nlink >>> 0, off + 64);
  b.writeUInt32LE(a.uid >>> 0, off + 68);
  b.writeUInt32LE(a.gid >>> 0, off + 72);
  b.writeUInt32LE((a.rdev & U32) >>> 0, off + 76);
  b.writeUInt32LE(a.blksize >>> 0 || 4096, off + 80);
  b.writeUInt32LE(0, off + 84);
}

/** Cache validity in seconds (fractions allowed) as the kernel's sec + nsec pair. */
export interface Validity { entry: number; attr: number }

function putValid(b: Buffer, secOff: number, nsecOff: number, seconds: number): void {
  const s = Math.floor(seconds);
  b.writeBigUInt64LE(BigInt(s), secOff);
  b.writeUInt32LE(Math.round((seconds - s) * 1e9), nsecOff);
}

export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE;

/** struct fuse_entry_out; nodeid 0 is a negative entry (cached absence). */
export function entryOut(nodeid: bigint, a: WireAttr | null, v: Validity, into?: Buffer, off = 0): Buffer {
  const b = into ?? Buffer.alloc(ENTRY_OUT_SIZE);
  b.fill(0, off, off + ENTRY_OUT_SIZE);
  b.writeBigUInt64LE(nodeid, off);
  putValid(b, off + 16, off + 32, v.entry);
  putValid(b, off + 24, off + 36, v.attr);
  if (a) writeAttr(b, off + 40, a);
  return b;
}

export function attrOut(a: WireAttr, attrValid: number): Buffer {
  const b = Buffer.alloc(16 + ATTR_SIZE);
  putValid(b, 0, 8, attrValid);
  writeAttr(b, 16, a);
  return b;
}

export function openOut(fh: bigint, openFlags: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(fh, 0);
  b.writeUInt32LE(openFlags, 8);
  return b;
}

export function u32Out(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

export function u64Out(v: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v, 0);
  return b;
}

export interface WireStatfs { blocks: bigint; bfree: bigint; bavail: bigint; files: bigint; ffree: bigint; bsize: number; namemax: number; frsize: number }

export function statfsOut(s: WireStatfs): Buffer {
  const b = Buffer.alloc(80);
  b.writeBigUInt64LE(s.blocks, 0);
  b.writeBigUInt64LE(s.bfree, 8);
  b.writeBigUInt64LE(s.bavail, 16);
  b.writeBigUInt64LE(s.files, 24);
  b.writeBigUInt64LE(s.ffree, 32);
  b.writeUInt32LE(s.bsize, 40);
  b.writeUInt32LE(s.namemax, 44);
  b.writeUInt32LE(s.frsize, 48);
  return b;
}

export interface FileLock { start: bigint; end: bigint; type: number; pid: number }

export function readFileLock(r: Reader): FileLock {
  return { start: r.u64(), end: r.u64(), type: r.u32(), pid: r.u32() };
}

export function lkOut(l: FileLock): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(l.start, 0);
  b.writeBigUInt64LE(l.end, 8);
  b.writeUInt32LE(l.type, 16);
  b.writeUInt32LE(l.pid, 20);
  return b;
}

export interface InitOut {
  minor: number; maxReadahead: number; flags: number; maxBackground: number; congestionThreshold: number;
  maxWrite: number; timeGran: number; maxPages: number;
}

export function initOut(o: InitOut): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
  b.writeUInt32LE(o.minor, 4);
  b.writeUInt32LE(o.maxReadahead, 8);
  b.writeUInt32LE(o.flags >>> 0, 12);
  b.writeUInt16LE(o.maxBackground, 16);
  b.writeUInt16LE(o.congestionThreshold, 18);
  b.writeUInt32LE(o.maxWrite, 20);
  b.writeUInt32LE(o.timeGran, 24);
  b.writeUInt16LE(o.maxPages, 28);
  return b;
}

const align8 = (n: number) => (n + 7) & ~7;
const DIRENT_HEAD = 24;

/** The d_type of a mode (DT_REG, DT_DIR, ...). */
export const dtype = (mode: number) => (mode >>> 12) & 0o17;

/**
 * Packs struct fuse_dirent / fuse_direntplus records into a buffer of at most `size` bytes. add()
 * returns false, and packs nothing, when the record no longer fits.
 */
export class DirentPacker {
  private readonly buf: Buffer;
  private len = 0;
  constructor(size: number, private readonly plus: boolean) {
    this.buf = Buffer.alloc(size);
  }

  fits(name: string): boolean {
    const rec = align8((this.plus ? ENTRY_OUT_SIZE : 0) + DIRENT_HEAD + Buffer.byteLength(name));
    return this.len + rec <= this.buf.length;
  }

  add(name: string, ino: bigint, off: number, mode: number, entry?: { nodeid: bigint; attr: WireAttr | null; valid: Validity }): boolean {
    const nameBytes = Buffer.from(name);
    const head = this.plus ? ENTRY_OUT_SIZE : 0;
    const rec = align8(head + DIRENT_HEAD + nameBytes.length);
    if (this.len + rec > this.buf.length) return false;
    const at = this.len;
    if (this.plus) entryOut(entry?.nodeid ?? 0n, entry?.attr ?? null, entry?.valid ?? { entry: 0, attr: 0 }, this.buf, at);
    const d = at + head;
    this.buf.writeBigUInt64LE(ino, d);
    this.buf.writeBigUInt64LE(BigInt(off), d + 8);
    this.buf.writeUInt32LE(nameBytes.length, d + 16);
    this.buf.writeUInt32LE(dtype(mode), d + 20);
    nameBytes.copy(this.buf, d + DIRENT_HEAD);
    this.len += rec;
    return true;
  }

  result(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

export function outHeader(len: number, error: number, unique: bigint): Buffer {
  const b = Buffer.alloc(OUT_HEADER_SIZE);
  b.writeUInt32LE(len, 0);
  b.writeInt32LE(error, 4);
  b.writeBigUInt64LE(unique, 8);
  return b;
}

export function invalInodeOut(nodeid: bigint, off: bigint, len: bigint): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(nodeid, 0);
  b.writeBigInt64LE(off, 8);
  b.writeBigInt64LE(len, 16);
  return b;
}

/** fuse_notify_inval_entry_out followed by the name and its NUL. */
export function invalEntryOut(parent: bigint, name: string): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(16 + n.length + 1);
  b.writeBigUInt64LE(parent, 0);
  b.writeUInt32LE(n.length, 8);
  n.copy(b, 16);
  return b;
}
