// Client quorum (cluster.quorum-type): a modifying operation needs enough children of the set up
// and answering, else it fails with EROFS; reads never need quorum.
import { FsError } from '../../../../common/errors.js';

export type QuorumType = 'none' | 'auto' | 'fixed';

export interface QuorumConfig {
  type: QuorumType;
  /** For 'fixed'. */
  count: number;
  /** Children in the set. */
  n: number;
}

/** auto: more than half, or exactly half including the first child (GlusterFS's rule). */
export function hasQuorum(q: QuorumConfig, up: readonly number[]): boolean {
  switch (q.type) {
    case 'none': return up.length > 0;
    case 'fixed': return up.length >= Math.min(q.count, q.n);
    case 'auto': return up.length * 2 > q.n || (up.length * 2 === q.n && up.includes(0));
  }
}

export function quorumError(what: string, up: number, n: number): FsError {
  return new FsError('EROFS', `${what}: client quorum not met (${up} of ${n} bricks of the replica set up)`);
}
