// Merging the children's listings of one directory: every name once; a directory (present on every
// child) from the first child that lists it; files from the child holding the data, never a linkto.
import type { Dirent, Iatt } from '../../../../common/types.js';
import { isDir } from '../../../../common/types.js';

export function mergeDirents(
  lists: { i: number; entries: Dirent[] }[],
  isLinkto: (iatt: Iatt, xattrs: Record<string, Buffer>) => boolean,
): { subvol: number; entry: Dirent }[] {
  const seen = new Map<string, { subvol: number; entry: Dirent }>();
  for (const { i, entries } of lists) {
    for (const e of entries) {
      if (seen.has(e.name)) continue;
      if (!isDir(e.iatt.mode) && isLinkto(e.iatt, e.xattrs)) continue;
      seen.set(e.name, { subvol: i, entry: e });
    }
  }
  return [...seen.values()];
}
