// The changelog: pending counters kept on the bricks in 12-byte xattrs (data, metadata and entry
// counts as big-endian int32), as GlusterFS's AFR v2 keeps them. A transaction's pre-op raises
// trusted.gfs.afr.dirty on each brick it runs on and its post-op lowers it again; only when the
// operation failed on (or never reached) child j does a brick also raise trusted.gfs.afr.<child-j>,
// "child j missed an operation of that kind". So a file's own xattrs are the gfid and one counter,
// which fit in a 256-byte ext4 inode: two counters per child (the scheme before) spilled to an
// external block, and each update then cost 5-10x as much (27-62 us against 5 us a set).
// A brick's dirty counter is its accusation of itself: in the matrix, brick i's dirty (with the
// counter for its own name, which bricks written by the earlier scheme hold) is cell [i][i]. From
// the matrix the heal finds which copies are good (sources) and which are stale (sinks).

export const AFR_PREFIX = 'trusted.gfs.afr.';
export type TxnType = 'data' | 'metadata' | 'entry';
export const TXN_INDEX: Record<TxnType, number> = { data: 0, metadata: 1, entry: 2 };
export const CHANGELOG_SIZE = 12;

/** Raised by every pre-op, lowered by its post-op: "an operation may be half done here". */
export const DIRTY_KEY = `${AFR_PREFIX}dirty`;

/** The key of child j's blame (never 'dirty': child names are <volume>-client-<n> and the like). */
export function afrKey(childName: string): string {
  return `${AFR_PREFIX}${childName}`;
}

/** Every changelog key a reader asks a brick for. */
export function changelogKeys(childNames: readonly string[]): string[] {
  return [DIRTY_KEY, ...childNames.map(afrKey)];
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

/** replies[i]: child i's changelog xattrs. Cell [i][i] adds i's dirty counter to the counter for
 *  its own name. */
export function matrixFrom(childNames: readonly string[], replies: (Record<string, Buffer> | undefined)[]): Matrix {
  return replies.map((x, i) => (x ? childNames.map((n, j) => {
    const c = decode(x[afrKey(n)]);
    if (j !== i) return c;
    const d = decode(x[DIRTY_KEY]);
    return [c[0] + d[0], c[1] + d[1], c[2] + d[2]] as Counts;
  }) : undefined));
}

/** The addends that zero, for the given types, what child i's xattrs hold against the children
 *  `of` (its own dirty counter too when i is one of them). */
export function zeroing(childNames: readonly string[], i: number, xattrs: Record<string, Buffer>, of: readonly number[], types: readonly TxnType[]): { name: string; add: Buffer }[] {
  const names = of.map((j) => afrKey(childNames[j]));
  if (of.includes(i)) names.push(DIRTY_KEY);
  const out: { name: string; add: Buffer }[] = [];
  for (const name of names) {
    const add = negate(decode(xattrs[name]), types);
    if (add) out.push({ name, add });
  }
  return out;
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
