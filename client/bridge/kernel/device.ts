// /dev/fuse: opening, mounting (mount(8) with the device passed as fd 3), several outstanding reads,
// replies and notifications. Protocol transport only: what a request means is the session's business.
import { spawn } from 'node:child_process';
import { closeSync, openSync, read, write, writevSync } from 'node:fs';
import { Socket } from 'node:net';
import { bulkBuffers } from '../../../common/buffers.js';
import { IN_HEADER_SIZE, OUT_HEADER_SIZE, outHeader } from './abi.js';

export interface MountRequest {
  source: string;
  mountpoint: string;
  readOnly: boolean;
  /** Extra comma-separated mount(2) options. */
  extra?: string;
}

/** Runs a program to completion; rejects with its stderr on a non-zero exit. */
export function runProgram(cmd: string, args: string[], stdio: (number | 'ignore' | 'pipe')[] = ['ignore', 'ignore', 'pipe']): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: stdio as never });
    let err = '';
    child.stderr?.on('data', (d) => { err += String(d); });
    child.on('error', reject);
    child.on('exit', (code, sig) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: ${err.trim() || `exit ${code ?? sig}`}`))));
  });
}

export type RequestHandler = (buf: Buffer) => void;

export class FuseDevice {
  readonly fd: number;
  private closedFlag = false;
  private fdClosed = false;
  /** The stream that owns the fd once streamLoop opened it (it closes the fd). */
  private sock?: Socket;
  private resolveClosed!: () => void;
  /** Resolves when the kernel ended the connection (read gave ENODEV) or close() was called. */
  readonly closed = new Promise<void>((r) => { this.resolveClosed = r; });

  constructor(private readonly bufSize: number, private readonly onError: (err: Error) => void) {
    this.fd = openSync('/dev/fuse', 'r+');
  }

  /** mount -i -t fuse.gfs -o fd=3,...: mount(8) without a helper; the kernel takes the fd from it. */
  async mount(req: MountRequest): Promise<void> {
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const opts = [`fd=3`, 'rootmode=40000', `user_id=${uid}`, `group_id=${gid}`, 'allow_other', 'default_permissions',
      req.readOnly ? 'ro' : 'rw', 'nosuid', 'nodev', ...(req.extra ? [req.extra] : [])].join(',');
    await runProgram('mount', ['-i', '-t', 'fuse.gfs', '-o', opts, req.source, req.mountpoint], ['ignore', 'ignore', 'pipe', this.fd]);
  }

  /** Serves requests: the event loop polls the device itself where it can (streamLoop), else
   *  `readers` thread-pool reads wait on it at once. True when the event loop polls. */
  start(readers: number, onRequest: (buf: Buffer, keep: () => void) => void): boolean {
    if (this.streamLoop(onRequest)) return true;
    for (let i = 0; i < readers; i++) this.readLoop(onRequest);
    return false;
  }

  /** The device as a libuv stream (non-blocking, in the event loop's epoll set): a request
   *  reaches us with one wake-up, where a pool read costs a pool thread's and then the loop's
   *  (~20% of the mount's CPU for small requests). Each read returns one whole request into a
   *  buffer of bufSize. False where Node offers no pipe handle to open the fd with. */
  private streamLoop(onRequest: (buf: Buffer, keep: () => void) => void): boolean {
    if (process.env.GFS_FUSE_POOL_READS === '1') return false; // how a test reaches the fallback
    const handle = openPipe(this.fd);
    if (!handle) return false;
    let buf = Buffer.allocUnsafeSlow(this.bufSize);
    let kept = false;
    const sock = new Socket({
      handle, readable: true, writable: false,
      onread: {
        buffer: () => {
          // A handler that kept the last buffer (WRITE data) owns it: the next read goes to a
          // pool buffer (write-behind gives a kept one back once its data is written).
          if (kept) { buf = bulkBuffers.take(this.bufSize); kept = false; }
          return buf;
        },
        callback: (n: number) => {
          if (n >= IN_HEADER_SIZE) onRequest(buf.subarray(0, n), () => { kept = true; });
          return true;
        },
      },
    } as ConstructorParameters<typeof Socket>[0]);
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENODEV' && err.code !== 'EBADF') this.onError(err);
      this.markClosed();
    });
    sock.on('close', () => this.markClosed());
    this.sock = sock;
    return true;
  }

  private readLoop(onRequest: (buf: Buffer, keep: () => void) => void): void {
    let buf = Buffer.allocUnsafeSlow(this.bufSize);
    const next = () => {
      if (this.closedFlag) return;
      read(this.fd, buf, 0, buf.length, null, (err, n) => {
        if (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'EINTR' || code === 'EAGAIN') { next(); return; } // an interrupted request: read on
          if (code !== 'ENODEV' && code !== 'EBADF') this.onError(err);
          this.markClosed();
          return;
        }
        if (n < IN_HEADER_SIZE) { next(); return; }
        let kept = false;
        onRequest(buf.subarray(0, n), () => { kept = true; });
        // A handler that keeps the buffer (WRITE data) owns it now; read the next request into another
        // (from the bulk pool, where write-behind returns a kept one once its data is written).
        if (kept) buf = bulkBuffers.take(this.bufSize);
        next();
      });
    };
    next();
  }

  /** Answers request `unique`: error is a negative errno or 0. A reply to a request the kernel
   *  gave up on (interrupted) fails with ENOENT, which is no error of ours. */
  reply(unique: bigint, error: number, payload: Buffer[] = []): void {
    if (this.closedFlag) return;
    const len = OUT_HEADER_SIZE + (error ? 0 : payload.reduce((a, b) => a + b.length, 0));
    try {
      writevSync(this.fd, [outHeader(len, error, unique), ...(error ? [] : payload)]);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENODEV' && code !== 'EBADF') this.onError(err as Error);
    }
  }

  /** A notification (unique 0, error = the notify code). Written asynchronously: the kernel may
   *  take inode locks that a request we still have to answer holds. */
  notify(code: number, payload: Buffer): Promise<void> {
    if (this.closedFlag) return Promise.resolve();
    const b = Buffer.concat([outHeader(OUT_HEADER_SIZE + payload.length, code, 0n), payload]);
    return new Promise((resolve) => write(this.fd, b, 0, b.length, null, () => resolve()));
  }

  private markClosed(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.resolveClosed();
  }

  /** Stops reading and closes the device (after unmount the kernel has already let go of it). */
  close(): void {
    this.markClosed();
    if (this.fdClosed) return;
    this.fdClosed = true;
    if (this.sock) { this.sock.destroy(); return; }
    try { closeSync(this.fd); } catch { /* already gone */ }
  }
}

interface PipeBinding { Pipe: new (type: number) => { open(fd: number): number }; constants: { SOCKET: number } }

/** A libuv pipe handle on fd (uv_pipe_open makes it non-blocking and takes any fd that polls),
 *  or undefined where Node does not offer one. */
function openPipe(fd: number): object | undefined {
  try {
    const { Pipe, constants } = (process as unknown as { binding(name: string): PipeBinding }).binding('pipe_wrap');
    const handle = new Pipe(constants.SOCKET);
    return handle.open(fd) === 0 ? handle : undefined;
  } catch {
    return undefined;
  }
}
