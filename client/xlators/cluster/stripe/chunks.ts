// The stripe arithmetic, and nothing else: chunk i of a file lives on child i mod N at local offset
// floor(i / N) * B. Pieces are coalesced, so any logical range maps to one contiguous local range
// on each child it touches.

/** How one file is striped: its block (chunk) size and stripe count, fixed at create. */
export interface Geometry {
  block: number;
  count: number;
}

/** The part of a logical range that falls on one child: one contiguous local range, made of
 *  pieces of the logical range in order (each piece is one chunk or part of one). */
export interface Extent {
  child: number;
  /** Local offset on the child's piece. */
  local: number;
  length: number;
  /** [offset into the caller's range, length] of each part, in local order. */
  parts: [number, number][];
}

/** The length child k's piece has when the file's logical size is `size`. */
export function localLength(g: Geometry, size: number, k: number): number {
  if (size <= 0) return 0;
  const lastChunk = Math.floor((size - 1) / g.block);
  // The last chunk on child k at or below lastChunk.
  const back = (((lastChunk - k) % g.count) + g.count) % g.count;
  const i = lastChunk - back;
  if (i < 0) return 0;
  const inChunk = i === lastChunk ? size - i * g.block : g.block;
  return Math.floor(i / g.count) * g.block + inChunk;
}

/** The logical end (offset past the last byte) that a piece of `length` bytes on child k implies. */
export function pieceEnd(g: Geometry, length: number, k: number): number {
  if (length <= 0) return 0;
  const j = Math.floor((length - 1) / g.block);
  const r = (length - 1) % g.block;
  return (j * g.count + k) * g.block + r + 1;
}

/** The logical size the pieces' lengths give (the largest end any piece implies). */
export function sizeFromPieces(g: Geometry, lengths: number[]): number {
  return lengths.reduce((max, len, k) => Math.max(max, pieceEnd(g, len, k)), 0);
}

/** Where logical byte `offset` lives. */
export function locate(g: Geometry, offset: number): { child: number; local: number } {
  const i = Math.floor(offset / g.block);
  return { child: i % g.count, local: Math.floor(i / g.count) * g.block + (offset % g.block) };
}

/** Splits the logical range [offset, offset + length) into one extent per child it touches. */
export function extents(g: Geometry, offset: number, length: number): Extent[] {
  const byChild = new Map<number, Extent>();
  let at = offset;
  const end = offset + length;
  while (at < end) {
    const { child, local } = locate(g, at);
    const n = Math.min(end - at, g.block - (at % g.block));
    const e = byChild.get(child);
    if (e) {
      e.length += n;
      e.parts.push([at - offset, n]);
    } else {
      byChild.set(child, { child, local, length: n, parts: [[at - offset, n]] });
    }
    at += n;
  }
  return [...byChild.values()].sort((a, b) => a.child - b.child);
}
