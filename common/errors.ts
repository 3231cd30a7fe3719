// One error type for every failure of a file operation: a symbolic POSIX errno plus a cause.
// Every boundary (FUSE, gRPC, CLI) converts with toErrno()/errnoNumber() and nowhere else.
import { constants } from 'node:os';

export type Errno = keyof typeof constants.errno;

const ERRNO = constants.errno as Record<string, number>;
const BY_NUMBER = new Map<number, Errno>();
for (const [name, num] of Object.entries(ERRNO)) if (!BY_NUMBER.has(num)) BY_NUMBER.set(num, name as Errno);

export class FsError extends Error {
  readonly errno: Errno;
  constructor(errno: Errno, message?: string, options?: { cause?: unknown }) {
    // Most failures are answers (ENOENT of a lookup, ENODATA of a getxattr), not bugs: they carry no
    // stack, whose capture with async frames costs 4-13 us, a tenth of a FUSE request. EIO keeps one.
    const limit = Error.stackTraceLimit;
    if (errno !== 'EIO') Error.stackTraceLimit = 0;
    super(message ? `${errno}: ${message}` : errno, options);
    Error.stackTraceLimit = limit;
    this.name = 'FsError';
    this.errno = errno;
  }
}

export function isErrno(name: string): name is Errno {
  return name in ERRNO;
}

/** The positive errno number for a symbolic name (EIO for an unknown name). */
export function errnoNumber(name: Errno | string): number {
  return ERRNO[name] ?? ERRNO.EIO;
}

export function errnoName(num: number): Errno {
  return BY_NUMBER.get(Math.abs(num)) ?? 'EIO';
}

/** The symbolic errno of any thrown value: FsError, a Node system error, or EIO for anything else. */
export function toErrno(err: unknown): Errno {
  if (err instanceof FsError) return err.errno;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && isErrno(code)) return code;
  return 'EIO';
}

/** Wraps any thrown value as an FsError, keeping the original as the cause. */
export function toFsError(err: unknown): FsError {
  if (err instanceof FsError) return err;
  return new FsError(toErrno(err), (err as Error)?.message ?? String(err), { cause: err });
}

/** True when the errno says the far side is unreachable rather than that the operation failed. */
export function isConnectionErrno(errno: Errno): boolean {
  return errno === 'ENOTCONN' || errno === 'ECONNREFUSED' || errno === 'ETIMEDOUT' || errno === 'EHOSTUNREACH';
}
