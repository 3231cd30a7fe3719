// The test harness: real gfsd processes on loopback addresses of their own, the real gfs CLI, real
// gfs-mount daemons and FUSE mounts in a temporary directory. Everything a cluster started is
// unmounted and killed in teardown, also when the test fails.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, mkdir } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = {
  gfs: join(REPO, 'dist/mgmt/cli.js'),
  gfsd: join(REPO, 'dist/mgmt/gfsd.js'),
  brickd: join(REPO, 'dist/brickd/main.js'),
  mount: join(REPO, 'dist/client/main.js'),
  mountGfs: join(REPO, 'dist/client/mount-gfs.js'),
};

export interface RunResult { code: number; stdout: string; stderr: string }

/** Runs a program to completion (never against a mount this process serves: none is served here). */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((res) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      res({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

export function sh(script: string, opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run('bash', ['-c', script], opts);
}

export async function freePort(host: string): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host, port }, () => { s.destroy(); res(true); });
    s.on('error', () => res(false));
  });
}

/** Pids of every process whose command line names this directory: what this harness started. */
export async function pidsUnder(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    const cmd = await readFile(`/proc/${d}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(dir)) out.push(Number(d));
  }
  return out;
}

export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/mounts', 'utf8');
  return text.split('\n').map((l) => l.split(' ')).filter((f) => f[1]?.startsWith(dir) && f[2]?.startsWith('fuse')).map((f) => f[1]);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let subnetCounter = 0;

export interface Node { host: string; workdir: string; proc?: ChildProcess }

export class Cluster {
  readonly nodes: Node[] = [];
  private constructor(readonly root: string, readonly port: number) {}

  /** n gfsd nodes on 127.B.C.1..n, where B is per test file and C per cluster. */
  static async start(t: ExecutionContext, opts: { nodes: number; subnet: number }): Promise<Cluster> {
    const root = await mkdtemp(join(tmpdir(), 'gfs-test-'));
    const c = ++subnetCounter;
    const base = `127.${opts.subnet}.${c}`;
    const port = await freePort(`${base}.1`);
    const cluster = new Cluster(root, port);
    t.teardown(() => cluster.teardown());
    for (let i = 1; i <= opts.nodes; i++) {
      const node: Node = { host: `${base}.${i}`, workdir: join(root, `node${i}`) };
      cluster.nodes.push(node);
      await cluster.startNode(node);
    }
    return cluster;
  }

  addr(i = 0): string {
    return `${this.nodes[i].host}:${this.port}`;
  }

  async startNode(node: Node): Promise<void> {
    await mkdir(node.workdir, { recursive: true });
    node.proc = spawn(process.execPath, [BIN.gfsd, '--listen', `${node.host}:${this.port}`, '--workdir', node.workdir, '--log-file', join(node.workdir, 'gfsd.log')], { stdio: 'ignore' });
    await waitFor(`gfsd on ${node.host}`, () => canConnect(node.host, this.port), 90_000);
  }

  async stopNode(node: Node): Promise<void> {
    const p = node.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }

  /** The gfs CLI against node i, in script mode unless told otherwise. */
  gfs(args: string[], opts: { node?: number; input?: string; script?: boolean } = {}): Promise<RunResult> {
    const mode = opts.script === false ? [] : ['--mode=script'];
    return run(process.execPath, [BIN.gfs, '--remote-host', this.addr(opts.node ?? 0), ...mode, ...args], { input: opts.input });
  }

  async mustGfs(args: string[], opts: { node?: number } = {}): Promise<string> {
    const r = await this.gfs(args, opts);
    if (r.code !== 0) throw new Error(`gfs ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  brick(node: number, name: string): string {
    return join(this.root, 'bricks', `node${node + 1}`, name);
  }

  brickSpec(node: number, name: string): string {
    return `${this.nodes[node].host}:${this.brick(node, name)}`;
  }

  async probeAll(): Promise<void> {
    for (let i = 1; i < this.nodes.length; i++) await this.mustGfs(['peer', 'probe', `${this.nodes[i].host}:${this.port}`]);
  }

  /** Creates and starts a volume over `bricks` ([node, name] pairs). */
  async volume(name: string, bricks: [number, string][], typeArgs: string[] = []): Promise<void> {
    await this.mustGfs(['volume', 'create', name, ...typeArgs, ...bricks.map(([n, b]) => this.brickSpec(n, b)), 'force']);
    await this.mustGfs(['volume', 'start', name]);
  }

  async mountpoint(name: string): Promise<string> {
    const mp = join(this.root, 'mnt', name);
    await mkdir(mp, { recursive: true });
    return mp;
  }

  /** gfs-mount as a user runs it: returns when mounted; the daemon is torn down with the cluster. */
  async mount(volume: string, mp?: string, extra: string[] = []): Promise<string> {
    const where = mp ?? (await this.mountpoint(volume));
    const r = await run(process.execPath, [BIN.mount, `${this.addr(0)}:${volume}`, where, '--log-file', join(this.root, `mount-${volume}.log`), ...extra]);
    if (r.code !== 0) throw new Error(`gfs-mount failed (${r.code}): ${r.stderr}`);
    return where;
  }

  async unmount(mp: string): Promise<void> {
    const r = await run('fusermount', ['-u', mp]);
    if (r.code !== 0) await run('umount', ['-l', mp]);
  }

  async teardown(): Promise<void> {
    for (const mp of (await mountsUnder(this.root)).reverse()) {
      const r = await run('fusermount', ['-uz', mp]);
      if (r.code !== 0) await run('umount', ['-l', mp]);
    }
    for (const n of this.nodes) n.proc?.kill('SIGKILL');
    for (const pid of await pidsUnder(this.root)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    await waitFor('processes to exit', async () => (await pidsUnder(this.root)).length === 0, 10_000).catch(() => {});
    if (!process.env.GFS_KEEP_TEST_DIRS) await rm(this.root, { recursive: true, force: true }).catch(() => {});
  }
}
