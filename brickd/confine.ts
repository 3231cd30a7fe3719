// Path confinement: a Loc.path from the volume root becomes a host path inside the brick, or an
// error. Intermediate components are resolved with realpath and must stay inside the brick's
// realpath; the final component is never followed (callers use lstat, O_NOFOLLOW, l* calls).
import { realpath } from 'node:fs/promises';
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

export class Confiner {
  /** realRoot is the realpath of the brick root. */
  constructor(readonly realRoot: string) {}

  private inside(p: string): boolean {
    return p === this.realRoot || p.startsWith(this.realRoot.endsWith('/') ? this.realRoot : `${this.realRoot}/`);
  }

  async resolve(path: string): Promise<HostPath> {
    const parts = pathComponents(path);
    if (parts.length === 0) return { path, host: this.realRoot, parent: this.realRoot, name: '', isRoot: true };
    const name = parts[parts.length - 1];
    let parent = this.realRoot;
    if (parts.length > 1) {
      const unresolved = `${this.realRoot}/${parts.slice(0, -1).join('/')}`;
      parent = await realpath(unresolved);
      if (!this.inside(parent)) throw new FsError('EACCES', `path '${path}' escapes the brick`);
      if (parent === this.realRoot && name === PRIVATE_DIR) {
        throw new FsError('ENOENT', `no such file or directory '${path}'`);
      }
    }
    const host = parent === '/' ? `/${name}` : `${parent}/${name}`;
    return { path, host, parent, name, isRoot: false };
  }
}
