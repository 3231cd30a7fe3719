// The state of one served brick: its root, path confinement, open fds, locks, the xattrop
// mutex, the io-threads and the upcall interest. The posix-* modules implement the operations on top of it.
import { LRUCache } from 'lru-cache';
import type { Logger } from '../common/log.js';
import { Confiner, type HostPath } from './confine.js';
import { FdTable } from './fd-table.js';
import { AFR_PREFIX, HealIndex } from './heal-index.js';
import { LockTable } from './locks.js';
import { KeyedMutex } from './mutex.js';
import { ensureGfid } from './iatt.js';
import { IoThreads } from './io-threads.js';
import { Upcall } from './upcall.js';

export interface BrickConfig {
  /** The brick directory as given on the command line. */
  brickPath: string;
  /** Its realpath. */
  realRoot: string;
  volume: string;
  volumeId: string;
  log: Logger;
}

export class Brick {
  readonly confiner: Confiner;
  readonly fds = new FdTable();
  readonly locks = new LockTable();
  readonly xattrMutex = new KeyedMutex();
  /** Worker threads for xattrop, setattr, readdirp and heal-index entries. */
  readonly io = new IoThreads();
  /** The replicate heal index under .gfs/indices/xattrop/. */
  readonly index: HealIndex;
  /** The sessions to tell of changes to what they looked at (cache invalidation). */
  readonly upcall = new Upcall();

  constructor(readonly config: BrickConfig) {
    this.confiner = new Confiner(config.realRoot);
    this.index = new HealIndex(config.realRoot, this.confiner, (e) => this.io.writeEntry(e), (entries) => this.io.unindex(entries, AFR_PREFIX));
  }

  /** The gfid each host path named when this daemon last read or made it, for inode locks (a
   *  transaction's lock and unlock would each cost a trip to the thread pool): only this daemon
   *  changes the brick's namespace, and namespaceChanged drops what a change could make stale. */
  private readonly gfids = new LRUCache<string, string>({ max: 50_000 });
  /** Counts namespace changes: a gfid read across one is not kept. */
  private nsGen = 0;

  /** The gfid of host (assigned when it has none, as ensureGfid). */
  async gfidOf(host: string, isRoot = false): Promise<string> {
    const hit = this.gfids.get(host);
    if (hit) return hit;
    const gen = this.nsGen;
    const gfid = await ensureGfid(host, isRoot);
    if (gen === this.nsGen) this.gfids.set(host, gfid);
    return gfid;
  }

  /** The namespace generation now, for made(). */
  get generation(): number {
    return this.nsGen;
  }

  /** This daemon made host with gfid; `since`: the generation before it began. */
  made(host: string, gfid: string, since: number): void {
    if (since === this.nsGen) this.gfids.set(host, gfid);
  }

  /** A name went (unlink: only host) or every path may name another inode now (rmdir, rename):
   *  the caches keyed by host path drop what could be stale. */
  namespaceChanged(kind: 'unlink' | 'rmdir' | 'rename', host?: string): void {
    this.nsGen++;
    this.confiner.namespaceChanged(kind);
    if (kind === 'unlink' && host) {
      this.gfids.delete(host);
      this.index.forget(host);
    } else {
      this.gfids.clear();
      this.index.forget();
    }
  }

  get log(): Logger {
    return this.config.log;
  }

  resolve(path: string): Promise<HostPath> {
    return this.confiner.resolve(path);
  }

  async close(): Promise<void> {
    this.locks.abortAll();
    this.index.close();
    await this.fds.closeAll();
    await this.io.close();
  }
}
