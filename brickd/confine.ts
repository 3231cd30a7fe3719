// Path confinement: a Loc.path from the volume root becomes a host path inside the brick, or an
// error. Intermediate components are resolved with realpath and must stay inside the brick's
// realpath; the final component is never followed (callers use lstat, O_NOFOLLOW, l* calls).
// A path whose host form would pass PATH_MAX is resolved in steps through directory handles: the
// longest prefix that fits by realpath (checked inside the brick), then one component at a time
// with O_PATH|O_DIRECTORY|O_NOFOLLOW (so no symlink is followed there at all), and the host path
// becomes /proc/PID/fd/N/name, short whatever the depth.
import { close, constants, open } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { promisify } from 'node:util';
import { LRUCache } from 'lru-cache';
import { FsError } from '../common/errors.js';

/** The brick's private bookkeeping directory at its root; clients never see it. */
export const PRIVATE_DIR = '.gfs';

export interface HostPath {
  /** The volume path as given ('/' or '/a/b'). */
  path: string;
  /** The host path to operate on: the resolved parent joined with the final name. */
  host: string;
  /** The resolved (real) parent directory on the host; the brick root for '/'. */
  parent: string;
  /** The final component; '' for the root. */
  name: string;
  isRoot: boolean;
}

/** Checks the syntax of a volume path and returns its components. */
export function pathComponents(path: string): string[] {
  if (typeof path !== 'string' || path === '') throw new FsError('EINVAL', 'empty path');
  if (path.includes('\0')) throw new FsError('EINVAL', `path ${JSON.stringify(path)} contains a NUL byte`);
  if (!path.startsWith('/')) throw new FsError('EINVAL', `path '${path}' is not absolute from the volume root`);
  const parts = path.split('/').filter((p) => p !== '');
  for (const p of parts) {
    if (p === '.' || p === '..') throw new FsError('EINVAL', `path '${path}' has a '${p}' component`);
  }
  if (parts[0] === PRIVATE_DIR) throw new FsError('ENOENT', `no such file or directory '${path}'`);
  return parts;
}

/** Linux O_PATH (x86_64, arm64): a handle that names a directory without opening it for I/O. */
const O_PATH = 0o10000000;
const DIR_HANDLE = O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** Host paths at least this long are resolved in steps (PATH_MAX is 4096 with its NUL). */
export const LONG_PATH = 3800;
/** The longest prefix resolved by one realpath in the stepwise resolution. */
const PREFIX_MAX = 3000;
/** A directory handle lives this long after its resolution: far longer than one operation. */
const HANDLE_LIFETIME_MS = 30_000;
const openFd = promisify(open);
const closeFd = promisify(close);

function closeLater(fd: number): void {
  setTimeout(() => { close(fd, () => undefined); }, HANDLE_LIFETIME_MS).unref();
}

export class Confiner {
  /** Parent directories already resolved (unresolved host path -> realpath), so an operation
   * costs no realpath trip to the thread pool. Only this daemon changes the brick's namespace:
   * it drops entries when a change could alter a resolution (see namespaceChanged). */
  private readonly parents = new LRUCache<string, string>({ max: 50_000 });
  /** Cached resolutions that went through a symlink (the unresolved path differs). */
  private viaLinks = 0;

  /** realRoot is the realpath of the brick root. */
  constructor(readonly realRoot: string) {}

  /** After a rename or rmdir every resolution may be stale; after an unlink (never of a
   * directory) only those that went through a symlink. */
  namespaceChanged(kind: 'unlink' | 'rmdir' | 'rename'): void {
    if (kind === 'unlink') {
      if (this.viaLinks === 0) return;
      for (const [k, v] of this.parents.entries()) if (k !== v) this.parents.delete(k);
      this.viaLinks = 0;
      return;
    }
    this.parents.clear();
    this.viaLinks = 0;
  }

  private async realParent(unresolved: string): Promise<string> {
    const hit = this.parents.get(unresolved);
    if (hit !== undefined) return hit;
    const real = await realpath(unresolved);
    this.parents.set(unresolved, real);
    if (real !== unresolved) this.viaLinks++;
    return real;
  }

  private inside(p: string): boolean {
    return p === this.realRoot || p.startsWith(this.realRoot.endsWith('/') ? this.realRoot : `${this.realRoot}/`);
  }

  async resolve(path: string): Promise<HostPath> {
    const parts = pathComponents(path);
    if (parts.length === 0) return { path, host: this.realRoot, parent: this.realRoot, name: '', isRoot: true };
    const name = parts[parts.length - 1];
    let parent = this.realRoot;
    if (Buffer.byteLength(this.realRoot) + Buffer.byteLength(path) >= LONG_PATH) {
      parent = await this.resolveLong(path, parts.slice(0, -1));
    } else if (parts.length > 1) {
      const unresolved = `${this.realRoot}/${parts.slice(0, -1).join('/')}`;
      parent = await this.realParent(unresolved);
      if (!this.inside(parent)) throw new FsError('EACCES', `path '${path}' escapes the brick`);
      if (parent === this.realRoot && name === PRIVATE_DIR) {
        throw new FsError('ENOENT', `no such file or directory '${path}'`);
      }
    }
    const host = parent === '/' ? `/${name}` : `${parent}/${name}`;
    return { path, host, parent, name, isRoot: false };
  }

  /** The parent directory of a long path as /proc/PID/fd/N (closed after HANDLE_LIFETIME_MS). */
  private async resolveLong(path: string, dirs: string[]): Promise<string> {
    let k = 0;
    let len = this.realRoot.length;
    while (k < dirs.length && len + 1 + Buffer.byteLength(dirs[k]) <= PREFIX_MAX) len += 1 + Buffer.byteLength(dirs[k++]);
    const prefix = await realpath(k === 0 ? this.realRoot : `${this.realRoot}/${dirs.slice(0, k).join('/')}`);
    if (!this.inside(prefix)) throw new FsError('EACCES', `path '${path}' escapes the brick`);
    let fd = await openFd(prefix, DIR_HANDLE);
    try {
      for (const dir of dirs.slice(k)) {
        const next = await openFd(`/proc/${process.pid}/fd/${fd}/${dir}`, DIR_HANDLE).catch((err: NodeJS.ErrnoException) => {
          // O_NOFOLLOW on a symlink with O_DIRECTORY: ENOTDIR; say it is a link never followed here.
          throw err.code === 'ENOTDIR' || err.code === 'ELOOP' ? new FsError('ENOTDIR', `a component of long path '${path.slice(0, 80)}...' is not a directory (symlinks are not followed past ${PREFIX_MAX} bytes)`, { cause: err }) : err;
        });
        await closeFd(fd);
        fd = next;
      }
    } catch (err) {
      await closeFd(fd).catch(() => undefined);
      throw err;
    }
    closeLater(fd);
    return `/proc/${process.pid}/fd/${fd}`;
  }
}
