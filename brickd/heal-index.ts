// The heal index of a brick (GlusterFS's features/index): .gfs/indices/xattrop/<gfid> exists while
// any replicate counter (trusted.gfs.afr.*) of that inode is non-zero, kept up to date by every
// xattrop on such a counter, so the self-heal daemon finds pending inodes without a crawl.
// Each entry holds the inode's volume path as of its last xattrop. Paths rather than gfid handles:
// the brick keeps no gfid -> path map, and every changelog update refreshes the path, so an entry
// is only stale when its inode was renamed or removed with no changelog update since; such entries
// are dropped when listed (the parent directory's own entry, pending for the same operation, heals
// the rename). The price: an inode renamed while pending on a brick is found again by an access,
// by the parent's entry heal or by `heal full`, not by this index alone.
import { mkdir, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import { isGfid } from '../common/gfid.js';
import { PRIVATE_DIR, type Confiner } from './confine.js';
import { readGfid } from './iatt.js';
import { KeyedMutex } from './mutex.js';
import { xget, xlist } from './xattr.js';

export const AFR_PREFIX = 'trusted.gfs.afr.';
export const INDEX_XATTR = 'trusted.gfs.index.xattrop';
const INDEX_DIR = `${PRIVATE_DIR}/indices/xattrop`;

export interface IndexEntry { gfid: string; path: string }

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
  /** gfid -> path of entries known to exist, to skip rewriting them on every xattrop. */
  private readonly known = new LRUCache<string, string>({ max: 100_000 });
  private made = false;

  constructor(private readonly root: string, private readonly confiner: Confiner) {
    this.dir = `${root}/${INDEX_DIR}`;
  }

  /** After an xattrop of a replicate counter on host (volume path `path`). */
  async update(host: string, path: string): Promise<void> {
    const gfid = await readGfid(host);
    if (!gfid) return;
    await this.mutex.run(gfid, async () => {
      const file = `${this.dir}/${gfid}`;
      if (await anyPending(host)) {
        if (this.known.get(gfid) === path) return;
        if (!this.made) { await mkdir(this.dir, { recursive: true, mode: 0o700 }); this.made = true; }
        await writeFile(file, JSON.stringify({ path }));
        this.known.set(gfid, path);
      } else {
        this.known.delete(gfid);
        await unlink(file).catch(() => undefined);
      }
    });
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
          if ((await readGfid(hp.host)) === gfid && (await anyPending(hp.host))) return { gfid, path };
        } catch { /* unreadable entry or the path is gone */ }
        this.known.delete(gfid);
        await unlink(file).catch(() => undefined);
        return undefined;
      });
      if (entry) out.push(entry);
    }
    return out;
  }
}
