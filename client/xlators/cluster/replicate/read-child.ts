// Which child serves a read: one whose copy is known good, spread across the set by the gfid
// (GlusterFS's read-hash-mode 1), so different files read from different bricks.
import { createHash } from 'node:crypto';

export function gfidHash(gfid: string): number {
  return createHash('md5').update(gfid).digest().readUInt32BE(0);
}

/** One of `readable` (non-empty) for this gfid; `prefer` wins when it is readable. */
export function pickReadChild(gfid: string, readable: readonly number[], prefer?: number): number {
  if (prefer !== undefined && readable.includes(prefer)) return prefer;
  return readable[gfidHash(gfid) % readable.length];
}

/** The readable children in the order to try: the picked one first, the rest after. */
export function readOrder(gfid: string, readable: readonly number[]): number[] {
  if (readable.length === 0) return [];
  const first = pickReadChild(gfid, readable);
  return [first, ...readable.filter((i) => i !== first)];
}
