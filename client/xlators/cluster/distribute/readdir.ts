// Merging the children's copies: every name once; a directory (present on every child) with the
// attributes of all its copies merged; files from the child holding the data, never a linkto.
import type { Dirent, Iatt } from '../../../../common/types.js';
import { isDir } from '../../../../common/types.js';

/** One directory's copies as one: the first child's attributes, sizes summed and the latest times
 *  (dht_iatt_merge). Always over every copy in child order, so listings, lookups and stats agree
 *  (tar notices a directory whose size or times differ between two answers). */
export function mergeDirIatts(iatts: Iatt[]): Iatt {
  const max = (a: bigint, b: bigint) => (a > b ? a : b);
  return iatts.reduce((out, a) => ({
    ...out, size: out.size + a.size, blocks: out.blocks + a.blocks,
    atime: max(out.atime, a.atime), mtime: max(out.mtime, a.mtime), ctime: max(out.ctime, a.ctime),
  }));
}

export function mergeDirents(
  lists: { i: number; entries: Dirent[] }[],
  isLinkto: (iatt: Iatt, xattrs: Record<string, Buffer>) => boolean,
): { subvol: number; entry: Dirent }[] {
  const seen = new Map<string, { subvol: number; entry: Dirent; copies?: Iatt[] }>();
  for (const { i, entries } of lists) {
    for (const e of entries) {
      const known = seen.get(e.name);
      if (known) {
        if (known.copies && isDir(e.iatt.mode)) known.copies.push(e.iatt);
        continue;
      }
      if (!isDir(e.iatt.mode) && isLinkto(e.iatt, e.xattrs)) continue;
      seen.set(e.name, { subvol: i, entry: e, copies: isDir(e.iatt.mode) ? [e.iatt] : undefined });
    }
  }
  return [...seen.values()].map(({ subvol, entry, copies }) => ({
    subvol, entry: copies && copies.length > 1 ? { ...entry, iatt: mergeDirIatts(copies) } : entry,
  }));
}
