// The heal index of a brick (GlusterFS's features/index): .gfs/indices/xattrop/<gfid> exists
// while any replicate counter (trusted.gfs.afr.*) of that inode is non-zero: an xattrop that
// leaves a counter non-zero makes sure of the entry. One that brings the counters it changed back
// to zero queues the entry this brick wrote for removal; every SETTLE_MS the queued entries whose
// inodes have no counter left go, in one io-thread job (an untar leaves no index of thousands of
// entries for the self-heal daemon's next listing to read one by one, and a post-op waits for no
// removal). Entries of inodes not known here (written before a restart) go when listed.
// Each entry names the inode's volume path as of its last xattrop, in an xattr (an entry's data
// block would be allocated and freed with it). A finished entry is not removed but retired to
// .gfs/indices/spare/, and the next entry due is a spare renamed into place: GlusterFS's index links
// its entries to one base file for the same reason. An untar marks and clears every file it writes,
// and on ext4 each new inode costs more while many were freed recently (without a journal, the
// allocator skips inodes freed in the last 30 s, reading each one's table block): measured, an
// untar of 5,000 files on replicate 2 took 13.8-16.5 s of CPU per brick with entries recycled,
// 19.2-25.3 s without (four runs each).
// Paths rather than gfid handles:
// the brick keeps no gfid -> path map, and every changelog update refreshes the path, so an entry
// is only stale when its inode was renamed or removed with no changelog update since; such entries
// are dropped when listed (the parent directory's own entry, pending for the same operation, heals
// the rename). The price: an inode renamed while pending on a brick is found again by an access,
// by the parent's entry heal or by `heal full`, not by this index alone.
import { mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import { LRUCache } from 'lru-cache';
import { gfidFromBytes, isGfid } from '../common/gfid.js';
import { PRIVATE_DIR, type Confiner } from './confine.js';
import { readGfid } from './iatt.js';
import { ENTRY_PATH_XATTR, type EntryRetire, type EntryWrite, type IndexWrite } from './io-threads.js';
import { KeyedMutex } from './mutex.js';
import { xget, xlist } from './xattr.js';

export const AFR_PREFIX = 'trusted.gfs.afr.';
export const INDEX_XATTR = 'trusted.gfs.index.xattrop';
const INDEX_DIR = `${PRIVATE_DIR}/indices/xattrop`;
const SPARE_DIR = `${PRIVATE_DIR}/indices/spare`;

export interface IndexEntry { gfid: string; path: string }

/** How long finished entries wait to be retired together. */
const SETTLE_MS = 1000;
/** Retired entries kept for reuse (more are removed): enough for the inodes one busy second leaves
 *  pending. */
const SPARES_MAX = 4096;

/** The volume path an entry names (an entry written before they held it in an xattr: its JSON). */
async function entryPath(file: string): Promise<string> {
  const v = await xget(file, ENTRY_PATH_XATTR);
  return v ? v.toString() : (JSON.parse(await readFile(file, 'utf8')) as { path: string }).path;
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
  private readonly spareDir: string;
  /** Names of the retired entries in spareDir, none taken yet (read there when the index starts). */
  private readonly spares = new Set<string>();
  private readonly mutex = new KeyedMutex();
  /** host path -> volume path of inodes whose entry is known to exist, to skip rewriting it on
   *  every xattrop; emptied whenever a listing removes entries. */
  private readonly known = new LRUCache<string, { path: string; gfid: string }>({ max: 100_000 });
  private made?: Promise<void>;

  /** Inodes whose counters went back to zero, by host path, for the next removal round. */
  private settling = new Map<string, { path: string; gfid: string }>();
  /** Those of the round in progress. */
  private readonly checking = new Map<string, { path: string; gfid: string }>();
  private settleTimer?: NodeJS.Timeout;
  /** The last removal round started. */
  private round: Promise<void> = Promise.resolve();

  /** writeEntry puts an entry in place; retireEntries retires (or removes) those entries whose
   *  host still has the entry's gfid and no counter left, and answers which it retired (the
   *  brick's io-threads: one job each, not several pool trips). */
  constructor(
    root: string,
    private readonly confiner: Confiner,
    private readonly writeEntry: (e: EntryWrite) => Promise<void>,
    private readonly retireEntries: (entries: EntryRetire[]) => Promise<boolean[]>,
  ) {
    this.dir = `${root}/${INDEX_DIR}`;
    this.spareDir = `${root}/${SPARE_DIR}`;
  }

  /** True when host (volume path `path`) is known to have its entry. */
  knows(host: string, path: string): boolean {
    return this.known.get(host)?.path === path;
  }

  /** After an xattrop that left every replicate counter it changed on host (volume path `path`)
   *  at zero: the inode's entry goes in the next round, unless a counter of it is non-zero then.
   *  `gfidXattr`: its gfid as the xattrop read it, for an inode not known here (forgotten by a
   *  rename or rmdir anywhere since its entry was written). */
  settled(host: string, path: string, gfidXattr?: Buffer): void {
    // One being checked in the round now may stay (still pending then): it comes again.
    const k = this.known.get(host) ?? this.checking.get(host) ?? (gfidXattr?.length === 16 ? { path, gfid: gfidFromBytes(gfidXattr) } : undefined);
    if (!k) return;
    this.settling.set(host, k);
    this.settleTimer ??= setTimeout(() => void this.settle(), SETTLE_MS);
    this.settleTimer.unref?.();
  }

  /** One removal round, after the one in progress (rounds never overlap: one started while
   *  another checks an inode would find it forgotten and drop it). Each entry is forgotten
   *  before its check, under its mutex (held until the job is done): a pre-op that lands
   *  meanwhile either shows in the check (the entry stays, as known) or finds the entry unknown
   *  and writes it again after. The job checks that host still has the entry's gfid. */
  settle(): Promise<void> {
    clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
    this.round = this.round.then(() => this.settleRound());
    return this.round;
  }

  private async settleRound(): Promise<void> {
    const batch = [...this.settling];
    this.settling = new Map();
    if (batch.length === 0) return;
    await this.mutex.runAll(batch.map(([, k]) => k.gfid), async () => {
      // The entry as known now (an update may have written it again), or as settled when not
      // known at all; one known with another gfid is the listing's to judge.
      const now = batch.flatMap(([host, k]) => {
        const cur = this.known.get(host);
        if (cur && cur.gfid !== k.gfid) return [];
        return [{ host, k: cur ?? k, wasKnown: cur !== undefined }];
      });
      for (const { host, k } of now) { this.known.delete(host); this.checking.set(host, k); }
      try {
        // Each retired under its own gfid's name (unique among entries); past SPARES_MAX, removed.
        let room = SPARES_MAX - this.spares.size;
        const spare = now.map(({ k }) => (!this.spares.has(k.gfid) && room-- > 0 ? k.gfid : undefined));
        const removed = await this.retireEntries(now.map(({ host, k }, i) => [host, `${this.dir}/${k.gfid}`, spare[i] && `${this.spareDir}/${spare[i]}`])).catch(() => now.map(() => false));
        removed.forEach((gone, i) => { if (gone && spare[i]) this.spares.add(spare[i]); });
        // Kept (still pending): known again only if it was, since only then is the entry sure.
        now.forEach(({ host, k, wasKnown }, i) => { if (!removed[i] && wasKnown && !this.known.has(host)) this.known.set(host, k); });
      } finally {
        for (const { host } of now) this.checking.delete(host);
      }
    }).catch(() => undefined);
  }

  /** Stops the removal rounds (the brick is closing); what is left goes when listed. */
  close(): void {
    clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
    this.settling.clear();
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
      await this.makeDir();
      await this.writeEntry({ file: `${this.dir}/${gfid}`, path, spare: this.takeSpare() });
      this.known.set(host, { path, gfid });
    });
  }

  /** Runs an xattrop of an inode not known here (claimed gfid `gfid`) that may leave a replicate
   *  counter non-zero, handing it the entry to write in its own job when due: one io-thread trip
   *  where the xattrop and then update() take two. Under the entry's mutex, as update()'s write
   *  and the removal rounds are. */
  async marking<T extends { wrote?: boolean }>(host: string, path: string, gfid: string, run: (entry: IndexWrite) => Promise<T>): Promise<T> {
    return this.mutex.run(gfid, async () => {
      await this.makeDir();
      const spare = this.takeSpare();
      const r = await run({ file: `${this.dir}/${gfid}`, path, spare, gfid, prefix: AFR_PREFIX });
      if (r.wrote) this.known.set(host, { path, gfid });
      else if (spare) this.spares.add(basename(spare)); // not due after all: still a spare
      return r;
    });
  }

  /** A spare to rename into place, no longer offered to others (undefined: none left). */
  private takeSpare(): string | undefined {
    for (const name of this.spares) {
      this.spares.delete(name);
      return `${this.spareDir}/${name}`;
    }
    return undefined;
  }

  /** The directories, and the spares a previous run of the brick left (once). */
  private makeDir(): Promise<void> {
    this.made ??= (async () => {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await mkdir(this.spareDir, { recursive: true, mode: 0o700 });
      for (const name of await readdir(this.spareDir)) if (isGfid(name)) this.spares.add(name);
    })().catch((e: unknown) => { this.made = undefined; throw e; });
    return this.made;
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
          const path = await entryPath(file);
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
