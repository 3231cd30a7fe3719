// The bridge between the kernel's FUSE requests and the top of the translator graph. The only place
// that knows a FUSE binding; everything below speaks Xlator.
import type { Xlator } from '../../common/fops.js';
import type { Logger } from '../../common/log.js';

export interface BridgeOptions {
  mountpoint: string;
  /** Shown as the mount's source in df and /proc/mounts, e.g. 127.0.0.1:volume1. */
  fsname: string;
  readOnly: boolean;
  log: Logger;
  /** Kernel bridge only: let the kernel cache writes (-o writeback-cache). */
  writebackCache?: boolean;
  /** Seconds the kernel may cache attributes and names (-o attribute-timeout=, entry-timeout=). */
  attrTimeout?: number;
  entryTimeout?: number;
}

export interface Bridge {
  mount(): Promise<void>;
  unmount(): Promise<void>;
  /** Resolves when the kernel side is gone (umount, fusermount -u). */
  readonly closed: Promise<void>;
}

export type BridgeFactory = (top: Xlator, opts: BridgeOptions) => Bridge;

/** Names clients never see or set: the bricks' own bookkeeping. */
export const INTERNAL_XATTR_PREFIX = 'trusted.gfs.';
