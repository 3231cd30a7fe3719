// Direct libc calls for what Node's fs cannot do: utimensat(2) to the nanosecond (with UTIME_NOW /
// UTIME_OMIT), mknodat(2) for FIFOs, devices and socket inodes, fallocate(2) with its modes. Made
// through koffi, asynchronously from the event loop (each call runs on a libuv worker thread, never
// blocking it; utimensatSync is for the brick's io-threads only), at most MAX_IN_FLIGHT at once, the rest queued here (koffi throws when its own queue
// is full). koffi keeps the worker's errno and restores it for the callback, so koffi.errno() read
// there is the call's own. A failure is an FsError with the errno's symbolic name.
// When koffi or libc cannot be loaded (another platform), `sys` is undefined and callers keep their
// portable fallback; `sysUnavailable` says why, and the reason is logged once. GFS_BRICK_NO_FFI=1
// in the environment forces the fallback (for tests of it).
import { createRequire } from 'node:module';
import { errnoName, FsError } from '../common/errors.js';

type Koffi = typeof import('koffi');
type Callback = (err: unknown, res: number) => void;
interface AsyncFn { async(...args: unknown[]): void }

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
/** tv_nsec values of utimensat(2): set to the current time / leave unchanged. */
const UTIME_NOW = (1n << 30n) - 1n;
const UTIME_OMIT = (1n << 30n) - 2n;
const MAX_IN_FLIGHT = 32;
const NS = 1_000_000_000n;

/** A time for utimensat: nanoseconds since the epoch, the current time, or left as it is. */
export type TimeSpec = bigint | 'now' | 'omit';

export interface Syscalls {
  /** Sets atime and mtime of path, never following a final symlink (AT_SYMLINK_NOFOLLOW). */
  utimensat(path: string, atime: TimeSpec, mtime: TimeSpec): Promise<void>;
  /** utimensat on the calling thread (for a worker thread: never on the event loop). */
  utimensatSync(path: string, atime: TimeSpec, mtime: TimeSpec): void;
  /** mknod(2) of path: mode carries the file type (S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK, S_IFREG);
   *  rdev is the Linux encoding of st_rdev (as stat reports it). Subject to the process umask. */
  mknodat(path: string, mode: number, rdev: number): Promise<void>;
  /** fallocate(2) on an open file descriptor. */
  fallocate(fd: number, mode: number, offset: number, len: number): Promise<void>;
}

let koffi: Koffi | undefined;
let fns: { utimensat: AsyncFn; mknodat: AsyncFn; fallocate: AsyncFn } | undefined;
export let sysUnavailable: string | undefined;
try {
  if (process.env.GFS_BRICK_NO_FFI === '1') throw new Error('GFS_BRICK_NO_FFI=1');
  if (process.platform !== 'linux') throw new Error(`no libc bindings for ${process.platform}`);
  koffi = createRequire(import.meta.url)('koffi') as Koffi;
  const libc = koffi.load('libc.so.6');
  fns = {
    utimensat: libc.func('int utimensat(int dirfd, const char *path, const void *times, int flags)') as unknown as AsyncFn,
    mknodat: libc.func('int mknodat(int dirfd, const char *path, uint32_t mode, uint64_t dev)') as unknown as AsyncFn,
    fallocate: libc.func('int fallocate64(int fd, int mode, int64_t offset, int64_t len)') as unknown as AsyncFn,
  };
} catch (e) {
  koffi = undefined;
  fns = undefined;
  sysUnavailable = (e as Error)?.message ?? String(e);
}

let warned = false;
/** Says once (on stderr) that the libc bindings are missing and the slower fallback is in use. */
export function warnUnavailable(): void {
  if (warned || !sysUnavailable) return;
  warned = true;
  process.emitWarning(`gfs-brickd: libc bindings unavailable (${sysUnavailable}); using the slower fallbacks for times and special files`);
}

let inFlight = 0;
const waiting: (() => void)[] = [];

/** Runs fn(...args) on a worker thread; resolves on a return value >= 0, else rejects with errno. */
function call(fn: AsyncFn, what: string, args: unknown[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = () => {
      inFlight++;
      const done: Callback = (err, res) => {
        // Read errno first, synchronously: koffi restores the worker's errno only for this callback.
        const errno = res < 0 ? koffi!.errno() : 0;
        inFlight--;
        args.length = 0; // the arguments (Buffers koffi points into) stay alive until here
        waiting.shift()?.();
        if (err) reject(new FsError('EIO', `${what}: ${(err as Error)?.message ?? err}`, { cause: err }));
        else if (res < 0) reject(new FsError(errnoName(errno), what));
        else resolve();
      };
      try {
        fn.async(...args, done);
      } catch (e) {
        inFlight--;
        waiting.shift()?.();
        reject(new FsError('EIO', `${what}: ${(e as Error)?.message ?? e}`, { cause: e }));
      }
    };
    if (inFlight < MAX_IN_FLIGHT) start();
    else waiting.push(start);
  });
}

/** Writes one struct timespec (two int64s: seconds, nanoseconds in [0, 1e9)) at offset off. */
function putTimespec(buf: Buffer, off: number, t: TimeSpec): void {
  if (t === 'now' || t === 'omit') {
    buf.writeBigInt64LE(0n, off);
    buf.writeBigInt64LE(t === 'now' ? UTIME_NOW : UTIME_OMIT, off + 8);
    return;
  }
  let sec = t / NS;
  let nsec = t % NS;
  if (nsec < 0n) { sec -= 1n; nsec += NS; }
  buf.writeBigInt64LE(sec, off);
  buf.writeBigInt64LE(nsec, off + 8);
}

/** Major and minor of the Linux st_rdev encoding, as glibc's makedev() packs them into dev_t. */
function devT(rdev: number): bigint {
  const major = BigInt((rdev >>> 8) & 0xfff);
  const minor = BigInt((rdev & 0xff) | ((rdev >>> 12) & 0xfff00));
  return ((major & 0xfffff000n) << 32n) | ((major & 0xfffn) << 8n) | ((minor & 0xffffff00n) << 12n) | (minor & 0xffn);
}

function timespecs(atime: TimeSpec, mtime: TimeSpec): Buffer {
  const times = Buffer.alloc(32);
  putTimespec(times, 0, atime);
  putTimespec(times, 16, mtime);
  return times;
}

export const sys: Syscalls | undefined = fns && {
  utimensat(path, atime, mtime) {
    return call(fns!.utimensat, `utimensat '${path}'`, [AT_FDCWD, path, timespecs(atime, mtime), AT_SYMLINK_NOFOLLOW]);
  },
  utimensatSync(path, atime, mtime) {
    const res = (fns!.utimensat as unknown as (...a: unknown[]) => number)(AT_FDCWD, path, timespecs(atime, mtime), AT_SYMLINK_NOFOLLOW);
    if (res < 0) throw new FsError(errnoName(koffi!.errno()), `utimensat '${path}'`);
  },
  mknodat(path, mode, rdev) {
    return call(fns!.mknodat, `mknod '${path}'`, [AT_FDCWD, path, mode >>> 0, devT(rdev)]);
  },
  fallocate(fd, mode, offset, len) {
    return call(fns!.fallocate, `fallocate fd ${fd}`, [fd, mode, BigInt(offset), BigInt(len)]);
  },
};
