// The heal index as a client sees it: each brick keeps .gfs/indices/xattrop/<gfid> for every inode
// whose replicate counters are not all zero (brickd maintains it in xattrop), with the inode's
// path, and lists it through a virtual xattr of the brick root, so no crawl finds pending inodes.
import { toErrno } from '../../../../common/errors.js';
import { ROOT_CTX } from '../../../../common/types.js';
import type { Replicate } from './index.js';

export const INDEX_XATTR = 'trusted.gfs.index.xattrop';

export interface IndexEntry { gfid: string; path: string }

/** The pending inodes child i records; undefined when the child cannot be asked. */
export async function listIndex(r: Replicate, i: number): Promise<IndexEntry[] | undefined> {
  try {
    const raw = await r.children[i].getxattr(ROOT_CTX, { path: '/' }, INDEX_XATTR);
    return JSON.parse(raw.toString('utf8')) as IndexEntry[];
  } catch (e) {
    r.noteError(i, e);
    if (toErrno(e) === 'ENODATA') return [];
    return undefined;
  }
}
