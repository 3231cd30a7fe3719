// Metadata heal: mode, owner, times and user xattrs of the good copy onto the stale ones, then
// the metadata counters zeroed.
import { ROOT_CTX, isLnk, type Iatt, type LookupReply } from '../../../../common/types.js';
import { findDirection } from './changelog.js';
import { lockInode, resetCounters, type HealOutcome, type SourceChoice } from './heal-data.js';
import type { Replicate, Settled } from './index.js';
import { choose } from './split-brain.js';

const differs = (a: Iatt, b: Iatt) => (a.mode & 0o7777) !== (b.mode & 0o7777) || a.uid !== b.uid || a.gid !== b.gid;

/** Copies mode, owner, times and user xattrs of src onto the sinks. */
export async function copyMetadata(r: Replicate, path: string, src: number, iatt: Iatt, sinks: number[]): Promise<void> {
  const loc = { path };
  const names = (await r.children[src].listxattr(ROOT_CTX, loc).catch(() => [] as string[])).filter((n) => n.startsWith('user.'));
  await r.onAll(async (c) => {
    await c.setattr(ROOT_CTX, loc, { uid: iatt.uid, gid: iatt.gid });
    if (!isLnk(iatt.mode)) await c.setattr(ROOT_CTX, loc, { mode: iatt.mode & 0o7777, atime: iatt.atime, mtime: iatt.mtime });
    const have = (await c.listxattr(ROOT_CTX, loc).catch(() => [] as string[])).filter((n) => n.startsWith('user.'));
    for (const n of names) await c.setxattr(ROOT_CTX, loc, n, await r.children[src].getxattr(ROOT_CTX, loc, n), 0);
    for (const n of have) if (!names.includes(n)) await c.removexattr(ROOT_CTX, loc, n).catch(() => undefined);
  }, sinks);
}

/** Heals the metadata of path. The changelog is read, the metadata copied and the counters zeroed
 *  under the inode's lock, so no metadata operation is half done meanwhile. */
export async function healMetadata(r: Replicate, path: string, choice: SourceChoice = {}, full = false): Promise<HealOutcome> {
  const first = await r.lookupAll(ROOT_CTX, { path });
  const found = first.filter((x) => x.ok).map((x) => x.i);
  if (found.length < 2) return found.length ? 'none' : 'gone';
  if (!full && choice.source === undefined && !findDirection(r.matrixOf(first), 'metadata').pending) return 'none';
  const { locked, unlock } = await lockInode(r, path, found);
  try {
    return await healLocked(r, path, choice, full, locked);
  } finally {
    await unlock();
  }
}

async function healLocked(r: Replicate, path: string, choice: SourceChoice, full: boolean, locked: number[]): Promise<HealOutcome> {
  const res: Settled<LookupReply>[] = (await r.lookupAll(ROOT_CTX, { path })).filter((x) => locked.includes(x.i));
  const ok = res.filter((x): x is Extract<Settled<LookupReply>, { ok: true }> => x.ok);
  if (ok.length < 2) return ok.length ? 'none' : 'gone';
  const d = findDirection(r.matrixOf(res, ok[0].value.iatt.gfid), 'metadata');
  const within = ok.map((x) => x.i);
  let source: number | undefined;
  let sinks: number[] = [];
  if (choice.source !== undefined) {
    source = choice.source;
  } else if (d.splitBrain) {
    source = choose(choice.policy ?? 'none', ok.filter((x) => x.i !== r.arbiter).map((x) => ({ i: x.i, iatt: x.value.iatt })));
    if (source === undefined) return 'split-brain';
  } else if (d.pending) {
    source = d.sources.find((i) => i !== r.arbiter) ?? d.sources[0];
    sinks = d.sinks;
  } else if (full) {
    source = within.find((i) => i !== r.arbiter)!;
  } else {
    return 'none';
  }
  if (source === undefined) return 'split-brain';
  const src = ok.find((x) => x.i === source)!;
  if (!sinks.length) sinks = within.filter((i) => i !== source && (d.pending || choice.source !== undefined || differs(src.value.iatt, ok.find((x) => x.i === i)!.value.iatt)));
  if (sinks.length) await copyMetadata(r, path, source, src.value.iatt, sinks);
  if (d.pending || choice.source !== undefined) await resetCounters(r, path, ['metadata'], within);
  return sinks.length || d.pending ? 'healed' : 'none';
}
