// scripts/gluster: real GlusterFS volumes for scripts/bench, so gfs can be compared with what it is
// modelled on. Needs Debian's glusterfs-server and glusterfs-client (apt-get install -y
// glusterfs-server glusterfs-client) and root. When no glusterd runs, one is started here with its
// state, run and log directories in the bench's temp dir and brick ports from 59152 (gfs bricks use
// 49152 and up), and stopped again by its PID; a glusterd that already runs is used and left running.
// Volumes have the bricks in the temp dir (hence `force`) and are mounted as users mount them:
// `mount -t glusterfs 127.0.0.1:/VOL MOUNTPOINT`, the FUSE client with default options.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The bench targets this module serves: GlusterFS volumes of the shapes of the gfs ones (GlusterFS 10 has no stripe). */
export const GLUSTER_VOLUMES: Record<string, { bricks: number; args: string[] }> = {
  'gluster-dist2': { bricks: 2, args: [] },
  'gluster-rep2': { bricks: 2, args: ['replica', '2'] },
  'gluster-dist-rep2x2': { bricks: 4, args: ['replica', '2'] },
};

export const GLUSTER_INSTALL = 'apt-get install -y glusterfs-server glusterfs-client';
const BASE_PORT = 59152;
const MAX_PORT = 59999;
// glusterd refuses 127.0.0.1 and localhost as a brick host; any other loopback address is local to it.
const BRICK_HOST = '127.0.0.2';
const GLUSTERD_SOCKET = '/var/run/glusterd.socket';
const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;

function run(cmd: string, args: string[], timeoutMs = 180_000): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20, env: { ...process.env, PATH } }, (err, stdout, stderr) =>
      res({ code: err ? Number((err as { code?: number }).code ?? 1) || 1 : 0, out: `${stdout}${stderr}` }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(safeRead(`/proc/${pid}/status`));
function safeRead(p: string): string {
  try { return readFileSync(p, 'utf8'); } catch { return ''; }
}

async function killPids(pids: number[]): Promise<void> {
  for (const p of pids) { try { process.kill(p, 'SIGTERM'); } catch { /* gone */ } }
  for (let i = 0; i < 50 && pids.some(alive); i++) await sleep(100);
  for (const p of pids.filter(alive)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
  for (let i = 0; i < 30 && pids.some(alive); i++) await sleep(100);
}

/** The `-S` unix sockets a GlusterFS daemon was given: glusterd puts them in /var/run/gluster whatever its run-directory, and bricks leave them behind. */
async function socketsOf(pid: number): Promise<string[]> {
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  return argv.flatMap((a, i) => (a === '-S' && argv[i + 1] ? [argv[i + 1]] : []));
}

export interface GlusterMount { dir: string; stop(): Promise<void> }

export class Gluster {
  private readonly sockets = new Set<string>();
  private readonly seen = new Set<number>();
  private constructor(private readonly root: string, private readonly glusterd: ChildProcess | undefined, private readonly socketWasThere: boolean) {}

  private cli(args: string[]): Promise<{ code: number; out: string }> {
    return run('gluster', ['--mode=script', `--log-file=${join(this.root, 'log', 'cli.log')}`, ...args]);
  }

  private async mustCli(args: string[]): Promise<string> {
    const r = await this.cli(args);
    if (r.code !== 0) throw new Error(`gluster ${args.join(' ')}: ${r.out.trim().slice(-400)}`);
    return r.out;
  }

  /** Starts glusterd unless one runs; answers why not as a string when GlusterFS is missing or will not start. */
  static async start(root: string): Promise<Gluster | string> {
    for (const bin of ['glusterd', 'gluster', 'mount.glusterfs']) {
      if ((await run('bash', ['-c', `command -v ${bin}`])).code !== 0) return `GlusterFS is not installed (no ${bin}); for these columns: ${GLUSTER_INSTALL}`;
    }
    if (process.getuid?.() !== 0) return 'GlusterFS volumes need root';
    await mkdir(join(root, 'log'), { recursive: true });
    const running = (await run('pgrep', ['-x', 'glusterd'])).out.trim();
    if (running) {
      const g = new Gluster(root, undefined, true);
      const r = await g.cli(['pool', 'list']);
      return r.code === 0 ? g : `the running glusterd (pid ${running.split('\n').join(', ')}) does not answer: ${r.out.trim().slice(-300)}`;
    }
    for (const d of ['wd', 'run']) await mkdir(join(root, d), { recursive: true });
    const vol = join(root, 'glusterd.vol');
    await writeFile(vol, [
      'volume management',
      '    type mgmt/glusterd',
      `    option working-directory ${join(root, 'wd')}`,
      `    option run-directory ${join(root, 'run')}`,
      `    option logging-directory ${join(root, 'log')}`,
      '    option transport-type socket',
      '    option transport.socket.listen-port 24007',
      '    option transport.socket.read-fail-log off',
      '    option ping-timeout 0',
      '    option event-threads 1',
      `    option base-port ${BASE_PORT}`,
      `    option max-port ${MAX_PORT}`,
      'end-volume', ''].join('\n'));
    const socketWasThere = existsSync(GLUSTERD_SOCKET);
    const child = spawn('glusterd', ['-N', '-f', vol, '-p', join(root, 'glusterd.pid'), '-l', join(root, 'log', 'glusterd.log')],
      { stdio: 'ignore', env: { ...process.env, PATH } });
    const g = new Gluster(root, child, socketWasThere);
    let exited = false;
    child.once('exit', () => { exited = true; });
    child.once('error', () => { exited = true; });
    for (let i = 0; i < 150 && !exited; i++) {
      if ((await g.cli(['pool', 'list'])).code === 0) return g;
      await sleep(200);
    }
    const log = await readFile(join(root, 'log', 'glusterd.log'), 'utf8').catch(() => '');
    await g.stop();
    return `glusterd did not start (is port 24007 taken?): ${log.trim().split('\n').slice(-3).join(' / ')}`;
  }

  /** Creates, starts and mounts the volume of a gluster-* target; answers why not as a string. */
  async volume(target: string): Promise<GlusterMount | string> {
    const shape = GLUSTER_VOLUMES[target];
    const name = `gfsbench-${target.slice('gluster-'.length)}`;
    // A volume of that name left by an interrupted run on a glusterd that outlives the bench.
    if ((await this.cli(['volume', 'info', name])).code === 0) {
      await this.cli(['volume', 'stop', name, 'force']);
      await this.cli(['volume', 'delete', name]);
    }
    const bricks = Array.from({ length: shape.bricks }, (_, i) => `${BRICK_HOST}:${join(this.root, 'bricks', `${name}-b${i}`)}`);
    await mkdir(join(this.root, 'bricks'), { recursive: true });
    const r = await this.cli(['volume', 'create', name, ...shape.args, ...bricks, 'force']);
    if (r.code !== 0) return r.out.trim();
    const mp = join(this.root, `mnt-${name}`);
    let mounted = false;
    const stop = async () => {
      const pids = await this.pidsOf(name);
      if (mounted) {
        if ((await run('umount', [mp])).code !== 0) await run('umount', ['-l', mp]);
      }
      await this.cli(['volume', 'stop', name]);
      await this.cli(['volume', 'delete', name]);
      // volume stop ends the bricks; whatever is still up of this volume goes by its PID.
      await killPids(pids.filter(alive));
    };
    try {
      await this.mustCli(['volume', 'start', name]);
      for (const pid of await this.pidsOf(name)) for (const s of await socketsOf(pid)) this.sockets.add(s);
      await mkdir(mp, { recursive: true });
      const m = await run('mount', ['-t', 'glusterfs', '-o', `log-file=${join(this.root, 'log', `mnt-${name}.log`)}`, `127.0.0.1:/${name}`, mp]);
      if (m.code !== 0) throw new Error(`mount -t glusterfs 127.0.0.1:/${name}: ${m.out.trim()}`);
      mounted = true;
      for (let i = 0; i < 100 && (await run('mountpoint', ['-q', mp])).code !== 0; i++) await sleep(100);
      if ((await run('stat', ['-f', mp])).code !== 0) throw new Error(`${mp} is not usable`);
      return { dir: mp, stop };
    } catch (e) {
      await stop();
      return (e as Error).message;
    }
  }

  /** The PIDs of this volume's bricks and of processes started for it (FUSE client), from volume status and the temp dir in their command lines. */
  private async pidsOf(name: string): Promise<number[]> {
    const xml = (await this.cli(['volume', 'status', name, '--xml'])).out;
    const fromStatus = [...xml.matchAll(/<node>\s*<hostname>([^<]*)<\/hostname>[\s\S]*?<pid>(\d+)<\/pid>/g)]
      .filter((m) => m[1] === BRICK_HOST).map((m) => Number(m[2]));
    const pids = [...new Set([...fromStatus, ...(await this.pidsUnderRoot())])].filter((p) => p > 0);
    for (const p of pids) this.seen.add(p);
    return pids;
  }

  private async pidsUnderRoot(): Promise<number[]> {
    // pgrep run without a shell, so that only GlusterFS daemons carry the temp dir in their command line.
    const out = (await run('pgrep', ['-f', '--', this.root])).out;
    return out.split('\n').map(Number).filter((p) => p > 0 && p !== process.pid && p !== this.glusterd?.pid);
  }

  /** Stops the glusterd started here (by its PID) and anything of GlusterFS it left, and removes the unix sockets bricks leave behind. */
  async stop(): Promise<void> {
    // Mounts of a volume whose stop() did not run (the bench was interrupted).
    const mounts = (await readFile('/proc/mounts', 'utf8').catch(() => '')).split('\n').map((l) => l.split(' ')[1]).filter((m) => m?.startsWith(`${this.root}/`));
    for (const m of mounts) if ((await run('umount', [m])).code !== 0) await run('umount', ['-l', m]);
    if (this.glusterd && this.glusterd.exitCode === null && this.glusterd.signalCode === null) {
      const exit = new Promise((r) => this.glusterd!.once('exit', r));
      this.glusterd.kill('SIGTERM');
      await Promise.race([exit, sleep(10_000)]);
      if (this.glusterd.exitCode === null && this.glusterd.signalCode === null) {
        this.glusterd.kill('SIGKILL');
        await Promise.race([exit, sleep(5_000)]);
      }
    }
    const left = await this.pidsUnderRoot();
    for (const pid of left) for (const s of await socketsOf(pid)) this.sockets.add(s);
    for (const p of left) this.seen.add(p);
    await killPids(left);
    for (const s of this.sockets) await rm(s, { force: true }).catch(() => {});
    if (this.glusterd && !this.socketWasThere) await rm(GLUSTERD_SOCKET, { force: true }).catch(() => {});
    // Daemonised bricks that exited are zombies until init reaps them; wait for that, so none shows in ps.
    for (let i = 0; i < 100 && [...this.seen].some((p) => existsSync(`/proc/${p}`)); i++) await sleep(100);
  }
}
