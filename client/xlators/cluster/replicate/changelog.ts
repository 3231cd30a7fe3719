// The changelog: pending counters kept on the bricks, one xattr per child of the set
// (trusted.gfs.afr.<child-name>), 12 bytes: data, metadata and entry counts as big-endian int32.
// The copy on brick i holding a non-zero counter for child j means "brick i saw an operation of
// that kind that child j may have missed". From the matrix of every copy's counters the heal
// finds which copies are good (sources) and which are stale (sinks), as GlusterFS's AFR does.

export const AFR_PREFIX = 'trusted.gfs.afr.';
export type TxnType = 'data' | 'metadata' | 'entry';
export const TXN_INDEX: Record<TxnType, number> = { data: 0, metadata: 1, entry: 2 };
export const CHANGELOG_SIZE = 12;

export function afrKey(childName: string): string {
  return `${AFR_PREFIX}${childName}`;
}

/** A 12-byte addend with `by` in the slot of the given type. */
export function delta(type: TxnType, by: number): Buffer {
  const b = Buffer.alloc(CHANGELOG_SIZE);
  b.writeInt32BE(by, TXN_INDEX[type] * 4);
  return b;
}

/** An addend that subtracts the given counters (to bring them to zero). */
export function negate(counts: Counts, types: readonly TxnType[]): Buffer | undefined {
  const b = Buffer.alloc(CHANGELOG_SIZE);
  let any = false;
  for (const t of types) {
    const v = counts[TXN_INDEX[t]];
    if (v !== 0) { b.writeInt32BE(-v, TXN_INDEX[t] * 4); any = true; }
  }
  return any ? b : undefined;
}

/** [data, metadata, entry]. */
export type Counts = [number, number, number];

export function decode(b: Buffer | undefined): Counts {
  if (!b || b.length !== CHANGELOG_SIZE) return [0, 0, 0];
  return [b.readInt32BE(0), b.readInt32BE(4), b.readInt32BE(8)];
}

/** matrix[i][j]: the counters brick i keeps for child j; undefined rows for children that did not answer. */
export type Matrix = (Counts[] | undefined)[];

export function matrixFrom(childNames: readonly string[], replies: (Record<string, Buffer> | undefined)[]): Matrix {
  return replies.map((x) => (x ? childNames.map((n) => decode(x[afrKey(n)])) : undefined));
}

export interface Direction {
  /** Children whose copy is good for this type. */
  sources: number[];
  /** Children whose copy is stale (accused by a source). */
  sinks: number[];
  /** Every answering copy is accused by another that is not itself in doubt. */
  splitBrain: boolean;
  /** Some counter is non-zero. */
  pending: boolean;
  /** Every answering copy accuses itself (a transaction that never finished), nobody else. */
  allFools: boolean;
}

/**
 * Which copies are good. A copy that accuses itself (its own pre-op never got its post-op) is a
 * "fool" whose accusations do not count; a copy that accuses others but not itself is "wise".
 * Sources are the answering copies no wise copy accuses; sinks those some wise copy accuses.
 * No source with some wise copy left is split-brain. `eligible` limits who may be a source (the
 * arbiter never is for data).
 */
export function findDirection(m: Matrix, type: TxnType, eligible?: (i: number) => boolean): Direction {
  const t = TXN_INDEX[type];
  const up = m.map((r, i) => (r ? i : -1)).filter((i) => i >= 0);
  const pending = up.some((i) => m[i]!.some((c) => c[t] !== 0));
  const fool = (i: number) => m[i]![i][t] > 0;
  const wise = up.filter((i) => !fool(i) && m[i]!.some((c, j) => j !== i && c[t] > 0));
  const accused = new Set<number>();
  for (const w of wise) for (const j of up) if (j !== w && m[w]![j][t] > 0) accused.add(j);
  // Wise copies that accuse each other leave no source: split-brain.
  let sources = up.filter((i) => !accused.has(i));
  if (eligible) sources = sources.filter(eligible);
  const sinks = up.filter((i) => accused.has(i));
  const splitBrain = up.length > 1 && sources.length === 0 && pending;
  const allFools = pending && wise.length === 0;
  return { sources, sinks, splitBrain, pending, allFools };
}
