// features/upcall: cache invalidation. Each session's metadata reads (lookup, stat, listings, the
// attributes an operation answers) note its interest in the path, and in the inode too when it has
// several names; a change through one session is told to every other session interested in what
// it touched within INTEREST_MS, as GlusterFS's upcall xlator does with
// features.cache-invalidation. A session told of a path is dropped from its interest until it
// reads it again, so a stream of writes costs one message per reader's look, not one per write.
import { LRUCache } from 'lru-cache';
import { dirname, isDir, joinPath } from '../common/types.js';

/** How long a read keeps its session interested: the longest a client may cache metadata
 *  (performance.md-cache-timeout's maximum). */
export const INTEREST_MS = 600_000;
/** Paths and inodes tracked at most; the least recently read go first (their readers then
 *  hear of no change: clients must not cache longer than this brick remembers). */
const MAX_KEYS = 1_000_000;

export interface UpcallEntry { path: string; gfid?: string; entry?: boolean; tree?: boolean; data?: boolean }

type Wire = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Send = (entries: UpcallEntry[]) => void;
type FdInfo = (fd: number) => { path: string; gfid: string } | undefined;

const inodeKey = (gfid: string) => `#${gfid}`;
/** An inode's own key is worth keeping only when another name may change it. */
const linked = (iatt: Wire | undefined) => iatt && iatt.nlink > 1 && !isDir(Number(iatt.mode));

export class Upcall {
  private readonly sessions = new Map<number, Send>();
  /** Path or #gfid -> session -> when it last read it. */
  private readonly interest = new LRUCache<string, Map<number, number>>({ max: MAX_KEYS });
  private next = 1;

  open(send: Send): number {
    const id = this.next++;
    this.sessions.set(id, send);
    return id;
  }

  close(id: number): void {
    this.sessions.delete(id);
  }

  private note(sid: number, key: string, now: number): void {
    let m = this.interest.get(key);
    if (!m) this.interest.set(key, (m = new Map()));
    m.set(sid, now);
  }

  private noteIatt(sid: number, path: string, iatt: Wire | undefined, now: number): void {
    this.note(sid, path, now);
    if (linked(iatt)) this.note(sid, inodeKey(String(iatt!.gfid)), now);
  }

  /**
   * As operation `field` of session `sid` arrives: notes what its answer will leave cached there.
   * Noted before it runs, so a change that ends while it runs is told (the client then does not
   * cache an answer that started before the news).
   */
  before(sid: number, field: string, req: Wire, fdInfo: FdInfo): void {
    if (!this.sessions.has(sid)) return;
    const now = Date.now();
    const path = String(req?.loc?.path ?? '');
    switch (field) {
      case 'lookup': case 'stat': case 'open': case 'getxattr': case 'listxattr': case 'readlink':
      case 'readdirp': case 'setattr': case 'truncate':
        this.note(sid, path, now);
        return;
      case 'create': case 'mkdir': case 'symlink': case 'mknod':
        this.note(sid, path, now);
        this.note(sid, dirname(path), now);
        return;
      case 'unlink': case 'rmdir':
        this.note(sid, dirname(path), now);
        return;
      case 'link': case 'rename': {
        const to = String(req?.to?.path ?? '');
        this.note(sid, to, now);
        this.note(sid, dirname(to), now);
        this.note(sid, dirname(String(req?.from?.path ?? '')), now);
        return;
      }
      case 'fstat': {
        const f = fdInfo(Number(req?.fd));
        if (f) this.note(sid, f.path, now);
      }
    }
  }

  /**
   * After operation `field` of session `sid` worked (res: its answer): notes the names a listing
   * returned and the inodes with several names, and tells the other sessions what it changed.
   */
  after(sid: number, field: string, req: Wire, res: Wire, fdInfo: FdInfo): void {
    if (!this.sessions.has(sid)) return;
    const now = Date.now();
    const path = String(req?.loc?.path ?? '');
    const gfid = String(req?.loc?.gfid ?? '') || undefined;
    if (linked(res?.iatt)) this.note(sid, inodeKey(String(res.iatt.gfid)), now);
    switch (field) {
      case 'readdirp':
        for (const e of (res?.entries ?? []) as Wire[]) this.noteIatt(sid, joinPath(path, String(e.name)), e.iatt, now);
        return;
      case 'create': case 'mkdir': case 'symlink': case 'mknod':
        this.tell(sid, [{ path, entry: true }], now);
        return;
      case 'unlink':
        this.tell(sid, [{ path, gfid, entry: true }], now);
        return;
      case 'rmdir':
        this.tell(sid, [{ path, gfid, entry: true, tree: true }], now);
        return;
      case 'link':
        this.tell(sid, [{ path: String(req?.to?.path ?? ''), entry: true }, { path: String(req?.from?.path ?? ''), gfid: res?.iatt?.gfid }], now);
        return;
      case 'rename':
        // What moved may be a directory: below both names, every other session's cache goes.
        this.tell(sid, [
          { path: String(req?.from?.path ?? ''), gfid, entry: true, tree: true },
          { path: String(req?.to?.path ?? ''), entry: true, tree: true },
        ], now);
        return;
      case 'setattr': case 'truncate':
        this.tell(sid, [{ path, gfid: gfid ?? res?.iatt?.gfid, data: field === 'truncate' || undefined }], now);
        return;
      case 'setxattr': case 'removexattr':
        // The changelog's own keys (trusted.*) are not what a client caches.
        if (!String(req?.name ?? '').startsWith('trusted.')) this.tell(sid, [{ path, gfid }], now);
        return;
      case 'write': case 'ftruncate': case 'fallocate': {
        const f = fdInfo(Number(req?.fd));
        if (f) this.tell(sid, [{ path: f.path, gfid: f.gfid, data: true }], now);
      }
    }
  }

  /** Sends each other session interested (within INTEREST_MS) the entries that concern it. */
  private tell(from: number, changes: UpcallEntry[], now: number): void {
    if (this.sessions.size < 2) return;
    const out = new Map<number, UpcallEntry[]>();
    const add = (sid: number, c: UpcallEntry) => {
      const list = out.get(sid);
      if (!list) out.set(sid, [c]);
      else if (!list.includes(c)) list.push(c);
    };
    for (const c of changes) {
      if (c.tree) {
        for (const sid of this.sessions.keys()) if (sid !== from) add(sid, c);
        continue;
      }
      // A session that looked at the directory cached its names and maybe the entry from a
      // listing; a client told of a path drops what it knows of the path's directory too.
      const keys = [c.path, dirname(c.path)];
      if (c.gfid) keys.push(inodeKey(c.gfid));
      for (const k of keys) {
        const m = this.interest.get(k);
        if (!m) continue;
        for (const [sid, at] of m) {
          if (sid === from) continue;
          m.delete(sid);
          if (now - at < INTEREST_MS && this.sessions.has(sid)) add(sid, c);
        }
        if (m.size === 0) this.interest.delete(k);
      }
    }
    for (const [sid, entries] of out) this.sessions.get(sid)?.(entries);
  }
}
