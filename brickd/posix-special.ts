// What Node's fs cannot do by itself: special files (mknod/mkfifo), fallocate, and nanosecond
// timestamps. With the libc bindings of syscalls.ts (the normal case) these are single syscalls on
// a worker thread; without them (koffi not loadable) the standard tools do it, asynchronously:
// mkfifo(1)/mknod(1), a socket bound by a child node, fallocate(1), and `touch -h -d @S.N` to fix
// what lutimes (float seconds) rounded.
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { lstat, lutimes, open, chmod } from 'node:fs/promises';
import { FsError, type Errno } from '../common/errors.js';
import type { CreateArgs, Ctx, Iatt } from '../common/types.js';
import type { Brick } from './brick.js';
import { sys, warnUnavailable, type TimeSpec } from './syscalls.js';
import { checkGfid, creatingEntry } from './iatt.js';
import { finishEntry, newOwner, refuseRoot } from './posix-entry.js';

const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;

const MESSAGES: [RegExp, Errno][] = [
  [/File exists/i, 'EEXIST'], [/No such file/i, 'ENOENT'], [/Permission denied/i, 'EACCES'],
  [/Operation not permitted/i, 'EPERM'], [/No space/i, 'ENOSPC'], [/name too long/i, 'ENAMETOOLONG'],
  [/Not a directory/i, 'ENOTDIR'], [/not supported/i, 'EOPNOTSUPP'], [/Invalid argument/i, 'EINVAL'],
  [/Bad file descriptor/i, 'EBADF'], [/too large/i, 'EFBIG'], [/Read-only/i, 'EROFS'],
];

/** Runs a tool; a failure becomes the FsError its message names (EIO when it names none). */
export function tool(cmd: string, args: string[], cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += String(d); });
    child.on('error', (e) => reject(new FsError('EIO', `${cmd}: ${e.message}`, { cause: e })));
    child.on('exit', (code) => {
      if (code === 0) return resolve();
      const errno = MESSAGES.find(([re]) => re.test(err))?.[1] ?? 'EIO';
      reject(new FsError(errno, `${cmd} ${args.join(' ')}: ${err.trim() || `exit ${code}`}`));
    });
  });
}

/** @S.N for touch -d: the exact decimal value of t nanoseconds. */
function touchTime(t: bigint): string {
  const neg = t < 0n;
  const a = neg ? -t : t;
  return `@${neg ? '-' : ''}${a / 1_000_000_000n}.${String(a % 1_000_000_000n).padStart(9, '0')}`;
}

/** Sets the times of host (never following a final symlink) to the nanosecond: a bigint is
 *  nanoseconds since the epoch, 'now' the current time, 'omit' leaves that time exactly as it is. */
export async function setTimes(host: string, atime: TimeSpec, mtime: TimeSpec): Promise<void> {
  if (sys) return sys.utimensat(host, atime, mtime);
  warnUnavailable();
  const now = BigInt(Date.now()) * 1_000_000n;
  const old = atime === 'omit' || mtime === 'omit' ? await lstat(host, { bigint: true }) : undefined;
  const a = atime === 'now' ? now : atime === 'omit' ? old!.atimeNs : atime;
  const m = mtime === 'now' ? now : mtime === 'omit' ? old!.mtimeNs : mtime;
  await lutimes(host, Number(a) / 1e9, Number(m) / 1e9);
  const st = await lstat(host, { bigint: true });
  if (st.atimeNs !== a) await tool('touch', ['-h', '-a', '-d', touchTime(a), '--', host]);
  if (st.mtimeNs !== m) await tool('touch', ['-h', '-m', '-d', touchTime(m), '--', host]);
}

const major = (rdev: number) => (rdev >>> 8) & 0xfff;
const minor = (rdev: number) => (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);

/** A socket file bound by a short-lived child in the parent directory (sun_path is 108 bytes). */
const BIND_SOCKET = "require('net').createServer().listen(process.argv[1], () => process.exit(0)).on('error', (e) => { console.error(e.message); process.exit(1); })";

export async function mknodOp(b: Brick, ctx: Ctx, loc: { path: string }, rdev: number, args: CreateArgs): Promise<Iatt> {
  const hp = await b.resolve(loc.path);
  refuseRoot(hp, 'EEXIST', 'mknod');
  const gfid = checkGfid(args.gfid);
  const type = args.mode & S_IFMT;
  const perm = args.mode & ~args.umask & 0o7777;
  if (await lstat(hp.host).then(() => true, () => false)) throw new FsError('EEXIST', `'${loc.path}' exists`);
  const owner = await newOwner(ctx, hp.parent);
  switch (type) {
    case S_IFREG: case 0:
      return creatingEntry(hp.host, async () => {
        await (await open(hp.host, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, perm)).close();
        return finishEntry(hp.host, gfid, owner, args.xattrs, false, perm & 0o6000 ? () => chmod(hp.host, perm) : undefined);
      });
    case S_IFIFO: case S_IFCHR: case S_IFBLK: case S_IFSOCK:
      break;
    default: throw new FsError('EINVAL', `mknod of unknown file type ${type.toString(8)}`);
  }
  return creatingEntry(hp.host, async () => {
    if (sys) {
      // mknod(S_IFSOCK) makes the same socket inode a bind would leave behind.
      await sys.mknodat(hp.host, type | perm, type === S_IFCHR || type === S_IFBLK ? rdev : 0);
    } else {
      warnUnavailable();
      const oct = perm.toString(8);
      if (type === S_IFIFO) await tool('mkfifo', ['-m', oct, '--', hp.name], hp.parent);
      else if (type === S_IFSOCK) await tool(process.execPath, ['-e', BIND_SOCKET, hp.name], hp.parent);
      else await tool('mknod', ['-m', oct, '--', hp.name, type === S_IFCHR ? 'c' : 'b', String(major(rdev)), String(minor(rdev))], hp.parent);
    }
    // mknod(2) and the tools honour the umask (and bind drops set-id bits): set the exact mode.
    return finishEntry(hp.host, gfid, owner, args.xattrs, false, () => chmod(hp.host, perm));
  });
}

const FL = { KEEP_SIZE: 1, PUNCH_HOLE: 2, COLLAPSE_RANGE: 8, ZERO_RANGE: 16, INSERT_RANGE: 32 } as const;

/** fallocate(2) on the open file (without the bindings: fallocate(1) on /proc/PID/fd/N, so renames do not matter). */
export async function fallocateOp(b: Brick, fd: number, mode: number, offset: number, len: number): Promise<void> {
  const f = b.fds.get(fd);
  if ((f.flags & 3) === constants.O_RDONLY) throw new FsError('EBADF', `fd ${fd} is not open for writing`);
  if (len <= 0 || offset < 0) throw new FsError('EINVAL', `fallocate range ${offset}+${len}`);
  if (mode & ~(FL.KEEP_SIZE | FL.PUNCH_HOLE | FL.COLLAPSE_RANGE | FL.ZERO_RANGE | FL.INSERT_RANGE)) {
    throw new FsError('EOPNOTSUPP', `fallocate mode ${mode}`);
  }
  // fallocate(1) -p implies keep-size, as the kernel requires with a punched hole.
  if (sys) return sys.fallocate(f.fh.fd, mode & FL.PUNCH_HOLE ? mode | FL.KEEP_SIZE : mode, offset, len);
  warnUnavailable();
  const flags: string[] = [];
  if (mode & FL.PUNCH_HOLE) flags.push('-p');
  else if (mode & FL.COLLAPSE_RANGE) flags.push('-c');
  else if (mode & FL.INSERT_RANGE) flags.push('-i');
  else if (mode & FL.ZERO_RANGE) flags.push('-z');
  if (mode & FL.KEEP_SIZE && !(mode & FL.PUNCH_HOLE)) flags.push('-n');
  await tool('fallocate', [...flags, '-o', String(offset), '-l', String(len), `/proc/${process.pid}/fd/${f.fh.fd}`]);
}
