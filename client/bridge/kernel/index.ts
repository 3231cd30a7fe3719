// The kernel-protocol bridge: serves /dev/fuse itself (as GlusterFS's fuse-bridge does) instead of
// going through libfuse. Mounts with mount(8), serves with several reads in flight, and ends when
// the kernel closes the device (umount) or unmount() is called (SIGTERM/SIGINT in gfs-mount).
import { readFile, writeFile } from 'node:fs/promises';
import type { Xlator } from '../../../common/fops.js';
import type { Bridge, BridgeOptions } from '../index.js';
import { FuseDevice, runProgram } from './device.js';
import { MAX_WRITE, OPCODES, REQUEST_BUFFER } from './opcodes.js';
import { Session } from './session.js';
import { THREADPOOL_SIZE } from './threadpool.js';

/** Outstanding reads of the device where the event loop cannot poll it; each holds a libuv pool
 *  thread while it waits. */
const READERS = Math.max(2, Math.min(8, Math.floor(THREADPOOL_SIZE / 3)));
const INIT_TIMEOUT_MS = 15_000;

export class KernelBridge implements Bridge {
  private dev?: FuseDevice;
  private session?: Session;
  private resolveClosed!: () => void;
  readonly closed = new Promise<void>((r) => { this.resolveClosed = r; });

  constructor(private readonly top: Xlator, private readonly opts: BridgeOptions) {}

  async mount(): Promise<void> {
    const log = this.opts.log;
    const dev = new FuseDevice(REQUEST_BUFFER, (err) => log.error({ err }, '/dev/fuse failed'));
    this.dev = dev;
    const session = new Session(this.top, dev, {
      log, readOnly: this.opts.readOnly, writebackCache: !!this.opts.writebackCache, acl: this.opts.acl, selinux: this.opts.selinux,
      valid: { entry: this.opts.entryTimeout ?? 1, attr: this.opts.attrTimeout ?? 1 },
    }, OPCODES);
    this.session = session;
    const initialised = new Promise<void>((resolve) => { session.onInit = resolve; });
    try {
      await dev.mount({ source: this.opts.fsname, mountpoint: this.opts.mountpoint, readOnly: this.opts.readOnly });
    } catch (e) {
      dev.close();
      throw e;
    }
    const polled = dev.start(READERS, (buf, keep) => session.handle(buf, keep));
    void dev.closed.then(() => {
      log.info({ requestSizes: session.stats.summary(), inodes: session.inodes.size }, 'the kernel closed the FUSE device');
      dev.close();
      this.resolveClosed();
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([initialised, new Promise<void>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the kernel sent no FUSE INIT')), INIT_TIMEOUT_MS);
    })]).finally(() => clearTimeout(timer));
    await this.raiseReadahead();
    log.info(polled ? { reads: 'event loop' } : { reads: 'thread pool', readers: READERS, threadpool: THREADPOOL_SIZE }, 'serving /dev/fuse');
  }

  /** The kernel caps readahead at its bdi's default (128 KiB) whatever INIT says; raise our own
   *  mount's bdi to MAX_WRITE so buffered reads can arrive as 1 MiB READs. Best effort. */
  private async raiseReadahead(): Promise<void> {
    const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
    const mp = this.opts.mountpoint.replace(/ /g, '\\040');
    const line = info.split('\n').reverse().find((l) => l.split(' ')[4] === mp && / - fuse\.gfs /.test(l));
    const dev = line?.split(' ')[2];
    if (!dev) return;
    const file = `/sys/class/bdi/${dev}/read_ahead_kb`;
    await writeFile(file, String(MAX_WRITE / 1024)).then(
      () => this.opts.log.debug({ file, kb: MAX_WRITE / 1024 }, 'readahead raised'),
      (e) => this.opts.log.info({ file, err: (e as Error).message }, 'cannot raise readahead'),
    );
  }

  async unmount(): Promise<void> {
    if (!this.dev) return this.resolveClosed();
    const mp = this.opts.mountpoint;
    try {
      await runProgram('umount', [mp]);
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'umount failed; detaching lazily');
      await runProgram('umount', ['-l', mp]).catch((e2) => this.opts.log.warn({ err: (e2 as Error).message }, 'umount -l failed'));
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.closed, new Promise((r) => { timer = setTimeout(r, 5000); })]);
    clearTimeout(timer);
    this.dev.close();
    this.resolveClosed();
  }
}

export function createKernelBridge(top: Xlator, opts: BridgeOptions): Bridge {
  return new KernelBridge(top, opts);
}
