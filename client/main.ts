#!/usr/bin/env node
// gfs-mount: mounts a volume. By default it returns once the mount is ready and leaves a daemon
// serving it (as mount.glusterfs); -N keeps it in the foreground. The daemon exits when the file
// system is unmounted (umount, fusermount -u) or on SIGTERM/SIGINT, unmounting first.
import './bridge/kernel/threadpool.js'; // first: sizes libuv's pool before anything uses it
import '../common/gc.js';
import { fork } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { toErrno } from '../common/errors.js';
import { createLogger } from '../common/log.js';
import { DATA_DAEMON_NODE_FLAGS } from '../common/node-flags.js';
import { profileSnapshot } from '../common/profile.js';
import { ROOT_CTX } from '../common/types.js';
import type { VolumeSpec } from '../common/spec.js';
import { createFuseNativeBridge } from './bridge/fuse-native.js';
import { createKernelBridge } from './bridge/kernel/index.js';
import type { BridgeFactory } from './bridge/index.js';
import { buildGraph } from './xlators/registry.js';
import { fetchSpec, parseServer, specFromFile } from './volfile.js';
import { watchSpec } from './spec-watch.js';

const USAGE = `usage: gfs-mount [options] [HOST[:PORT]:]VOLUME MOUNTPOINT
       gfs-mount [options] --spec FILE MOUNTPOINT

Mounts a gfs volume with FUSE. VOLUME alone asks the gfsd on 127.0.0.1:24007;
HOST:/VOLUME is accepted too (mount -t gfs style).

options:
  --spec FILE          mount the volume spec in FILE instead of asking gfsd
  -o OPTS              comma-separated mount options:
                         ro | rw, backup-volfile-servers=H1[:P]:H2..., log-level=L,
                         log-file=F, bridge=kernel|fuse-native (default kernel on Linux),
                         writeback-cache, attribute-timeout=S, entry-timeout=S,
                         acl (POSIX ACLs, checked by the kernel), selinux (security.selinux labels),
                         volfile-check-interval=S (how often to look for a changed spec; 0: never)
  --log-level L        trace|debug|info|warn|error (default info; also GFS_LOG_LEVEL)
  --log-file F         default /var/log/gfs/<mountpoint>.log
  --pid-file F         write the serving daemon's pid here
  -N, --foreground     serve in the foreground
  -h, --help           this text`;

class UsageError extends Error {}

export interface MountArgs {
  source?: string;
  specFile?: string;
  mountpoint: string;
  readOnly: boolean;
  servers: { host: string; port: number }[];
  volume: string;
  logLevel?: string;
  logFile: string;
  pidFile?: string;
  foreground: boolean;
  bridge: string;
  writebackCache: boolean;
  acl: boolean;
  selinux: boolean;
  attrTimeout?: number;
  entryTimeout?: number;
  /** Seconds between looks for a changed spec on the volfile servers; 0 never looks. */
  volfileCheckInterval: number;
}

/** The bridges gfs-mount can serve a mount with; -o bridge=NAME picks one. */
export const BRIDGES: Record<string, BridgeFactory> = {
  kernel: createKernelBridge,
  'fuse-native': createFuseNativeBridge,
};
export const DEFAULT_BRIDGE = process.platform === 'linux' ? 'kernel' : 'fuse-native';

function seconds(key: string, v: string | undefined): number {
  const n = Number(v);
  if (v === undefined || v === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`mount option ${key} needs a number of seconds, got '${v ?? ''}'`);
  return n;
}

function parseSource(source: string): { server?: string; volume: string } {
  // HOST:/VOLUME, HOST:PORT:VOLUME, HOST:VOLUME or VOLUME
  const m = /^(.*?)(?::(\d+))?:\/?([A-Za-z0-9][A-Za-z0-9._-]*)$/.exec(source);
  if (m && m[1]) return { server: m[2] ? `${m[1]}:${m[2]}` : m[1], volume: m[3] };
  if (/^\/?[A-Za-z0-9][A-Za-z0-9._-]*$/.test(source)) return { volume: source.replace(/^\//, '') };
  throw new UsageError(`'${source}' is not a volume (use HOST:VOLUME, HOST:/VOLUME or VOLUME)`);
}

export function parseMountArgs(argv: string[]): MountArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      spec: { type: 'string' }, o: { type: 'string', short: 'o', multiple: true }, 'log-level': { type: 'string' },
      'log-file': { type: 'string' }, 'pid-file': { type: 'string' }, foreground: { type: 'boolean', short: 'N' },
      help: { type: 'boolean', short: 'h' }, 'ready-ipc': { type: 'boolean' },
    },
  });
  if (values.help) throw Object.assign(new UsageError(USAGE), { help: true });
  const expected = values.spec ? 1 : 2;
  if (positionals.length !== expected) throw new UsageError(`expected ${expected === 1 ? 'MOUNTPOINT' : 'VOLUME and MOUNTPOINT'}\n${USAGE}`);
  const mountpoint = resolve(positionals[expected - 1]);
  const opts = (values.o ?? []).flatMap((o) => o.split(',')).filter(Boolean);
  let readOnly = false;
  let logLevel = values['log-level'];
  let logFile = values['log-file'];
  let bridge = DEFAULT_BRIDGE;
  let writebackCache = false;
  let acl = false;
  let selinux = false;
  let attrTimeout: number | undefined;
  let entryTimeout: number | undefined;
  let volfileCheckInterval = 5;
  const backups: string[] = [];
  for (const o of opts) {
    const [k, v] = o.split(/=(.*)/s);
    switch (k) {
      case 'ro': readOnly = true; break;
      case 'rw': readOnly = false; break;
      case 'backup-volfile-servers': case 'backupvolfile-server': backups.push(...(v ?? '').split(':').filter(Boolean)); break;
      case 'log-level': logLevel = v?.toLowerCase(); break; // the in-tree glusterfs plugin passes ERROR
      case 'log-file': logFile = v; break;
      case 'bridge': bridge = v; break;
      case 'writeback-cache': writebackCache = true; break;
      case 'acl': acl = true; break;
      case 'selinux': selinux = true; break;
      case 'attribute-timeout': attrTimeout = seconds(k, v); break;
      case 'entry-timeout': entryTimeout = seconds(k, v); break;
      case 'volfile-check-interval': volfileCheckInterval = seconds(k, v); break;
      // The Kubernetes in-tree glusterfs plugin passes it; the daemon unmounts on every exit path it controls.
      case 'auto_unmount': break;
      // Options mount(8) passes that mean nothing here.
      case 'defaults': case 'auto': case 'noauto': case '_netdev': case 'nofail': case 'user': case 'nouser':
      case 'exec': case 'noexec': case 'suid': case 'nosuid': case 'dev': case 'nodev': case 'relatime': case 'noatime': break;
      default: throw new UsageError(`unknown mount option '${o}'`);
    }
  }
  if (!BRIDGES[bridge]) throw new UsageError(`unknown bridge '${bridge}' (available: ${Object.keys(BRIDGES).join(', ')})`);
  let servers: { host: string; port: number }[] = [];
  let volume = '';
  if (!values.spec) {
    const src = parseSource(positionals[0]);
    volume = src.volume;
    // backup servers given as HOST or HOST:PORT separated by ':' are ambiguous with ports; accept HOST only
    servers = [parseServer(src.server ?? '127.0.0.1'), ...backups.map((b) => parseServer(b))];
  }
  const logName = mountpoint.replace(/^\//, '').replace(/\//g, '-') || 'root';
  return {
    source: values.spec ? undefined : positionals[0], specFile: values.spec, mountpoint, readOnly, servers, volume,
    logLevel, logFile: logFile ?? `/var/log/gfs/${logName}.log`, pidFile: values['pid-file'], foreground: !!values.foreground, bridge,
    writebackCache, acl, selinux, attrTimeout, entryTimeout, volfileCheckInterval,
  };
}

async function checkMountpoint(mp: string): Promise<void> {
  let st;
  try {
    st = await stat(mp);
  } catch (e) {
    throw new UsageError(`mount point ${mp} does not exist`);
  }
  if (!st.isDirectory()) throw new UsageError(`mount point ${mp} is not a directory`);
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  if (info.split('\n').some((l) => l.split(' ')[4] === mp.replace(/ /g, '\\040') && / - fuse/.test(l))) {
    throw new UsageError(`${mp} is already a FUSE mount point`);
  }
}

/** Mounts and serves until unmounted. Calls ready() once the mount is usable. */
async function serve(args: MountArgs, ready: (err?: string) => void): Promise<number> {
  const log = createLogger('gfs-mount', args.logLevel, args.logFile);
  let spec: VolumeSpec;
  try {
    await checkMountpoint(args.mountpoint);
    spec = args.specFile ? await specFromFile(args.specFile) : await fetchSpec(args.servers, args.volume);
  } catch (e) {
    ready((e as Error).message);
    return 1;
  }
  const top = buildGraphOrFail(spec, log, ready);
  if (!top) return 1;
  try {
    await top.init();
    await top.lookup(ROOT_CTX, { path: '/' });
  } catch (e) {
    const errno = toErrno(e);
    ready(errno === 'ENOTCONN' ? `no brick of volume ${spec.volume} is reachable (${(e as Error).message})` : (e as Error).message);
    await top.fini();
    return 1;
  }
  const fsname = args.specFile ? spec.volume : `${args.servers[0].host}:${spec.volume}`;
  const bridge = BRIDGES[args.bridge](top, {
    mountpoint: args.mountpoint, fsname, readOnly: args.readOnly, log,
    writebackCache: args.writebackCache, acl: args.acl, selinux: args.selinux, attrTimeout: args.attrTimeout, entryTimeout: args.entryTimeout,
  });
  try {
    await bridge.mount();
  } catch (e) {
    ready(`cannot mount ${args.mountpoint}: ${(e as Error).message}`);
    await top.fini();
    return 1;
  }
  if (args.pidFile) {
    await mkdir(dirname(args.pidFile), { recursive: true });
    await writeFile(args.pidFile, `${process.pid}\n`);
  }
  log.info({ volume: spec.volume, mountpoint: args.mountpoint, bridge: args.bridge }, 'mounted');
  ready();
  const watcher = !args.specFile && args.volfileCheckInterval > 0
    ? watchSpec(args.servers, spec, top, log, args.volfileCheckInterval) : undefined;
  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, 'unmounting');
    await bridge.unmount();
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // GFS_PROFILE=1: SIGUSR1 logs where the time went since the last one (FUSE requests, brick calls).
  process.on('SIGUSR1', () => log.info({ profile: profileSnapshot(true) }, 'profile'));
  await bridge.closed;
  watcher?.stop();
  await top.fini();
  log.info('stopped');
  return 0;
}

function buildGraphOrFail(spec: VolumeSpec, log: ReturnType<typeof createLogger>, ready: (err?: string) => void) {
  try {
    return buildGraph(spec, log);
  } catch (e) {
    ready((e as Error).message);
    return undefined;
  }
}

/** Starts the serving daemon and waits for its word that the mount is ready. */
/** The last warning or error lines of a daemon's pino log, to say why it stopped. */
async function lastProblems(logFile: string): Promise<string> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const msgs = text.trim().split('\n').slice(-200).map((l) => {
    try {
      const j = JSON.parse(l) as { level: number; msg?: string; err?: { message?: string } | string };
      return j.level >= 40 ? `${j.msg ?? ''}${j.err ? `: ${typeof j.err === 'string' ? j.err : j.err.message}` : ''}` : '';
    } catch {
      return '';
    }
  }).filter(Boolean);
  return msgs.slice(-3).join('; ');
}

function daemonize(argv: string[], logFile: string): Promise<number> {
  return new Promise((resolvePromise) => {
    const child = fork(fileURLToPath(import.meta.url), [...argv, '--foreground', '--ready-ipc'], {
      detached: true, stdio: ['ignore', 'ignore', 'ignore', 'ipc'], execArgv: [...process.execArgv, ...DATA_DAEMON_NODE_FLAGS],
    });
    let done = false;
    const finish = (code: number, msg?: string) => {
      if (done) return;
      done = true;
      if (msg) process.stderr.write(`gfs-mount: ${msg}\n`);
      child.removeAllListeners();
      if (child.connected) child.disconnect();
      child.unref();
      resolvePromise(code);
    };
    child.on('message', (m: { ready?: boolean; error?: string }) => finish(m.error ? 1 : 0, m.error));
    child.on('exit', (code, signal) => {
      void lastProblems(logFile).then((why) => finish(code || 1,
        `the mount daemon exited (${signal ?? `code ${code}`}) before the mount was ready${why ? `: ${why}` : ''} (log: ${logFile})`));
    });
    child.on('error', (e) => finish(1, e.message));
  });
}

export async function main(argv: string[]): Promise<number> {
  let args: MountArgs;
  try {
    args = parseMountArgs(argv);
  } catch (e) {
    if ((e as { help?: boolean }).help) {
      process.stdout.write(`${(e as Error).message}\n`);
      return 0;
    }
    process.stderr.write(`gfs-mount: ${(e as Error).message}\n`);
    return 2;
  }
  if (!args.foreground) return daemonize(argv, args.logFile);
  const viaIpc = argv.includes('--ready-ipc') && typeof process.send === 'function';
  // A crash before the mount is ready is still reported to the waiting parent.
  process.on('uncaughtException', (e) => {
    if (viaIpc && process.connected) process.send!({ error: `mount daemon crashed: ${e.stack ?? e.message}` });
    else process.stderr.write(`gfs-mount: crashed: ${e.stack ?? e.message}\n`);
    process.exit(1);
  });
  return serve(args, (err) => {
    if (viaIpc) {
      process.send!(err ? { error: err } : { ready: true });
      if (!err) process.disconnect();
    } else if (err) {
      process.stderr.write(`gfs-mount: ${err}\n`);
    }
  });
}

// Started as a program (also through a symlink such as /usr/local/bin/gfs-mount), not imported.
const isMain = !!process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) main(process.argv.slice(2)).then((code) => process.exit(code));
