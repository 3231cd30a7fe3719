// The attributes a brick's write answered with (its file's after the write, GlusterFS's postbuf),
// kept for the stat that follows: dbench, build tools and databases stat a file they write, md-cache
// drops its attributes at each write, and write-behind's stat waits for the writes anyway, so the
// stat needs no round trip of its own. Kept only while they are surely what the brick would
// answer: the last answer of the inode's writes once none is on its way (the brick fstats each
// write when it is done, so the last answer it sends saw every write before it), as long as no
// other request of this client that may change the inode went since the write was sent, no
// upcall told of another client's change, and for a second at most (md-cache's own timeout:
// another client's change found no sooner than a cached stat would find it).
import { LRUCache } from 'lru-cache';
import type { Iatt } from '../../../../common/types.js';

export class PostWriteAttrs {
  private readonly attrs = new LRUCache<string, Iatt>({ max: 4096, ttl: 1000 });
  /** Writes on their way by inode; `spoiled`: a request that may change it went meanwhile. */
  private readonly writing = new Map<string, { n: number; spoiled: boolean }>();

  /** A write of the inode is on its way. */
  sending(gfid: string): void {
    const w = this.writing.get(gfid);
    if (w) w.n++;
    else this.writing.set(gfid, { n: 1, spoiled: false });
  }

  /** The write's answer: the attributes after it (undefined: it failed, or the brick sends none). */
  answered(gfid: string, iatt?: Iatt): void {
    const w = this.writing.get(gfid);
    if (!w) return;
    if (iatt && iatt.gfid === gfid && !w.spoiled) this.attrs.set(gfid, iatt);
    else { this.attrs.delete(gfid); w.spoiled = true; }
    if (--w.n === 0) this.writing.delete(gfid);
  }

  /** A request that may change the inode goes (no gfid: it may change any inode). */
  touched(gfid?: string): void {
    if (!gfid) {
      this.attrs.clear();
      for (const w of this.writing.values()) w.spoiled = true;
      return;
    }
    this.attrs.delete(gfid);
    const w = this.writing.get(gfid);
    if (w) w.spoiled = true;
  }

  /** The inode's attributes as its last write left them, if still sure (a copy). */
  get(gfid: string): Iatt | undefined {
    if (this.writing.has(gfid)) return undefined;
    const a = this.attrs.get(gfid);
    return a && { ...a };
  }
}
