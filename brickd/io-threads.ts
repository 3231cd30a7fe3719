// The brick's io-threads (GlusterFS's io-threads): worker threads that run the hottest multi-call
// operations with synchronous calls there, each one message each way. On the event loop each of
// those small calls (an lstat, one xattr) is its own trip to libuv's pool, and on a small VM the
// thread wake-ups of such a trip cost ten times the syscall. The work: xattrop's counter
// arithmetic (read, add, write back, per name; the caller holds the xattr mutex of every name, so a
// worker never races another writer), with the inode's heal-index entry when a pre-op makes it
// due (the caller holds that entry's mutex); setattr's owner, mode and times; the attributes, gfid and
// asked-for xattrs of all entries of a directory (readdirp). A job costs more than one pool trip
// (a lookup's few reads at once stay on the event loop), less than a chain of them. A worker runs
// one job at a time; an entry without a gfid comes back without attributes and is finished on the
// event loop (which assigns gfids); a heal-index entry put in place (one job where the pool takes
// three trips), and a round of them retired once their counters are zero. No fd outlives its job
// (Node closes a worker's own at its exit). The worker is this same module.
import { chmodSync, closeSync, lchownSync, lstatSync, openSync, readdirSync, renameSync, unlinkSync } from 'node:fs';
import { basename } from 'node:path';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { FsError, isErrno, toErrno } from '../common/errors.js';
import { gfidFromBytes } from '../common/gfid.js';
import type { Iatt } from '../common/types.js';
import { GFID_XATTR, statToIatt } from './iatt.js';
import { sys, type TimeSpec } from './syscalls.js';
import { xgetSync, xlistSync, xsetSync } from './xattr.js';

export interface CounterAdd { name: string; add: Buffer }
/** `wrote`: the job wrote the heal-index entry it was given. */
export interface AddResult { outs: Buffer[]; gfid?: Buffer; wrote?: boolean }
/** A heal-index entry to put in place: `file` holding the inode's volume `path` (in an xattr:
 *  no data block), made by renaming `spare` (a retired entry: no inode allocated) where given. */
export interface EntryWrite { file: string; path: string; spare?: string }
/** The entry an xattrop job writes when a counter named with `prefix` is left non-zero and the
 *  inode's gfid is `gfid` (the entry's name). */
export interface IndexWrite extends EntryWrite { gfid: string; prefix: string }
/** An entry to retire unless still pending: [its inode's host path, the entry, where it goes as
 *  a spare (none: removed)]. */
export type EntryRetire = [host: string, file: string, spare?: string];
/** The xattr of an index entry that names its inode's volume path. */
export const ENTRY_PATH_XATTR = 'trusted.gfs.index.path';
/** An entry as a worker read it: iatt undefined when it has no gfid yet. */
export interface EntryRead { name: string; iatt?: Iatt; xattrs: Record<string, Buffer> }
/** A setattr without a size (a truncate stays on the event loop). */
export interface AttrChange { uid?: number; gid?: number; mode?: number; atime?: TimeSpec; mtime?: TimeSpec }

type Bytes = Uint8Array;
const asBuffer = (u: Bytes) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
/** A copy of exactly the bytes (a Buffer may view a larger pool, which a message would copy whole). */
const ownBytes = (b: Buffer) => new Uint8Array(b);

/** xattrop: host (volume path `path`) must exist (ENOENT otherwise); each name gets add added, as
 *  int32s. */
function addCountersSync(host: string, path: string, adds: readonly CounterAdd[]): Buffer[] {
  lstatSync(host); // a missing file's xattrs read as absent: name it
  return adds.map(({ name, add }) => {
    const cur = xgetSync(host, name) ?? Buffer.alloc(add.length);
    if (cur.length !== add.length) throw new FsError('EINVAL', `xattr ${name} of '${path}' holds ${cur.length} bytes, the addend ${add.length}`);
    const out = Buffer.alloc(add.length);
    for (let i = 0; i < add.length; i += 4) out.writeInt32BE((cur.readInt32BE(i) + add.readInt32BE(i)) | 0, i);
    xsetSync(host, name, out);
    return out;
  });
}

/** The gfid of host (a missing host or one without: null). */
function gfidSync(host: string): string | null {
  try {
    const g = xgetSync(host, GFID_XATTR);
    return g && g.length === 16 ? gfidFromBytes(g) : null;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw err;
  }
}

/** Whether any xattr of host named with prefix holds a non-zero byte (a missing host: none). */
function pendingSync(host: string, prefix: string): boolean {
  let names: string[];
  try {
    names = xlistSync(host);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return false;
    throw err;
  }
  return names.some((n) => n.startsWith(prefix) && (xgetSync(host, n)?.some((byte) => byte !== 0) ?? false));
}

/** The asked-for xattrs of host that exist; for three names or more one listxattr decides which
 *  to read (most asked-for names of a listing, security.* and ACLs, are absent on most entries). */
function namedSync(host: string, names: readonly string[]): Record<string, Bytes> {
  const out: Record<string, Bytes> = {};
  if (!names.length) return out;
  const have = names.length >= 3 ? new Set(xlistSync(host)) : undefined;
  for (const n of names) {
    if (have && !have.has(n)) continue;
    const v = xgetSync(host, n);
    if (v) out[n] = ownBytes(v);
  }
  return out;
}

/** Puts e in place: the spare renamed to it (a spare gone meanwhile: a new file), then its path. */
function writeEntrySync(e: EntryWrite): void {
  let renamed = false;
  if (e.spare) {
    try {
      renameSync(e.spare, e.file);
      renamed = true;
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    }
  }
  if (!renamed) closeSync(openSync(e.file, 'a', 0o600));
  xsetSync(e.file, ENTRY_PATH_XATTR, Buffer.from(e.path));
}

function entrySync(host: string, names: readonly string[]): { iatt?: Iatt; xattrs: Record<string, Bytes> } {
  const st = lstatSync(host, { bigint: true });
  const gfid = gfidSync(host);
  return { iatt: gfid ? statToIatt(st, gfid) : undefined, xattrs: namedSync(host, names) };
}

/** The owner first (a chown clears set-id bits, and a mode given with it is the one wanted after),
 *  then the mode (never of a symlink: chmod would follow it), then the times (to the nanosecond; a
 *  time not asked for stays exactly as it was). */
function setattrSync(host: string, path: string, a: AttrChange): Iatt | undefined {
  if (a.uid !== undefined || a.gid !== undefined) lchownSync(host, a.uid ?? -1, a.gid ?? -1);
  if (a.mode !== undefined) {
    if (lstatSync(host).isSymbolicLink()) throw new FsError('EOPNOTSUPP', `cannot change the mode of symlink '${path}'`);
    chmodSync(host, a.mode & 0o7777);
  }
  if (a.atime !== undefined || a.mtime !== undefined) {
    if (!sys) throw new FsError('ENOSYS', 'no libc bindings in this thread');
    sys.utimensatSync(host, a.atime ?? 'omit', a.mtime ?? 'omit');
  }
  return entrySync(host, []).iatt;
}

const WORK = {
  setattr: (a: { host: string; path: string; change: AttrChange }) => setattrSync(a.host, a.path, a.change),
  xattrop: (a: { host: string; path: string; adds: { name: string; add: Bytes }[]; gfid: boolean; entry?: IndexWrite }) => {
    const outs = addCountersSync(a.host, a.path, a.adds.map((x) => ({ name: x.name, add: asBuffer(x.add) })));
    const gfid = a.gfid || a.entry ? (xgetSync(a.host, GFID_XATTR) ?? undefined) : undefined;
    const e = a.entry;
    // The heal-index entry in the same job, for the inode the caller named (its mutex is held).
    const wrote = !!e && gfid?.length === 16 && gfidFromBytes(gfid) === e.gfid
      && outs.some((out, k) => a.adds[k].name.startsWith(e.prefix) && out.some((byte) => byte !== 0));
    if (wrote) writeEntrySync(e);
    return { outs: outs.map(ownBytes), gfid: gfid && ownBytes(gfid), wrote };
  },
  writeEntry: (e: EntryWrite) => writeEntrySync(e),
  unindex: (a: { entries: EntryRetire[]; prefix: string }) => a.entries.map(([host, file, spare]) => {
    if (gfidSync(host) !== basename(file) || pendingSync(host, a.prefix)) return false;
    try {
      if (spare) renameSync(file, spare);
      else unlinkSync(file);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
    }
    return true;
  }),
  list: (a: { host: string; path: string; names: string[]; skip?: string }) => {
    if (!lstatSync(a.host).isDirectory()) throw new FsError('ENOTDIR', `'${a.path}' is not a directory`);
    const out: { name: string; iatt?: Iatt; xattrs: Record<string, Bytes> }[] = [];
    for (const name of readdirSync(a.host)) {
      if (name === a.skip) continue;
      try {
        out.push({ name, ...entrySync(`${a.host}/${name}`, a.names) });
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT') throw err; // removed meanwhile: left out
      }
    }
    return out;
  },
};
type Kind = keyof typeof WORK;
interface Job { id: number; kind: Kind; args: unknown }
type Answer = { id: number; res: unknown } | { id: number; errno: string; message: string };

if (!isMainThread && parentPort) {
  const port = parentPort;
  port.on('message', (job: Job) => {
    let answer: Answer;
    try {
      answer = { id: job.id, res: (WORK[job.kind] as (a: unknown) => unknown)(job.args) };
    } catch (err) {
      answer = { id: job.id, errno: toErrno(err), message: (err as Error)?.message ?? String(err) };
    }
    port.postMessage(answer);
  });
}

/** Workers: a second one keeps a slow disk read (a cold inode, a long directory) from holding every
 *  other job behind it. */
const THREADS = 2;

interface Slot { worker: Worker; pending: Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }> }

const fromWire = (x: Record<string, Bytes>) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, asBuffer(v)]));

/** The event loop's side: THREADS lazily started workers (a job goes to the least busy one), each
 *  restarted after a failure. */
export class IoThreads {
  private readonly slots: (Slot | undefined)[] = Array.from({ length: THREADS }, () => undefined);
  private seq = 0;
  private closed = false;

  /** The counters after the adds; with `gfid` or `entry`, the inode's gfid xattr too (for the heal
   *  index); with `entry`, that entry written where it is due. */
  async xattrop(host: string, path: string, adds: readonly CounterAdd[], gfid = false, entry?: IndexWrite): Promise<AddResult> {
    // The addends as copies of their own: a decoded request's bytes view the whole buffer they
    // arrived in, and a message clones a view's entire ArrayBuffer (measured: 47-97 us a job for
    // a view into 256 KiB, 5-6 us for 12 bytes of its own).
    const own = adds.map((a) => ({ name: a.name, add: ownBytes(a.add) }));
    const r = (await this.run('xattrop', { host, path, adds: own, gfid, entry })) as { outs: Bytes[]; gfid?: Bytes; wrote: boolean };
    return { outs: r.outs.map(asBuffer), gfid: r.gfid ? asBuffer(r.gfid) : undefined, wrote: r.wrote };
  }

  /** Owner, mode and times of host (volume path `path`) changed; its attributes after (undefined:
   *  it has no gfid yet). Only where the event loop has the libc bindings too (`sys`). */
  async setattr(host: string, path: string, change: AttrChange): Promise<Iatt | undefined> {
    return (await this.run('setattr', { host, path, change })) as Iatt | undefined;
  }

  /** Retires each index entry (to its spare name, else removed) unless its host's gfid is not the
   *  entry's name or some xattr of host named with prefix is still non-zero; true for those gone. */
  async unindex(entries: EntryRetire[], prefix: string): Promise<boolean[]> {
    return (await this.run('unindex', { entries, prefix })) as boolean[];
  }

  /** A heal-index entry put in place (see EntryWrite). */
  async writeEntry(e: EntryWrite): Promise<void> {
    await this.run('writeEntry', e);
  }

  /** Every entry of directory host (volume path `path`) but `skip`: attributes, gfid, the asked-for
   *  xattrs that exist. */
  async list(host: string, path: string, names: readonly string[], skip?: string): Promise<EntryRead[]> {
    const r = (await this.run('list', { host, path, names, skip })) as { name: string; iatt?: Iatt; xattrs: Record<string, Bytes> }[];
    return r.map((e) => ({ name: e.name, iatt: e.iatt, xattrs: fromWire(e.xattrs) }));
  }

  private run(kind: Kind, args: unknown): Promise<unknown> {
    if (this.closed) return Promise.reject(new FsError('EIO', 'brick io-threads closed'));
    let k = 0;
    for (let i = 1; i < THREADS; i++) if ((this.slots[i]?.pending.size ?? 0) < (this.slots[k]?.pending.size ?? 0)) k = i;
    const slot = this.slots[k] ?? this.start(k);
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, kind, args } satisfies Job);
    });
  }

  private start(k: number): Slot {
    const slot: Slot = { worker: new Worker(new URL(import.meta.url)), pending: new Map() };
    const w = slot.worker;
    w.unref(); // never what keeps the daemon alive
    w.on('message', (a: Answer) => {
      const p = slot.pending.get(a.id);
      if (!p) return;
      slot.pending.delete(a.id);
      if ('res' in a) p.resolve(a.res);
      else p.reject(new FsError(isErrno(a.errno) ? a.errno : 'EIO', a.message));
    });
    const gone = (why: string) => {
      if (this.slots[k] === slot) this.slots[k] = undefined;
      for (const p of slot.pending.values()) p.reject(new FsError('EIO', `brick io-thread ${why}`));
      slot.pending.clear();
    };
    w.on('error', (e) => gone(`failed: ${e.message}`));
    w.on('exit', (code) => gone(`exited with code ${code}`));
    this.slots[k] = slot;
    return slot;
  }

  async close(): Promise<void> {
    this.closed = true;
    const live = this.slots.filter((s): s is Slot => s !== undefined);
    this.slots.fill(undefined);
    for (const s of live) {
      for (const p of s.pending.values()) p.reject(new FsError('EIO', 'brick io-threads closed'));
      s.pending.clear();
    }
    await Promise.all(live.map((s) => s.worker.terminate()));
  }
}
