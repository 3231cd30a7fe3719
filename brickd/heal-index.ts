// The heal index of a brick (GlusterFS's features/index): .gfs/indices/xattrop/<gfid> exists
// while any replicate counter (trusted.gfs.afr.*) of that inode is non-zero: an xattrop that
// leaves a counter non-zero makes sure of the entry, and one that brings the counters it changed
// back to zero removes the entry this brick wrote if no other counter is left (one io-thread job;
// an untar leaves no index of thousands of entries for the self-heal daemon's next listing to
// read one by one). Entries of inodes not known here (written before a restart) go when listed.
// Each entry holds the inode's volume path as of its last xattrop. Paths rather than gfid handles:
// the brick keeps no gfid -> path map, and every changelog update refreshes the path, so an entry
// is only stale when its inode was renamed or removed with no changelog update since; such entries
// are dropped when listed (the parent directory's own entry, pending for the same operation, heals
// the rename). The price: an inode renamed while pending on a brick is found again by an access,
// by the parent's entry heal or by `heal full`, not by this index alone.
import { mkdir, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import { gfidFromBytes, isGfid } from '../common/gfid.js';
import { PRIVATE_DIR, type Confiner } from './confine.js';
import { readGfid } from './iatt.js';
import { KeyedMutex } from './mutex.js';
import { xget, xlist } from './xattr.js';

export const AFR_PREFIX = 'trusted.gfs.afr.';
export const INDEX_XATTR = 'trusted.gfs.index.xattrop';
const INDEX_DIR = `${PRIVATE_DIR}/indices/xattrop`;

export interface IndexEntry { gfid: string; path: string }

async function removeUnlessPending(host: string, file: string): Promise<boolean> {
  if (await anyPending(host).catch(() => false)) return false;
  await unlink(file).catch(() => undefined);
  return true;
}

async function anyPending(host: string): Promise<boolean> {
  for (const name of await xlist(host)) {
    if (!name.startsWith(AFR_PREFIX)) continue;
    const v = await xget(host, name);
    if (v && v.some((byte) => byte !== 0)) return true;
  }
  return false;
}

export class HealIndex {
  private readonly dir: string;
  private readonly mutex = new KeyedMutex();
  /** host path -> volume path of inodes whose entry is known to exist, to skip rewriting it on
   *  every xattrop; emptied whenever a listing removes entries. */
  private readonly known = new LRUCache<string, { path: string; gfid: string }>({ max: 100_000 });
  private made = false;

  /** writeEntry writes a whole entry file, removeEntry removes one unless host has a counter
   *  left (the brick's io-threads: one job each, not several pool trips). */
  constructor(
    private readonly root: string,
    private readonly confiner: Confiner,
    private readonly writeEntry: (file: string, data: string) => Promise<void> = writeFile,
    private readonly removeEntry: (host: string, file: string) => Promise<boolean> = removeUnlessPending,
  ) {
    this.dir = `${root}/${INDEX_DIR}`;
  }

  /** True when host (volume path `path`) is known to have its entry. */
  knows(host: string, path: string): boolean {
    return this.known.get(host)?.path === path;
  }

  /** After an xattrop that left every replicate counter it changed on host at zero: the entry
   *  this brick wrote goes, unless another counter of the inode is still non-zero. Forgotten
   *  before that check, under the entry's mutex: a pre-op that lands meanwhile either shows in
   *  the check (the entry stays) or finds the entry unknown and writes it again after. */
  async settled(host: string): Promise<void> {
    const k = this.known.get(host);
    if (!k) return;
    await this.mutex.run(k.gfid, async () => {
      if (this.known.get(host) !== k) return;
      this.known.delete(host);
      const removed = await this.removeEntry(host, `${this.dir}/${k.gfid}`).catch(() => false);
      if (!removed) this.known.set(host, k); // still pending: the entry stays, as known
    });
  }

  /** After an xattrop of a replicate counter on host (volume path `path`) that left the
   *  counter at `value`: a non-zero one makes sure the inode has its entry. `gfidXattr`: the
   *  inode's gfid xattr as read with the counters (read here when not given). */
  async update(host: string, path: string, value: Buffer, gfidXattr?: Buffer): Promise<void> {
    if (!value.some((byte) => byte !== 0)) return; // removed when listed, if nothing else is pending
    if (this.knows(host, path)) return;
    const gfid = gfidXattr ? (gfidXattr.length === 16 ? gfidFromBytes(gfidXattr) : null) : await readGfid(host);
    if (!gfid) return;
    await this.mutex.run(gfid, async () => {
      if (!this.made) { await mkdir(this.dir, { recursive: true, mode: 0o700 }); this.made = true; }
      await this.writeEntry(`${this.dir}/${gfid}`, JSON.stringify({ path }));
      this.known.set(host, { path, gfid });
    });
  }

  /** The namespace changed at host (unlink), or anywhere (rename, rmdir): a path known to have
   *  an entry may now name another inode. */
  forget(host?: string): void {
    if (host) this.known.delete(host);
    else this.known.clear();
  }

  /** Every entry whose path still names its inode; stale ones are removed. */
  async list(): Promise<IndexEntry[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const out: IndexEntry[] = [];
    for (const gfid of names) {
      if (!isGfid(gfid)) continue;
      const file = `${this.dir}/${gfid}`;
      const entry = await this.mutex.run(gfid, async () => {
        try {
          const { path } = JSON.parse(await readFile(file, 'utf8')) as { path: string };
          const hp = await this.confiner.resolve(path);
          // Forgotten before the check: an xattrop after it rewrites the entry (under this
          // mutex, so after a removal); one before it left its counter where the check sees it.
          this.known.delete(hp.host);
          if ((await readGfid(hp.host)) === gfid && (await anyPending(hp.host))) return { gfid, path };
        } catch {
          this.known.clear(); // unreadable entry or the path is gone
        }
        await unlink(file).catch(() => undefined);
        return undefined;
      });
      if (entry) out.push(entry);
    }
    return out;
  }
}
