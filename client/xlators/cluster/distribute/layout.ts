// Per-directory hash layouts: each subvolume of a directory owns one range of the 32-bit name hash,
// stored on that subvolume's copy of the directory in an xattr, so layouts can be fixed later.
import { dmHash } from '../../../../common/hash.js';

export const LAYOUT_XATTR = 'trusted.gfs.dht';
export const LINKTO_XATTR = 'trusted.gfs.dht.linkto';
const LAYOUT_VERSION = 1;
const HASH_MAX = 0xffffffff;

export interface Range {
  subvol: number;
  start: number;
  end: number; // inclusive
  /** Every name in the directory was placed by this layout (made by mkdir, or the directory was
   *  empty when the layout was written). Only then may a miss on the hashed child be trusted; a
   *  layout written over existing entries (bricks added, a layout repaired) is not committed. */
  committed: boolean;
}

const COMMITTED = 1;

export function encodeRange(r: Range): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(LAYOUT_VERSION, 0);
  b.writeUInt32BE(r.start, 4);
  b.writeUInt32BE(r.end, 8);
  b.writeUInt32BE(r.committed ? COMMITTED : 0, 12);
  return b;
}

export function decodeRange(subvol: number, b: Buffer | undefined): Range | undefined {
  if (!b || (b.length !== 12 && b.length !== 16) || b.readUInt32BE(0) !== LAYOUT_VERSION) return undefined;
  const start = b.readUInt32BE(4);
  const end = b.readUInt32BE(8);
  const committed = b.length === 16 ? (b.readUInt32BE(12) & COMMITTED) !== 0 : true;
  return start <= end ? { subvol, start, end, committed } : undefined;
}

export class Layout {
  readonly ranges: readonly Range[];
  constructor(ranges: Range[]) {
    this.ranges = [...ranges].sort((a, b) => a.start - b.start);
  }

  /** True when the ranges cover the whole hash space once, with no gap and no overlap. */
  get complete(): boolean {
    let next = 0;
    for (const r of this.ranges) {
      if (r.start !== next) return false;
      next = r.end + 1;
    }
    return next === HASH_MAX + 1;
  }

  /** True when every range is committed: a miss on the hashed child means the name is absent. */
  get committed(): boolean {
    return this.ranges.length > 0 && this.ranges.every((r) => r.committed);
  }

  /** The subvolume whose range holds the name's hash, or undefined in a gap. */
  subvolFor(name: string): number | undefined {
    const h = dmHash(name);
    for (const r of this.ranges) if (h >= r.start && h <= r.end) return r.subvol;
    return undefined;
  }

  rangeOf(subvol: number): Range | undefined {
    return this.ranges.find((r) => r.subvol === subvol);
  }
}

/**
 * A fresh layout over the given subvolumes: equal ranges in subvolume order, the first range
 * rotated by the directory's path hash so that top-level names do not all favour one brick.
 */
export function newLayout(dirPath: string, subvols: number[], committed = true): Layout {
  const n = subvols.length;
  if (n === 0) return new Layout([]);
  const chunk = Math.floor((HASH_MAX + 1) / n);
  const rot = dmHash(dirPath) % n;
  const ranges: Range[] = [];
  for (let i = 0; i < n; i++) {
    ranges.push({ subvol: subvols[(i + rot) % n], start: i * chunk, end: i === n - 1 ? HASH_MAX : (i + 1) * chunk - 1, committed });
  }
  return new Layout(ranges);
}
