// The fuse-native (libfuse 2 high-level, path based) bridge. Known limits of the binding, fixed by
// the kernel-protocol bridge: callers' uid/gid never reach us (everything runs as the daemon's
// user), utimens passes atime twice and no flags reach create.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { constants as OS } from 'node:fs';
import { errnoNumber, FsError, toErrno } from '../../common/errors.js';
import type { Xlator } from '../../common/fops.js';
import { newGfid } from '../../common/gfid.js';
import { ROOT_CTX, S_IFDIR, type Ctx, type Fd, type Iatt, type Statfs } from '../../common/types.js';
import { INTERNAL_XATTR_PREFIX, unsupportedXattr, type Bridge, type BridgeOptions } from './index.js';

const require = createRequire(import.meta.url);
type Cb = (code: number, ...rest: unknown[]) => void;

const O_ACCMODE = 3;
const NS_PER_MS = 1_000_000n;
const UINT32_MAX = 0xffffffffn;

function toStat(a: Iatt) {
  return {
    mode: a.mode, uid: a.uid, gid: a.gid, size: Number(a.size), dev: 0, nlink: a.nlink,
    ino: Number(a.ino & UINT32_MAX), rdev: a.rdev, blksize: a.blksize || 4096, blocks: Number(a.blocks),
    atime: new Date(Number(a.atime / NS_PER_MS)), mtime: new Date(Number(a.mtime / NS_PER_MS)), ctime: new Date(Number(a.ctime / NS_PER_MS)),
  };
}

/** fuse-native's statfs fields are 32 bits: grow the block size until the counts fit. */
function toStatfs(s: Statfs) {
  let frsize = BigInt(s.frsize || s.bsize || 4096);
  let { blocks, bfree, bavail } = s;
  while (blocks > UINT32_MAX) {
    blocks /= 2n; bfree /= 2n; bavail /= 2n; frsize *= 2n;
  }
  const clamp = (v: bigint) => Number(v > UINT32_MAX ? UINT32_MAX : v);
  return {
    bsize: Number(frsize), frsize: Number(frsize), blocks: Number(blocks), bfree: Number(bfree), bavail: Number(bavail),
    files: clamp(s.files), ffree: clamp(s.ffree), favail: clamp(s.ffree), fsid: 0, flag: 0, namemax: s.namemax,
  };
}

export class FuseNativeBridge implements Bridge {
  private fuse: any;
  private readonly fds = new Map<number, Fd>();
  private nextFh = 1;
  private poll?: NodeJS.Timeout;
  private resolveClosed!: () => void;
  readonly closed = new Promise<void>((r) => { this.resolveClosed = r; });

  constructor(private readonly top: Xlator, private readonly opts: BridgeOptions) {}

  private ctx(): Ctx {
    return ROOT_CTX;
  }

  /** Runs one operation and answers the kernel: errors become -errno; a surprise becomes EIO, logged.
   *  reply gives the callback's arguments: [0, value] for most, [bytes] for read and write. */
  private run<T>(cb: Cb, op: string, fn: () => Promise<T>, reply: (v: T) => unknown[] = () => [0]): void {
    fn().then(
      (v) => cb(...(reply(v) as [number, ...unknown[]])),
      (e) => {
        const errno = toErrno(e);
        if (!(e instanceof FsError) && errno === 'EIO') this.opts.log.error({ op, err: e }, 'unexpected error');
        else this.opts.log.debug({ op, errno, err: (e as Error).message }, 'op failed');
        cb(-errnoNumber(errno));
      },
    );
  }

  private writable(): void {
    if (this.opts.readOnly) throw new FsError('EROFS', 'mounted read-only');
  }

  private fd(fh: number): Fd {
    const fd = this.fds.get(fh);
    if (!fd) throw new FsError('EBADF', `no open file ${fh}`);
    return fd;
  }

  private addFd(fd: Fd): number {
    const fh = this.nextFh++;
    if (this.nextFh > 0x7fffffff) this.nextFh = 1;
    this.fds.set(fh, fd);
    return fh;
  }

  private ops() {
    const x = this.top;
    const loc = (path: string) => ({ path });
    return {
      init: (cb: Cb) => cb(0),
      access: (_p: string, _m: number, cb: Cb) => cb(0),
      statfs: (p: string, cb: Cb) => this.run(cb, 'statfs', () => x.statfs(this.ctx(), loc(p)), (s) => [0, toStatfs(s)]),
      getattr: (p: string, cb: Cb) => this.run(cb, 'getattr', () => x.stat(this.ctx(), loc(p)), (a) => [0, toStat(a)]),
      fgetattr: (p: string, fh: number, cb: Cb) => this.run(cb, 'fgetattr', async () => (fh ? x.fstat(this.ctx(), this.fd(fh)) : x.stat(this.ctx(), loc(p))), (a) => [0, toStat(a)]),
      readdir: (p: string, cb: Cb) => this.run(cb, 'readdir', () => x.readdirp(this.ctx(), loc(p)), (ents) => [0, ents.map((e) => e.name), ents.map((e) => toStat(e.iatt))]),
      open: (p: string, flags: number, cb: Cb) => this.run(cb, 'open', async () => {
        if ((flags & O_ACCMODE) !== OS.O_RDONLY || flags & OS.O_TRUNC) this.writable();
        return this.addFd(await x.open(this.ctx(), loc(p), flags));
      }, (fh) => [0, fh]),
      create: (p: string, mode: number, cb: Cb) => this.run(cb, 'create', async () => {
        this.writable();
        const r = await x.create(this.ctx(), loc(p), OS.O_RDWR, { mode, umask: 0, gfid: newGfid() });
        return this.addFd(r.fd);
      }, (fh) => [0, fh]),
      read: (_p: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) => this.run(cb, 'read', async () => {
        const data = await x.read(this.ctx(), this.fd(fh), pos, len);
        data.copy(buf, 0, 0, Math.min(len, data.length));
        return Math.min(len, data.length);
      }, (n) => [n]),
      write: (_p: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) => this.run(cb, 'write', async () => {
        this.writable();
        return x.write(this.ctx(), this.fd(fh), pos, buf.subarray(0, len));
      }, (n) => [n]),
      flush: (_p: string, fh: number, cb: Cb) => this.run(cb, 'flush', async () => {
        const fd = this.fds.get(fh);
        if (fd) await x.flush(this.ctx(), fd);
      }),
      fsync: (_p: string, datasync: number, fh: number, cb: Cb) => this.run(cb, 'fsync', () => x.fsync(this.ctx(), this.fd(fh), !!datasync)),
      fsyncdir: (_p: string, _d: number, _fh: number, cb: Cb) => cb(0),
      release: (_p: string, fh: number, cb: Cb) => this.run(cb, 'release', async () => {
        const fd = this.fds.get(fh);
        this.fds.delete(fh);
        if (fd) await x.release(this.ctx(), fd);
      }),
      truncate: (p: string, size: number, cb: Cb) => this.run(cb, 'truncate', async () => { this.writable(); await x.truncate(this.ctx(), loc(p), size); }),
      ftruncate: (_p: string, fh: number, size: number, cb: Cb) => this.run(cb, 'ftruncate', async () => { this.writable(); await x.ftruncate(this.ctx(), this.fd(fh), size); }),
      chmod: (p: string, mode: number, cb: Cb) => this.run(cb, 'chmod', async () => { this.writable(); await x.setattr(this.ctx(), loc(p), { mode: mode & 0o7777 }); }),
      chown: (p: string, uid: number, gid: number, cb: Cb) => this.run(cb, 'chown', async () => {
        this.writable();
        await x.setattr(this.ctx(), loc(p), { ...(uid !== 0xffffffff && uid !== -1 ? { uid } : {}), ...(gid !== 0xffffffff && gid !== -1 ? { gid } : {}) });
      }),
      // fuse-native hands over atime twice (its bug); both times get that value, as `touch -d` wants.
      utimens: (p: string, atime: number, _mtime: number, cb: Cb) => this.run(cb, 'utimens', async () => {
        this.writable();
        const t = BigInt(Math.round(atime)) * NS_PER_MS;
        await x.setattr(this.ctx(), loc(p), { atime: t, mtime: t });
      }),
      readlink: (p: string, cb: Cb) => this.run(cb, 'readlink', () => x.readlink(this.ctx(), loc(p)), (t) => [0, t]),
      symlink: (target: string, p: string, cb: Cb) => this.run(cb, 'symlink', async () => { this.writable(); await x.symlink(this.ctx(), target, loc(p), { mode: 0o777, umask: 0, gfid: newGfid() }); }),
      link: (src: string, dest: string, cb: Cb) => this.run(cb, 'link', async () => { this.writable(); await x.link(this.ctx(), loc(src), loc(dest)); }),
      rename: (src: string, dest: string, cb: Cb) => this.run(cb, 'rename', async () => { this.writable(); await x.rename(this.ctx(), loc(src), loc(dest)); }),
      unlink: (p: string, cb: Cb) => this.run(cb, 'unlink', async () => { this.writable(); await x.unlink(this.ctx(), loc(p)); }),
      rmdir: (p: string, cb: Cb) => this.run(cb, 'rmdir', async () => { this.writable(); await x.rmdir(this.ctx(), loc(p)); }),
      mkdir: (p: string, mode: number, cb: Cb) => this.run(cb, 'mkdir', async () => {
        this.writable();
        await x.mkdir(this.ctx(), loc(p), { mode: (mode & 0o7777) | S_IFDIR, umask: 0, gfid: newGfid() });
      }),
      setxattr: (p: string, name: string, value: Buffer, _pos: number, flags: number, cb: Cb) => this.run(cb, 'setxattr', async () => {
        this.writable();
        if (name.startsWith(INTERNAL_XATTR_PREFIX)) throw new FsError('EPERM', `${name} is reserved`);
        if (unsupportedXattr(name, this.opts)) throw new FsError('EOPNOTSUPP', name);
        await x.setxattr(this.ctx(), loc(p), name, Buffer.from(value), flags);
      }),
      getxattr: (p: string, name: string, _pos: number, cb: Cb) => this.run(cb, 'getxattr', async () => {
        if (name.startsWith(INTERNAL_XATTR_PREFIX)) throw new FsError('ENODATA', name);
        if (unsupportedXattr(name, this.opts)) throw new FsError('EOPNOTSUPP', name);
        return x.getxattr(this.ctx(), loc(p), name);
      }, (v) => [0, v]),
      listxattr: (p: string, cb: Cb) => this.run(cb, 'listxattr', async () => (await x.listxattr(this.ctx(), loc(p))).filter((n) => !n.startsWith(INTERNAL_XATTR_PREFIX) && !unsupportedXattr(n, this.opts)), (l) => [0, l]),
      removexattr: (p: string, name: string, cb: Cb) => this.run(cb, 'removexattr', async () => {
        this.writable();
        if (name.startsWith(INTERNAL_XATTR_PREFIX)) throw new FsError('EPERM', `${name} is reserved`);
        if (unsupportedXattr(name, this.opts)) throw new FsError('EOPNOTSUPP', name);
        await x.removexattr(this.ctx(), loc(p), name);
      }),
    };
  }

  async mount(): Promise<void> {
    const Fuse = require('fuse-native');
    // libfuse 2 options fuse-native has no field for ride along in fsname (it joins options with ',').
    const fsname = `${this.opts.fsname.replace(/,/g, '_')},use_ino,big_writes,hard_remove,max_write=131072,subtype=gfs`;
    this.fuse = new Fuse(this.opts.mountpoint, this.ops(), {
      fsname, allowOther: true, defaultPermissions: true, timeout: false, force: false, mkdir: false,
    });
    await new Promise<void>((resolve, reject) => this.fuse.mount((err: Error | null) => (err ? reject(err) : resolve())));
    this.poll = setInterval(() => void this.checkMounted(), 1000);
    this.poll.unref();
  }

  private async checkMounted(): Promise<void> {
    const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
    const mp = this.opts.mountpoint.replace(/ /g, '\\040');
    const still = info.split('\n').some((l) => l.split(' ')[4] === mp && / - fuse(\.gfs)? /.test(l));
    if (!still) {
      clearInterval(this.poll);
      this.opts.log.info({ mountpoint: this.opts.mountpoint }, 'unmounted by the kernel side');
      this.resolveClosed();
    }
  }

  async unmount(): Promise<void> {
    clearInterval(this.poll);
    if (this.fuse) {
      await new Promise<void>((resolve) => this.fuse.unmount((err: Error | null) => {
        if (err) this.opts.log.warn({ err: err.message }, 'unmount failed');
        resolve();
      }));
    }
    this.resolveClosed();
  }
}

export function createFuseNativeBridge(top: Xlator, opts: BridgeOptions): Bridge {
  return new FuseNativeBridge(top, opts);
}
