// The state of one served brick: its root, path confinement, open fds, locks, the xattrop
// mutex, the io-threads and the upcall interest. The posix-* modules implement the operations on top of it.
import type { Logger } from '../common/log.js';
import { Confiner, type HostPath } from './confine.js';
import { FdTable } from './fd-table.js';
import { AFR_PREFIX, HealIndex } from './heal-index.js';
import { LockTable } from './locks.js';
import { KeyedMutex } from './mutex.js';
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
    this.index = new HealIndex(config.realRoot, this.confiner, (file, data) => this.io.writeFile(file, data), (entries) => this.io.unindex(entries, AFR_PREFIX));
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
