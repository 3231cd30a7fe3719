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
  /** POSIX ACLs (-o acl): system.posix_acl_* reach the bricks and the kernel checks them. */
  acl?: boolean;
  /** SELinux labels (-o selinux): security.selinux reaches the bricks. */
  selinux?: boolean;
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

const ACL_XATTRS = new Set(['system.posix_acl_access', 'system.posix_acl_default']);

/** Without -o acl / -o selinux a mount has no ACLs or labels, as GlusterFS's fuse-bridge: their
 *  xattrs are EOPNOTSUPP. That is also what lets `ls -l` ask once per mount instead of twice per file
 *  (coreutils stops asking a device that said "not supported"). */
export function unsupportedXattr(name: string, opts: { acl?: boolean; selinux?: boolean }): boolean {
  return (!opts.acl && ACL_XATTRS.has(name)) || (!opts.selinux && name === 'security.selinux');
}
