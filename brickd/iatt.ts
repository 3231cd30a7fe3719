// Attributes and gfids of brick files. A gfid lives as 16 raw bytes in trusted.gfs.gfid; an entry
// found without one gets a new gfid on lookup (GlusterFS heals missing gfids the same way).
import { lstat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { FsError } from '../common/errors.js';
import { ROOT_GFID, gfidFromBytes, gfidToBytes, gfidToIno, isGfid, newGfid } from '../common/gfid.js';
import type { Iatt } from '../common/types.js';
import { KeyedMutex } from './mutex.js';
import { xget, xset } from './xattr.js';

export const GFID_XATTR = 'trusted.gfs.gfid';
export const VOLUME_ID_XATTR = 'trusted.gfs.volume-id';

const healLock = new KeyedMutex();

export function statToIatt(st: BigIntStats, gfid: string): Iatt {
  return {
    gfid,
    ino: gfidToIno(gfid),
    mode: Number(st.mode),
    nlink: Number(st.nlink),
    uid: Number(st.uid),
    gid: Number(st.gid),
    rdev: Number(st.rdev),
    size: st.size,
    blocks: st.blocks,
    blksize: Number(st.blksize),
    atime: st.atimeNs,
    mtime: st.mtimeNs,
    ctime: st.ctimeNs,
  };
}

export function checkGfid(gfid: string | undefined): string {
  const g = (gfid ?? '').toLowerCase();
  if (!isGfid(g)) throw new FsError('EINVAL', `'${gfid ?? ''}' is not a valid gfid (a UUID)`);
  return g;
}

export async function readGfid(host: string): Promise<string | null> {
  const b = await xget(host, GFID_XATTR);
  return b && b.length === 16 ? gfidFromBytes(b) : null;
}

export async function writeGfid(host: string, gfid: string): Promise<void> {
  await xset(host, GFID_XATTR, gfidToBytes(gfid));
}

/** Entries being created here, by host path: between their creation and the write of their gfid
 *  a lookup or listing finds them without one and must wait, not give them a gfid of its own
 *  (which the create would then overwrite, or not: a copy with a wrong gfid). */
const creating = new Map<string, Promise<void>>();

/** Runs fn (which creates host and writes its gfid) with host marked as being created. */
export async function creatingEntry<T>(host: string, fn: () => Promise<T>): Promise<T> {
  let done!: () => void;
  const mine = new Promise<void>((res) => { done = res; });
  const prev = creating.get(host);
  const entry = prev ? Promise.all([prev, mine]).then(() => undefined) : mine;
  creating.set(host, entry);
  try {
    return await fn();
  } finally {
    done();
    if (creating.get(host) === entry) creating.delete(host);
  }
}

/** The gfid of host, assigning and storing a new one (ROOT_GFID for the root) when absent. */
export async function ensureGfid(host: string, isRoot = false): Promise<string> {
  const have = await readGfid(host);
  if (have) return have;
  const made = creating.get(host);
  if (made) {
    await made;
    const now = await readGfid(host);
    if (now) return now;
  }
  return healLock.run(host, async () => {
    const again = await readGfid(host);
    if (again) return again;
    const gfid = isRoot ? ROOT_GFID : newGfid();
    await writeGfid(host, gfid);
    return gfid;
  });
}

/** lstat plus gfid (healed when missing): the Iatt of a host path, never following it. */
export async function iattOf(host: string, isRoot = false): Promise<Iatt> {
  // Both at once: the xattr read of a missing file yields null, and lstat then reports ENOENT.
  const [st, gfid] = await Promise.all([lstat(host, { bigint: true }), readGfid(host)]);
  return statToIatt(st, gfid ?? (await ensureGfid(host, isRoot)));
}
