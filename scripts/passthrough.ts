// A minimal fuse-native passthrough of a local directory: the ceiling for any Node FUSE client,
// used by scripts/bench as a baseline. Usage: node dist/scripts/passthrough.js SOURCE MOUNTPOINT
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const Fuse = require('fuse-native');
const [src, mnt] = process.argv.slice(2);
if (!src || !mnt) {
  console.error('usage: passthrough SOURCE MOUNTPOINT');
  process.exit(2);
}
const p = (path: string) => join(src, path);
type Cb = (...a: unknown[]) => void;
const errno = (e: NodeJS.ErrnoException | null) => (e ? -(Number(e.errno) < 0 ? -Number(e.errno) : Number(e.errno) || 5) : 0);
const done = (cb: Cb) => (e: NodeJS.ErrnoException | null) => cb(errno(e));

const ops = {
  getattr: (path: string, cb: Cb) => fs.lstat(p(path), (e, st) => (e ? cb(errno(e)) : cb(0, st))),
  fgetattr: (_path: string, fd: number, cb: Cb) => fs.fstat(fd, (e, st) => (e ? cb(errno(e)) : cb(0, st))),
  readdir: (path: string, cb: Cb) => fs.readdir(p(path), (e, names) => (e ? cb(errno(e)) : cb(0, names))),
  open: (path: string, flags: number, cb: Cb) => fs.open(p(path), flags, (e, fd) => (e ? cb(errno(e)) : cb(0, fd))),
  create: (path: string, mode: number, cb: Cb) => fs.open(p(path), 'w+', mode, (e, fd) => (e ? cb(errno(e)) : cb(0, fd))),
  read: (_path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => fs.read(fd, buf, 0, len, pos, (e, n) => cb(e ? errno(e) : n)),
  write: (_path: string, fd: number, buf: Buffer, len: number, pos: number, cb: Cb) => fs.write(fd, buf, 0, len, pos, (e, n) => cb(e ? errno(e) : n)),
  release: (_path: string, fd: number, cb: Cb) => fs.close(fd, done(cb)),
  fsync: (_path: string, _d: number, fd: number, cb: Cb) => fs.fsync(fd, done(cb)),
  truncate: (path: string, size: number, cb: Cb) => fs.truncate(p(path), size, done(cb)),
  ftruncate: (_path: string, fd: number, size: number, cb: Cb) => fs.ftruncate(fd, size, done(cb)),
  unlink: (path: string, cb: Cb) => fs.unlink(p(path), done(cb)),
  mkdir: (path: string, mode: number, cb: Cb) => fs.mkdir(p(path), mode, done(cb)),
  rmdir: (path: string, cb: Cb) => fs.rmdir(p(path), done(cb)),
  rename: (a: string, b: string, cb: Cb) => fs.rename(p(a), p(b), done(cb)),
  link: (a: string, b: string, cb: Cb) => fs.link(p(a), p(b), done(cb)),
  symlink: (a: string, b: string, cb: Cb) => fs.symlink(a, p(b), done(cb)),
  readlink: (path: string, cb: Cb) => fs.readlink(p(path), (e, t) => (e ? cb(errno(e)) : cb(0, t))),
  chmod: (path: string, mode: number, cb: Cb) => fs.chmod(p(path), mode, done(cb)),
  chown: (path: string, uid: number, gid: number, cb: Cb) => fs.lchown(p(path), uid, gid, done(cb)),
  utimens: (path: string, a: number, m: number, cb: Cb) => fs.utimes(p(path), a / 1000, m / 1000, done(cb)),
  statfs: (path: string, cb: Cb) => fs.statfs(p(path), (e, s) => (e ? cb(errno(e)) : cb(0, { ...s, frsize: s.bsize, favail: s.ffree, namemax: 255 }))),
};

const fuse = new Fuse(mnt, ops, { fsname: 'passthrough,use_ino,big_writes,max_write=131072', allowOther: true, timeout: false });
fuse.mount((err: Error | null) => {
  if (err) {
    console.error(`passthrough: ${err.message}`);
    process.exit(1);
  }
  process.send?.('ready');
});
const stop = () => fuse.unmount(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
