// An in-memory brick as a translator, for unit tests of the cluster translators: POSIX-like
// namespace, data, xattrs and errnos, without any process or disk.
import { FsError } from '../../common/errors.js';
import { PassThrough, type Xlator } from '../../common/fops.js';
import { gfidToIno, newGfid, ROOT_GFID } from '../../common/gfid.js';

const O_TRUNC_FLAG = 0o1000;
import {
  basename, dirname, isDir, joinPath, newFd, S_IFDIR, S_IFLNK, S_IFREG,
  type CreateArgs, type Ctx, type Dirent, type Fd, type Iatt, type Loc, type LookupReply, type SetattrArgs, type Statfs,
} from '../../common/types.js';

interface Inode { gfid: string; mode: number; uid: number; gid: number; data: Buffer; target?: string; xattrs: Map<string, Buffer>; nlink: number; mtime: bigint }

export class MemXlator extends PassThrough implements Xlator {
  readonly names = new Map<string, Inode>();
  private readonly fds = new WeakMap<Fd, Inode>();
  calls = 0;
  down = false;

  constructor(name: string) {
    super(name, 'test/mem', []);
    this.names.set('/', this.inode(ROOT_GFID, S_IFDIR | 0o755));
  }

  private inode(gfid: string, mode: number): Inode {
    return { gfid, mode, uid: 0, gid: 0, data: Buffer.alloc(0), xattrs: new Map(), nlink: 1, mtime: 0n };
  }

  private get(path: string): Inode {
    this.calls++;
    if (this.down) throw new FsError('ENOTCONN', `${this.name} is down`);
    const i = this.names.get(path);
    if (!i) {
      const parent = this.names.get(dirname(path));
      if (parent && !isDir(parent.mode)) throw new FsError('ENOTDIR', path);
      throw new FsError('ENOENT', path);
    }
    return i;
  }

  private parentOf(path: string): Inode {
    const p = this.get(dirname(path));
    if (!isDir(p.mode)) throw new FsError('ENOTDIR', dirname(path));
    return p;
  }

  private iatt(i: Inode): Iatt {
    return {
      gfid: i.gfid, ino: gfidToIno(i.gfid), mode: i.mode, nlink: i.nlink, uid: i.uid, gid: i.gid, rdev: 0,
      size: BigInt(i.data.length), blocks: 0n, blksize: 4096, atime: i.mtime, mtime: i.mtime, ctime: i.mtime,
    };
  }

  private children_(path: string): string[] {
    const prefix = path === '/' ? '/' : `${path}/`;
    return [...this.names.keys()].filter((k) => k !== path && k.startsWith(prefix) && !k.slice(prefix.length).includes('/'));
  }

  private add(path: string, node: Inode, args: CreateArgs): Inode {
    this.parentOf(path);
    if (this.names.has(path)) throw new FsError('EEXIST', path);
    for (const [k, v] of Object.entries(args.xattrs ?? {})) node.xattrs.set(k, v);
    this.names.set(path, node);
    return node;
  }

  private pick(i: Inode, names: string[] = []): Record<string, Buffer> {
    return Object.fromEntries(names.filter((n) => i.xattrs.has(n)).map((n) => [n, i.xattrs.get(n)!]));
  }

  override async lookup(_c: Ctx, loc: Loc, xattrs: string[] = []): Promise<LookupReply> {
    const i = this.get(loc.path);
    return { iatt: this.iatt(i), xattrs: this.pick(i, xattrs) };
  }
  override async stat(_c: Ctx, loc: Loc) { return this.iatt(this.get(loc.path)); }
  override async readdirp(_c: Ctx, loc: Loc, xattrs: string[] = []): Promise<Dirent[]> {
    const d = this.get(loc.path);
    if (!isDir(d.mode)) throw new FsError('ENOTDIR', loc.path);
    return this.children_(loc.path).map((p) => ({ name: basename(p), iatt: this.iatt(this.names.get(p)!), xattrs: this.pick(this.names.get(p)!, xattrs) }));
  }
  override async mkdir(_c: Ctx, loc: Loc, a: CreateArgs) { return this.iatt(this.add(loc.path, this.inode(a.gfid, S_IFDIR | (a.mode & 0o7777)), a)); }
  override async create(_c: Ctx, loc: Loc, flags: number, a: CreateArgs) {
    let i = this.names.get(loc.path);
    if (!i) i = this.add(loc.path, this.inode(a.gfid, S_IFREG | (a.mode & 0o7777)), a);
    else if (flags & O_TRUNC_FLAG) i.data = Buffer.alloc(0);
    const fd = newFd(loc, flags, i.gfid);
    this.fds.set(fd, i);
    return { fd, iatt: this.iatt(i) };
  }
  override async open(_c: Ctx, loc: Loc, flags: number) {
    const i = this.get(loc.path);
    if (flags & O_TRUNC_FLAG) i.data = Buffer.alloc(0);
    const fd = newFd(loc, flags, i.gfid);
    this.fds.set(fd, i);
    return fd;
  }
  private fdi(fd: Fd): Inode {
    if (this.down) throw new FsError('ENOTCONN', `${this.name} is down`);
    const i = this.fds.get(fd);
    if (!i) throw new FsError('EBADF');
    return i;
  }
  override async read(_c: Ctx, fd: Fd, off: number, size: number) { return Buffer.from(this.fdi(fd).data.subarray(off, off + size)); }
  override async write(_c: Ctx, fd: Fd, off: number, data: Buffer) {
    const i = this.fdi(fd);
    if (i.data.length < off + data.length) i.data = Buffer.concat([i.data, Buffer.alloc(off + data.length - i.data.length)]);
    data.copy(i.data, off);
    return data.length;
  }
  override async release(_c: Ctx, _fd: Fd) {}
  override async flush() {}
  override async fsync() {}
  override async fstat(_c: Ctx, fd: Fd) { return this.iatt(this.fdi(fd)); }
  override async unlink(_c: Ctx, loc: Loc) {
    const i = this.get(loc.path);
    if (isDir(i.mode)) throw new FsError('EISDIR', loc.path);
    i.nlink--;
    this.names.delete(loc.path);
  }
  override async rmdir(_c: Ctx, loc: Loc) {
    const i = this.get(loc.path);
    if (!isDir(i.mode)) throw new FsError('ENOTDIR', loc.path);
    if (this.children_(loc.path).length) throw new FsError('ENOTEMPTY', loc.path);
    this.names.delete(loc.path);
  }
  override async rename(_c: Ctx, from: Loc, to: Loc) {
    const i = this.get(from.path);
    this.parentOf(to.path);
    const old = this.names.get(to.path);
    if (old && isDir(old.mode) && !isDir(i.mode)) throw new FsError('EISDIR', to.path);
    if (old && !isDir(old.mode) && isDir(i.mode)) throw new FsError('ENOTDIR', to.path);
    if (old && isDir(old.mode) && this.children_(to.path).length) throw new FsError('ENOTEMPTY', to.path);
    if (old && old !== i && !isDir(old.mode)) old.nlink--; // the replaced file loses this name
    const moves = [...this.names.keys()].filter((k) => k === from.path || k.startsWith(`${from.path}/`));
    const nodes = moves.map((k) => [k, this.names.get(k)!] as const);
    for (const [k] of nodes) this.names.delete(k);
    for (const [k, n] of nodes) this.names.set(to.path + k.slice(from.path.length), n);
  }
  override async link(_c: Ctx, from: Loc, to: Loc) {
    const i = this.get(from.path);
    this.parentOf(to.path);
    if (this.names.has(to.path)) throw new FsError('EEXIST', to.path);
    i.nlink++;
    this.names.set(to.path, i);
    return this.iatt(i);
  }
  override async symlink(_c: Ctx, target: string, loc: Loc, a: CreateArgs) {
    const n = this.inode(a.gfid, S_IFLNK | 0o777);
    n.target = target;
    return this.iatt(this.add(loc.path, n, a));
  }
  override async readlink(_c: Ctx, loc: Loc) { return this.get(loc.path).target ?? ''; }
  override async setattr(_c: Ctx, loc: Loc, s: SetattrArgs) {
    const i = this.get(loc.path);
    if (s.mode !== undefined) i.mode = (i.mode & ~0o7777) | s.mode;
    if (s.uid !== undefined) i.uid = s.uid;
    if (s.gid !== undefined) i.gid = s.gid;
    if (typeof s.mtime === 'bigint') i.mtime = s.mtime;
    return this.iatt(i);
  }
  override async truncate(_c: Ctx, loc: Loc, size: number) {
    const i = this.get(loc.path);
    i.data = Buffer.concat([i.data, Buffer.alloc(Math.max(0, size - i.data.length))]).subarray(0, size);
    return this.iatt(i);
  }
  override async ftruncate(_c: Ctx, fd: Fd, size: number) {
    const i = this.fdi(fd);
    i.data = Buffer.concat([i.data, Buffer.alloc(Math.max(0, size - i.data.length))]).subarray(0, size);
    return this.iatt(i);
  }
  /** Only what stripe's tests need: KEEP_SIZE allocation is a no-op, mode 0 extends with zeros. */
  override async fallocate(_c: Ctx, fd: Fd, mode: number, off: number, len: number) {
    const i = this.fdi(fd);
    if (mode === 0 && i.data.length < off + len) i.data = Buffer.concat([i.data, Buffer.alloc(off + len - i.data.length)]);
    else if (mode & 0x02) i.data.fill(0, off, Math.min(i.data.length, off + len));
  }
  override async statfs(): Promise<Statfs> {
    if (this.down) throw new FsError('ENOTCONN');
    return { bsize: 4096, frsize: 4096, blocks: 1000n, bfree: 500n, bavail: 400n, files: 100n, ffree: 50n, namemax: 255 };
  }
  override async getxattr(_c: Ctx, loc: Loc, name: string) {
    const v = this.get(loc.path).xattrs.get(name);
    if (!v) throw new FsError('ENODATA', name);
    return v;
  }
  override async setxattr(_c: Ctx, loc: Loc, name: string, value: Buffer) { this.get(loc.path).xattrs.set(name, Buffer.from(value)); }
  override async listxattr(_c: Ctx, loc: Loc) { return [...this.get(loc.path).xattrs.keys()]; }
  override async removexattr(_c: Ctx, loc: Loc, name: string) { this.get(loc.path).xattrs.delete(name); }
}

export function memChildren(n: number): MemXlator[] {
  return Array.from({ length: n }, (_, i) => new MemXlator(`mem-${i}`));
}

export { newGfid, joinPath };
