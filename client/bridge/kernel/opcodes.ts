// The opcode table: one row (name, handler; the handler decodes its own body) per request type,
// assembled from the rows of each concern, as go-fuse's opcode.go. An opcode without a row is
// answered ENOSYS by the session, the only place that does.
import {
  FUSE_KERNEL_MINOR, FUSE_KERNEL_VERSION, INIT, OP, initOut,
} from './abi.js';
import { ATTR_OPS } from './ops-attr.js';
import { DIR_OPS } from './ops-dir.js';
import { ENTRY_OPS } from './ops-entry.js';
import { FILE_OPS } from './ops-file.js';
import { NO_REPLY, type OpDef, type Reply, type Request, type Session } from './session.js';

export const MAX_WRITE = 1024 * 1024;
export const PAGE_SIZE = 4096;
/** A request buffer holds the largest WRITE plus its headers, or a 64 KiB xattr with its name. */
export const REQUEST_BUFFER = MAX_WRITE + 128 * 1024;

const WANTED = INIT.ASYNC_READ | INIT.POSIX_LOCKS | INIT.ATOMIC_O_TRUNC | INIT.BIG_WRITES | INIT.FLOCK_LOCKS
  | INIT.AUTO_INVAL_DATA | INIT.DO_READDIRPLUS | INIT.READDIRPLUS_AUTO | INIT.ASYNC_DIO | INIT.PARALLEL_DIROPS
  | INIT.MAX_PAGES | INIT.HANDLE_KILLPRIV_V2;

async function init(s: Session, req: Request) {
  const major = req.body.u32();
  const minor = req.body.u32();
  const maxReadahead = req.body.u32();
  const flags = req.body.u32();
  if (major !== FUSE_KERNEL_VERSION) {
    s.log.error({ major, minor }, 'kernel speaks another FUSE major version');
    if (major > FUSE_KERNEL_VERSION) return initOut({ minor: FUSE_KERNEL_MINOR, maxReadahead: 0, flags: 0, maxBackground: 0, congestionThreshold: 0, maxWrite: 0, timeGran: 0, maxPages: 0 }).subarray(0, 8);
    throw new Error(`FUSE major ${major} is too old`);
  }
  // -o acl: the kernel checks ACLs itself (it reads them with GETXATTR and caches them).
  const want = WANTED | (s.opts.writebackCache ? INIT.WRITEBACK_CACHE : 0) | (s.opts.acl ? INIT.POSIX_ACL : 0);
  const granted = (flags & want) >>> 0;
  const out = {
    minor: Math.min(minor, FUSE_KERNEL_MINOR), maxReadahead: Math.max(maxReadahead, MAX_WRITE), flags: granted,
    maxBackground: 64, congestionThreshold: 48, maxWrite: MAX_WRITE, timeGran: 1, maxPages: MAX_WRITE / PAGE_SIZE,
  };
  s.initDone = true;
  s.log.info({ kernel: `${major}.${minor}`, minor: out.minor, flags: granted.toString(16), maxWrite: out.maxWrite, maxPages: out.maxPages, maxReadahead }, 'FUSE INIT');
  s.onInit?.();
  return initOut(out);
}

async function destroy() {
  // The kernel is done with the file system (fuseblk only); the device closes right after.
}

async function interrupt(s: Session, req: Request): Promise<Reply> {
  s.interrupt(req.body.u64());
  return NO_REPLY;
}

export const OPCODES: ReadonlyMap<number, OpDef> = new Map<number, OpDef>([
  [OP.INIT, { name: 'INIT', handler: init }],
  [OP.DESTROY, { name: 'DESTROY', handler: destroy }],
  [OP.INTERRUPT, { name: 'INTERRUPT', handler: interrupt }],
  ...ENTRY_OPS,
  ...ATTR_OPS,
  ...FILE_OPS,
  ...DIR_OPS,
]);
