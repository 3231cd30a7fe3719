// What a striped file records about itself on every piece (trusted.gfs.stripe.*), and how the
// pieces' attributes make the file's: the logical size, the blocks summed.
import { FsError } from '../../../../common/errors.js';
import { isReg, type Iatt } from '../../../../common/types.js';
import { sizeFromPieces, type Geometry } from './chunks.js';

export const SIZE_XATTR = 'trusted.gfs.stripe.size';
export const BLOCK_XATTR = 'trusted.gfs.stripe.block-size';
export const COUNT_XATTR = 'trusted.gfs.stripe.count';
export const INDEX_XATTR = 'trusted.gfs.stripe.index';
export const STRIPE_XATTRS = [SIZE_XATTR, BLOCK_XATTR, COUNT_XATTR, INDEX_XATTR];

/** Values are decimal ASCII, so `getfattr -d -m trusted.gfs` on a brick reads them. */
export const encodeNum = (n: number): Buffer => Buffer.from(String(n));

export function decodeNum(b: Buffer | undefined): number | undefined {
  if (!b) return undefined;
  const s = b.toString();
  return /^\d+$/.test(s) ? Number(s) : undefined;
}

/** The xattrs a new piece is created with. */
export function pieceXattrs(g: Geometry, index: number, size = 0): Record<string, Buffer> {
  return { [BLOCK_XATTR]: encodeNum(g.block), [COUNT_XATTR]: encodeNum(g.count), [INDEX_XATTR]: encodeNum(index), [SIZE_XATTR]: encodeNum(size) };
}

/** The geometry a piece records; a regular file without one is not striped by us (e.g. a file put
 *  on a brick by hand): it is read as striped with the volume's geometry. */
export function geometryOf(xattrs: Record<string, Buffer> | undefined, fallback: Geometry): Geometry {
  const block = decodeNum(xattrs?.[BLOCK_XATTR]);
  const count = decodeNum(xattrs?.[COUNT_XATTR]);
  if (block === undefined || count === undefined) return fallback;
  if (count !== fallback.count) {
    throw new FsError('EIO', `file striped over ${count} bricks lies on a stripe of ${fallback.count}`);
  }
  return { block, count };
}

/** One piece's answer, or undefined for a child that did not answer. */
export interface Piece {
  iatt: Iatt;
  xattrs: Record<string, Buffer>;
}

/**
 * The attributes of a striped file from its pieces. With every piece there, the size is what their
 * lengths give (pieces are kept at exact lengths, so this holds across crashes); with one missing,
 * the recorded size. `known` (this client's own open state) wins over both.
 */
export function mergeIatt(pieces: (Piece | undefined)[], g: Geometry, known?: number): Iatt {
  const present = pieces.filter((p): p is Piece => p !== undefined);
  if (!present.length) throw new FsError('ENOTCONN', 'no piece of the file answered');
  const first = pieces[0] ?? present[0];
  if (!isReg(first.iatt.mode)) return first.iatt;
  let size: number;
  if (known !== undefined) size = known;
  else if (present.length === pieces.length) size = sizeFromPieces(g, pieces.map((p) => Number(p!.iatt.size)));
  else size = Math.max(...present.map((p) => decodeNum(p.xattrs[SIZE_XATTR]) ?? 0));
  const blocks = present.reduce((a, p) => a + p.iatt.blocks, 0n);
  const mtime = present.reduce((a, p) => (p.iatt.mtime > a ? p.iatt.mtime : a), first.iatt.mtime);
  const ctime = present.reduce((a, p) => (p.iatt.ctime > a ? p.iatt.ctime : a), first.iatt.ctime);
  return { ...first.iatt, size: BigInt(size), blocks, mtime, ctime };
}
