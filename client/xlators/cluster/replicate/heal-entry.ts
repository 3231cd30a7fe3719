// Entry heal: names of a directory. Against the good copy, a stale copy loses the names the good
// one lacks (deleted or renamed away while it was down) and gains the ones it lacks (created or
// renamed in): directories are made and healed in turn, files marked stale and then created empty
// so the data heal copies them under its lock, symlinks and hard links made as they are.
import { mapBounded } from '../../../../common/concurrency.js';
import { toErrno } from '../../../../common/errors.js';
import { ROOT_CTX, isDir, isLnk, isReg, joinPath, type Dirent, type LookupReply } from '../../../../common/types.js';
import { afrKey, delta, findDirection } from './changelog.js';
import { lockInode, resetCounters, type HealOutcome } from './heal-data.js';
import { copyMetadata } from './heal-metadata.js';
import type { Replicate, Settled } from './index.js';

const O_WRONLY = 1;

/** Removes path (recursively for a directory) on one child. */
export async function removeTree(r: Replicate, i: number, path: string, iatt: { mode: number }): Promise<void> {
  const c = r.children[i];
  if (isDir(iatt.mode)) {
    for (const e of await c.readdirp(ROOT_CTX, { path })) await removeTree(r, i, joinPath(path, e.name), e.iatt);
    await c.rmdir(ROOT_CTX, { path }).catch((e) => { if (toErrno(e) !== 'ENOENT') throw e; });
  } else {
    await c.unlink(ROOT_CTX, { path }).catch((e) => { if (toErrno(e) !== 'ENOENT') throw e; });
  }
}

/** Creates e (named path) on sink as it is on src; returns the paths whose contents must heal next. */
async function createCopy(r: Replicate, src: number, sink: number, path: string, e: Dirent, linked: Map<string, string>): Promise<string[]> {
  const c = r.children[sink];
  const args = { mode: e.iatt.mode & 0o7777, umask: 0, gfid: e.iatt.gfid };
  const loc = { path };
  // The good copy blames the sink before the sink's copy exists: a heal cut short after the create
  // (the sink's brick restarted, say) leaves a name the next entry heal finds in place, and only
  // this mark still says that its contents are missing.
  if (isDir(e.iatt.mode)) {
    // The new directory is empty on sink: let its entry heal fill it.
    await r.children[src].xattrop(ROOT_CTX, loc, afrKey(c.name), delta('entry', 1));
    await c.mkdir(ROOT_CTX, loc, args);
    await copyMetadata(r, path, src, e.iatt, [sink]);
    return [path];
  }
  if (isLnk(e.iatt.mode)) {
    await c.symlink(ROOT_CTX, await r.children[src].readlink(ROOT_CTX, loc), loc, args);
    await copyMetadata(r, path, src, e.iatt, [sink]);
    return [];
  }
  const other = e.iatt.nlink > 1 ? linked.get(e.iatt.gfid) : undefined;
  if (other) {
    await c.link(ROOT_CTX, { path: other }, loc);
    return [];
  }
  if (!isReg(e.iatt.mode)) return []; // devices and fifos are not served by bricks
  const data = sink !== r.arbiter && e.iatt.size > 0n;
  if (data) await r.children[src].xattrop(ROOT_CTX, loc, afrKey(c.name), delta('data', 1));
  const { fd } = await c.create(ROOT_CTX, loc, O_WRONLY, args);
  await c.release(ROOT_CTX, fd);
  await copyMetadata(r, path, src, e.iatt, [sink]);
  linked.set(e.iatt.gfid, path);
  return data ? [path] : [];
}

interface Copy { src: number; sink: number; path: string; e: Dirent }

/** Creates the copies, shd-max-threads at once; the names of one hard-linked inode one after the
 *  other (the first is created, the rest linked to it). The paths to heal next. A copy that
 *  cannot be made is passed to `failed` when given, else fails the heal. */
async function createCopies(r: Replicate, copies: Copy[], failed?: (c: Copy, err: Error) => void): Promise<string[]> {
  const linked = new Map<string, string>();
  const one = (c: Copy) => createCopy(r, c.src, c.sink, c.path, c.e, linked).catch((err) => {
    if (!failed) throw err;
    failed(c, err as Error);
    return [];
  });
  const single = copies.filter((c) => isDir(c.e.iatt.mode) || c.e.iatt.nlink <= 1);
  const out = (await mapBounded(single, r.opts['shd-max-threads'], one)).flat();
  for (const c of copies.filter((x) => !single.includes(x))) out.push(...await one(c));
  return out;
}

export interface EntryHeal { outcome: HealOutcome; next: string[] }

/** Heals the names of dir; returns paths (new directories and files) to heal after it. The
 *  changelog is read, the names healed and the counters zeroed under the directory's lock, so no
 *  entry operation is half done meanwhile (its marks would look like a stale copy's). */
export async function healEntry(r: Replicate, dir: string, full = false): Promise<EntryHeal> {
  const first = await r.lookupAll(ROOT_CTX, { path: dir });
  const dirs = first.filter((x) => x.ok && isDir(x.value.iatt.mode)).map((x) => x.i);
  if (dirs.length < 2) return { outcome: dirs.length ? 'none' : 'gone', next: [] };
  if (!full && !findDirection(r.matrixOf(first), 'entry').pending) return { outcome: 'none', next: [] };
  const { locked, unlock } = await lockInode(r, dir, dirs);
  try {
    return await healLocked(r, dir, full, locked);
  } finally {
    await unlock();
  }
}

async function healLocked(r: Replicate, dir: string, full: boolean, locked: number[]): Promise<EntryHeal> {
  const res = (await r.lookupAll(ROOT_CTX, { path: dir })).filter((x) => locked.includes(x.i));
  const ok = res.filter((x): x is Extract<Settled<LookupReply>, { ok: true }> => x.ok && isDir(x.value.iatt.mode));
  if (ok.length < 2) return { outcome: ok.length ? 'none' : 'gone', next: [] };
  const within = ok.map((x) => x.i);
  const d = findDirection(r.matrixOf(res, ok[0].value.iatt.gfid), 'entry');
  if (!d.pending && !full) return { outcome: 'none', next: [] };
  const lists = new Map<number, Map<string, Dirent>>();
  const listed = await r.onAll((c) => c.readdirp(ROOT_CTX, { path: dir }), within);
  r.noteFailures(listed);
  for (const l of listed) if (l.ok) lists.set(l.i, new Map(l.value.map((e) => [e.name, e])));
  const next: string[] = [];
  const merge = !d.pending || d.splitBrain || d.sinks.length === 0;
  if (merge) {
    // No copy is known stale (a full crawl, or copies that blame each other): add what is missing
    // anywhere, remove nothing.
    const copies: Copy[] = [];
    for (const [i, names] of lists) {
      for (const [j, other] of lists) {
        if (i === j) continue;
        for (const [name, e] of other) {
          if (names.has(name) || j === r.arbiter && !isDir(e.iatt.mode)) continue;
          names.set(name, e);
          copies.push({ src: j, sink: i, path: joinPath(dir, name), e });
        }
      }
    }
    next.push(...await createCopies(r, copies, (c, err) => {
      r.log.warn({ path: c.path, err: err.message }, 'entry heal: cannot create');
    }));
  } else {
    const src = d.sources.find((i) => lists.has(i) && i !== r.arbiter) ?? d.sources.find((i) => lists.has(i));
    if (src === undefined) return { outcome: 'split-brain', next: [] };
    const good = lists.get(src)!;
    for (const sink of d.sinks) {
      const have = lists.get(sink);
      if (!have) continue;
      for (const [name, e] of have) {
        const g = good.get(name);
        if (!g || g.iatt.gfid !== e.iatt.gfid || (g.iatt.mode & 0o170000) !== (e.iatt.mode & 0o170000)) {
          await removeTree(r, sink, joinPath(dir, name), e.iatt);
          have.delete(name);
        }
      }
      const copies = [...good].filter(([name]) => !have.has(name)).map(([name, e]) => ({ src, sink, path: joinPath(dir, name), e }));
      next.push(...await createCopies(r, copies));
    }
    r.log.info({ dir, source: r.children[src].name, sinks: d.sinks.map((i) => r.children[i].name) }, 'entries healed');
  }
  if (d.pending) await resetCounters(r, dir, ['entry'], within);
  return { outcome: d.pending ? 'healed' : 'none', next: [...new Set(next)] };
}
