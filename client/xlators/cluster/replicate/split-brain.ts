// Choosing a source where the changelog cannot: the `heal VOL split-brain` commands and
// cluster.favorite-child-policy (size, mtime, ctime, majority), as GlusterFS resolves them.
import type { Iatt } from '../../../../common/types.js';

export type Policy = 'none' | 'size' | 'mtime' | 'ctime' | 'majority';
export const POLICIES: readonly Policy[] = ['none', 'size', 'mtime', 'ctime', 'majority'];

/** The command-line names of the split-brain resolutions and the policy each applies. */
export const CLI_POLICIES: Record<string, Policy> = { 'bigger-file': 'size', 'latest-mtime': 'mtime' };

export interface Copy { i: number; iatt: Iatt }

/** The child whose copy the policy picks among `copies`, or undefined when it cannot decide. */
export function choose(policy: Policy, copies: readonly Copy[]): number | undefined {
  if (copies.length === 0 || policy === 'none') return undefined;
  const best = (key: (c: Copy) => bigint) => {
    const top = copies.reduce((a, b) => (key(b) > key(a) ? b : a));
    // A tie decides nothing.
    return copies.filter((c) => key(c) === key(top)).length === 1 ? top.i : undefined;
  };
  switch (policy) {
    case 'size': return best((c) => c.iatt.size);
    case 'mtime': return best((c) => c.iatt.mtime);
    case 'ctime': return best((c) => c.iatt.ctime);
    case 'majority': {
      const groups = new Map<string, Copy[]>();
      for (const c of copies) {
        const k = `${c.iatt.size}:${c.iatt.mtime}`;
        groups.set(k, [...(groups.get(k) ?? []), c]);
      }
      for (const g of groups.values()) if (g.length * 2 > copies.length) return g[0].i;
      return undefined;
    }
  }
}
