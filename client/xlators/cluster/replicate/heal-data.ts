// Data heal: under the brick lock every data transaction also takes (so no write runs meanwhile),
// read the changelog again, copy the good copy over the stale ones, then zero the data counters.
import { randomUUID } from 'node:crypto';
import { FsError, toErrno } from '../../../../common/errors.js';
import type { Fd, Iatt } from '../../../../common/types.js';
import { ROOT_CTX } from '../../../../common/types.js';
import { zeroing } from './changelog.js';
import type { Replicate, Settled } from './index.js';
import { choose, type Copy, type Policy } from './split-brain.js';
import { applyAdds, txnLock } from './transaction.js';

const O_RDWR = 2;
export const HEAL_CHUNK = 4 * 1024 * 1024;

export type HealOutcome = 'healed' | 'none' | 'busy' | 'split-brain' | 'gone';

/** A forced source (split-brain resolution) or a policy to apply when the changelog cannot decide. */
export interface SourceChoice { source?: number; policy?: Policy }

/** Opens the file on every up child and locks it there, in child order; undefined when busy. */
export async function lockFile(r: Replicate, path: string, owner: string): Promise<{ fds: Map<number, Fd>; unlock: () => Promise<void> } | undefined> {
  const opened = await r.onAll((c) => c.open(ROOT_CTX, { path }, O_RDWR));
  r.noteFailures(opened);
  const fds = new Map<number, Fd>();
  for (const o of opened) if (o.ok) fds.set(o.i, o.value);
  const locked: number[] = [];
  const unlock = async () => {
    for (const i of locked) await r.children[i].lk(ROOT_CTX, fds.get(i)!, 'setlk', txnLock('unlock', owner)).catch(() => undefined);
    await Promise.allSettled([...fds].map(([i, fd]) => r.children[i].release(ROOT_CTX, fd)));
  };
  for (const i of [...fds.keys()].sort((a, b) => a - b)) {
    try {
      await r.children[i].lk(ROOT_CTX, fds.get(i)!, 'setlk', txnLock('write', owner));
      locked.push(i);
    } catch (e) {
      if (toErrno(e) === 'EAGAIN') { await unlock(); return undefined; }
      fds.delete(i);
      r.noteError(i, e);
    }
  }
  return { fds, unlock };
}

/** Locks the inode at path exclusively (the lock entry and metadata transactions hold shared) on
 *  the given children, in child order, waiting for their transactions to end; returns the children
 *  locked and their unlock. */
export async function lockInode(r: Replicate, path: string, on: number[]): Promise<{ locked: number[]; unlock: () => Promise<void> }> {
  const owner = `afr-heal:${r.clientId}:${randomUUID()}`;
  const locked: number[] = [];
  const unlock = async () => {
    await Promise.all(locked.map((i) => r.children[i].inodelk(ROOT_CTX, { path }, 'setlk', txnLock('unlock', owner)).catch(() => undefined)));
  };
  for (const i of [...on].sort((a, b) => a - b)) {
    try {
      await r.children[i].inodelk(ROOT_CTX, { path }, 'setlkw', txnLock('write', owner));
      locked.push(i);
    } catch (e) {
      if (toErrno(e) === 'ENOSYS') locked.push(i); // a brick without inode locks
      else r.noteError(i, e);
    }
  }
  return { locked, unlock };
}

/** Copies [0, size) of src to every sink through open fds and truncates them to size. */
export async function copyData(r: Replicate, src: Fd, srcI: number, sinks: { i: number; fd: Fd }[], size: bigint): Promise<void> {
  const targets = sinks.filter((s) => s.i !== r.arbiter);
  await Promise.all(targets.map((s) => r.children[s.i].ftruncate(ROOT_CTX, s.fd, Number(size))));
  for (let off = 0; off < Number(size); off += HEAL_CHUNK) {
    const buf = await r.children[srcI].read(ROOT_CTX, src, off, Math.min(HEAL_CHUNK, Number(size) - off));
    if (buf.length === 0) break;
    await Promise.all(targets.map((s) => r.children[s.i].write(ROOT_CTX, s.fd, off, buf)));
  }
}

/** Zeroes the given changelog types of path on the children `on` (the copies a heal just made
 *  alike), from the counters they hold, for those children only: what they hold against a child
 *  outside the heal (down, or gone from it midway) stays, for the heal that reaches it. */
export async function resetCounters(r: Replicate, path: string, types: ('data' | 'metadata' | 'entry')[], on: number[]): Promise<void> {
  const res = await r.lookupAll(ROOT_CTX, { path });
  await r.onAll(async (c, i) => {
    const x = res.find((y) => y.ok && y.i === i);
    if (x?.ok) await applyAdds(c, zeroing(r.childNames, i, x.value.xattrs, on, types).map((a) => ({ loc: { path }, ...a })));
  }, on);
}

/** Picks source and sinks for data from the changelog (or the choice); undefined = split-brain. */
export function dataDirection(r: Replicate, res: Settled<import('../../../../common/types.js').LookupReply>[], choice: SourceChoice, within: number[]):
  { source: number; sinks: number[] } | 'none' | 'split-brain' {
  const found = r.stateOf(res);
  if (!found || !found.state.data) return 'none';
  const d = found.state.data;
  const copies: Copy[] = res.filter((x) => x.ok && within.includes(x.i) && x.i !== r.arbiter)
    .map((x) => ({ i: x.i, iatt: (x as { value: { iatt: Iatt } }).value.iatt }));
  const others = (s: number) => within.filter((i) => i !== s);
  if (choice.source !== undefined) return { source: choice.source, sinks: others(choice.source) };
  if (d.splitBrain || (d.pending && d.sources.length === 0)) {
    const s = choose(choice.policy ?? 'none', copies);
    return s === undefined ? 'split-brain' : { source: s, sinks: others(s) };
  }
  if (!d.pending) return 'none';
  if (d.sinks.length === 0) {
    // Only self-accusing copies (a writer died mid-transaction): the largest copy wins.
    const sizes = new Set(copies.map((c) => c.iatt.size));
    if (sizes.size <= 1) return { source: d.sources.find((i) => within.includes(i)) ?? within[0], sinks: [] };
    const big = copies.reduce((a, b) => (b.iatt.size > a.iatt.size ? b : a));
    return { source: big.i, sinks: others(big.i) };
  }
  const source = d.sources.find((i) => within.includes(i) && i !== r.arbiter);
  if (source === undefined) return 'split-brain';
  return { source, sinks: d.sinks.filter((i) => within.includes(i)) };
}

export async function healData(r: Replicate, path: string, choice: SourceChoice = {}): Promise<HealOutcome> {
  const owner = `afr-heal:${r.clientId}:${path}`;
  const held = await lockFile(r, path, owner);
  if (!held) return 'busy';
  try {
    const res = await r.lookupAll(ROOT_CTX, { path });
    // The copies opened, locked and read as this inode: a child whose lookup failed (or found
    // another inode) is out of this heal: its blame is neither judged nor cleared without its counters.
    const gfid = r.stateOf(res)?.iatt.gfid;
    const within = [...held.fds.keys()].filter((i) => res.some((x) => x.ok && x.i === i && x.value.iatt.gfid === gfid));
    if (within.length < 2) return 'none';
    const dir = dataDirection(r, res, choice, within);
    if (dir === 'none' || dir === 'split-brain') return dir;
    const src = res.find((x) => x.ok && x.i === dir.source);
    if (!src || !src.ok) throw new FsError('ENOTCONN', `heal ${path}: the source copy went away`);
    if (dir.sinks.length) {
      await copyData(r, held.fds.get(dir.source)!, dir.source, dir.sinks.map((i) => ({ i, fd: held.fds.get(i)! })), src.value.iatt.size);
      r.log.info({ path, source: r.children[dir.source].name, sinks: dir.sinks.map((i) => r.children[i].name), size: String(src.value.iatt.size) }, 'data healed');
    }
    await resetCounters(r, path, ['data'], within);
    return 'healed';
  } finally {
    await held.unlock();
  }
}
