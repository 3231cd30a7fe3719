// The brick directories of this node: the checks of `volume create` (stage), making the
// directories and marking them with trusted.gfs.volume-id (commit), and undoing that (release).
// The xattr holds the volume uuid's 16 bytes, as glusterfs's trusted.glusterfs.volume-id does.
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute } from 'node:path';
import { getAttributeSync, removeAttributeSync, setAttributeSync } from '@napi-rs/xattr';
import { gfidFromBytes, gfidToBytes } from '../common/gfid.js';
import { invalid, precondition } from './errors.js';

export const VOLUME_ID_XATTR = 'trusted.gfs.volume-id';

/** The volume id a directory is marked with, or undefined. */
export function readVolumeId(path: string): string | undefined {
  let v: Buffer | null;
  try {
    v = getAttributeSync(path, VOLUME_ID_XATTR);
  } catch {
    return undefined;
  }
  if (!v || v.length === 0) return undefined;
  return v.length === 16 ? gfidFromBytes(v) : v.toString('utf8');
}

function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Stage: can `host:path` become a brick? Creates nothing. */
export function checkBrickDir(host: string, path: string, force: boolean): void {
  const name = `${host}:${path}`;
  if (!isAbsolute(path)) throw invalid(`wrong brick type: ${name}, use <HOSTNAME>:<export-dir-abs-path>`);
  const st = statOrUndefined(path);
  if (st && !st.isDirectory()) throw invalid(`Brick ${name} is not a directory`);
  // The brick, or a directory above it, already belongs to a volume.
  for (let p = path; ; p = dirname(p)) {
    if (statOrUndefined(p) && readVolumeId(p)) throw precondition(`${name} is already part of a volume`);
    if (p === dirname(p)) break;
  }
  if (!force) {
    let p = path;
    while (!statOrUndefined(p)) p = dirname(p);
    if (statSync(p).dev === statSync('/').dev) {
      throw precondition(`The brick ${name} is being created in the root partition. It is recommended that you don't use the system's root partition for storage backend. Or use 'force' at the end of the command if you want to override this behavior.`);
    }
  }
}

/** Commit: makes the directories and marks them. Returns the top-most directories it made. */
export function commitBrickDirs(volumeId: string, paths: string[]): string[] {
  const created: string[] = [];
  try {
    for (const p of paths) {
      const first = mkdirSync(p, { recursive: true });
      if (first) created.push(first);
      setAttributeSync(p, VOLUME_ID_XATTR, gfidToBytes(volumeId));
    }
  } catch (e) {
    releaseBrickDirs(volumeId, paths, created);
    throw precondition(`cannot prepare brick: ${(e as Error).message}`);
  }
  return created;
}

/** Unmarks the bricks of this volume; removes the given directories again when empty (rollback). */
export function releaseBrickDirs(volumeId: string, paths: string[], removeDirs: string[] = []): void {
  for (const p of paths) {
    if (readVolumeId(p) !== volumeId) continue;
    try {
      removeAttributeSync(p, VOLUME_ID_XATTR);
    } catch {
      /* already gone */
    }
  }
  for (const top of removeDirs) {
    // Remove from the deepest brick dir up to the top-most one we made, only while empty.
    for (const p of paths.filter((q) => q === top || q.startsWith(`${top}/`))) {
      for (let d = p; d.length >= top.length; d = dirname(d)) {
        try {
          rmdirSync(d);
        } catch {
          break;
        }
        if (d === top) break;
      }
    }
  }
}
