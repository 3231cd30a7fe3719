// Startup checks of the brick directory: it must exist and be a directory; its volume-id xattr,
// when present, must be ours (a wrong disk is never served); the root gets ROOT_GFID and .gfs/.
import { mkdir, realpath, stat } from 'node:fs/promises';
import { ROOT_GFID, gfidFromBytes, gfidToBytes } from '../common/gfid.js';
import { PRIVATE_DIR } from './confine.js';
import { GFID_XATTR, VOLUME_ID_XATTR } from './iatt.js';
import { xget, xset } from './xattr.js';

export class BrickRefused extends Error {}

/** Returns the realpath of the brick root, ready to serve. */
export async function prepareBrick(brickPath: string, volumeId: string): Promise<string> {
  let st;
  try {
    st = await stat(brickPath);
  } catch (err) {
    throw new BrickRefused(`brick directory '${brickPath}' does not exist (${(err as NodeJS.ErrnoException).code})`);
  }
  if (!st.isDirectory()) throw new BrickRefused(`brick path '${brickPath}' is not a directory`);
  const root = await realpath(brickPath);
  let have: Buffer | null;
  try {
    have = await xget(root, VOLUME_ID_XATTR);
  } catch (err) {
    throw new BrickRefused(`cannot read extended attributes of '${brickPath}' (does its file system support trusted.* xattrs?): ${(err as Error).message}`);
  }
  if (have) {
    const text = have.length === 16 ? gfidFromBytes(have) : have.toString('utf8').trim().toLowerCase();
    if (text !== volumeId) {
      throw new BrickRefused(`brick '${brickPath}' belongs to volume id ${text}, not ${volumeId}; refusing to serve it`);
    }
  } else {
    await xset(root, VOLUME_ID_XATTR, gfidToBytes(volumeId));
  }
  const gfid = await xget(root, GFID_XATTR);
  if (!gfid) await xset(root, GFID_XATTR, gfidToBytes(ROOT_GFID));
  else if (gfidFromBytes(gfid) !== ROOT_GFID) throw new BrickRefused(`brick root '${brickPath}' has gfid ${gfidFromBytes(gfid)}, not the root gfid`);
  await mkdir(`${root}/${PRIVATE_DIR}`, { recursive: true, mode: 0o700 });
  return root;
}
