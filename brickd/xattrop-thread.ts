// The counter arithmetic of xattrop (read, add, write back, per name) on one worker thread, with
// synchronous calls there: GlusterFS's io-threads for the hottest brick operation. On the event
// loop each of those small calls is a trip to libuv's pool, and on a small VM the thread wake-ups
// of such a trip cost ten times the syscall; here one xattrop is one message each way. The
// caller holds the xattr mutex of every name, so this thread never races another writer; it runs
// one job at a time. Only the event loop's side lives in the brick; the worker is this same module.
import { lstatSync } from 'node:fs';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { FsError, isErrno, toErrno } from '../common/errors.js';
import { GFID_XATTR } from './iatt.js';
import { xgetSync, xsetSync } from './xattr.js';

export interface CounterAdd { name: string; add: Buffer }
export interface AddResult { outs: Buffer[]; gfid?: Buffer }

interface Job { id: number; host: string; path: string; adds: readonly { name: string; add: Uint8Array }[]; gfid: boolean }
type Answer = { id: number; outs: Uint8Array[]; gfid?: Uint8Array | null } | { id: number; errno: string; message: string };

const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** The work itself: host (volume path `path`) must exist (ENOENT otherwise); each name gets add
 *  added, as int32s. */
export function addCountersSync(host: string, path: string, adds: readonly CounterAdd[]): Buffer[] {
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

if (!isMainThread && parentPort) {
  const port = parentPort;
  port.on('message', (job: Job) => {
    let answer: Answer;
    try {
      const outs = addCountersSync(job.host, job.path, job.adds.map((a) => ({ name: a.name, add: asBuffer(a.add) })));
      answer = { id: job.id, outs, gfid: job.gfid ? xgetSync(job.host, GFID_XATTR) : undefined };
    } catch (err) {
      answer = { id: job.id, errno: toErrno(err), message: (err as Error)?.message ?? String(err) };
    }
    port.postMessage(answer);
  });
}

/** The event loop's side: one lazily started worker, restarted after a failure. */
export class XattropThread {
  private worker?: Worker;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (r: AddResult) => void; reject: (e: Error) => void }>();

  /** The counters after the adds; with `gfid`, the inode's gfid xattr too (for the heal index). */
  add(host: string, path: string, adds: readonly CounterAdd[], gfid = false): Promise<AddResult> {
    const w = this.worker ?? this.start();
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, host, path, adds, gfid } satisfies Job);
    });
  }

  private start(): Worker {
    const w = new Worker(new URL(import.meta.url));
    w.unref(); // never what keeps the daemon alive
    w.on('message', (a: Answer) => {
      const p = this.pending.get(a.id);
      if (!p) return;
      this.pending.delete(a.id);
      if ('outs' in a) p.resolve({ outs: a.outs.map(asBuffer), gfid: a.gfid ? asBuffer(a.gfid) : undefined });
      else p.reject(new FsError(isErrno(a.errno) ? a.errno : 'EIO', a.message));
    });
    const gone = (why: string) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      for (const p of this.pending.values()) p.reject(new FsError('EIO', `xattrop thread ${why}`));
      this.pending.clear();
    };
    w.on('error', (e) => gone(`failed: ${e.message}`));
    w.on('exit', (code) => gone(`exited with code ${code}`));
    this.worker = w;
    return w;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    for (const p of this.pending.values()) p.reject(new FsError('EIO', 'xattrop thread closed'));
    this.pending.clear();
    await w?.terminate();
  }
}
