// Harness for the management-plane tests: real gfsd processes on their own loopback addresses with
// temporary workdirs, the real gfs CLI as a child process, and a teardown that kills every gfsd and
// every brick daemon they started (found through pid files and /proc), also when a test fails.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const GFSD = join(REPO, 'dist/mgmt/gfsd.js');
const CLI = join(REPO, 'dist/mgmt/cli.js');

export interface RunResult { code: number; stdout: string; stderr: string }

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A port free on every given host (bind 0 on the first, then check the others). */
export async function freePort(hosts: string[]): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((res, rej) => {
      const s = createServer();
      s.once('error', rej);
      s.listen(0, hosts[0], () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); });
    });
    const ok = await Promise.all(hosts.slice(1).map((h) => new Promise<boolean>((res) => {
      const s = createServer();
      s.once('error', () => res(false));
      s.listen(port, h, () => s.close(() => res(true)));
    })));
    if (ok.every(Boolean)) return port;
  }
}

export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host, port }, () => { s.destroy(); res(true); });
    s.on('error', () => res(false));
  });
}

export function alive(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Pids of live processes whose command line contains text. */
export function pidsWith(text: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let cmd = '';
    try { cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8'); } catch { continue; }
    if (cmd.includes(text) && alive(Number(d))) out.push(Number(d));
  }
  return out;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  while (Date.now() < until) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export interface Gfsd { host: string; port: number; workdir: string; addr: string; child?: ChildProcess }

export class Cluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'gfs-mgmt-'));
  readonly nodes: Gfsd[] = [];
  port = 0;

  async init(hosts: string[]): Promise<void> {
    this.port = await freePort(hosts);
    for (const [i, host] of hosts.entries()) {
      const n: Gfsd = { host, port: this.port, workdir: join(this.dir, `gfsd${i + 1}`), addr: `${host}:${this.port}` };
      this.nodes.push(n);
      await this.start(n);
    }
  }

  async start(n: Gfsd): Promise<void> {
    n.child = spawn(process.execPath, [GFSD, '--listen', n.addr, '--workdir', n.workdir, '--log-level', 'debug',
      '--log-file', join(n.workdir, 'logs', 'gfsd.log'), '--pid-file', join(n.workdir, 'gfsd.pid')], { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitFor(`gfsd ${n.addr}`, () => canConnect(n.host, n.port));
  }

  /** SIGTERM; resolves with the exit code. */
  async stop(n: Gfsd): Promise<number | null> {
    const c = n.child;
    if (!c || c.exitCode !== null) return c?.exitCode ?? null;
    const code = new Promise<number | null>((res) => c.once('exit', (code) => res(code)));
    c.kill('SIGTERM');
    return code;
  }

  /** The CLI against a node (default the first). */
  gfs(args: string[], opts: { node?: Gfsd; input?: string; noStdin?: boolean } = {}): Promise<RunResult> {
    const n = opts.node ?? this.nodes[0];
    return new Promise((res) => {
      const child = execFile(process.execPath, [CLI, '--remote-host', n.addr, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        res({ code, stdout: String(stdout), stderr: String(stderr) });
      });
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      else child.stdin?.end();
    });
  }

  /** Brick daemon pids from every node's pid files. */
  brickPids(): number[] {
    const out: number[] = [];
    for (const n of this.nodes) {
      const run = join(n.workdir, 'run');
      if (!existsSync(run)) continue;
      for (const vol of readdirSync(run)) {
        for (const f of readdirSync(join(run, vol))) {
          if (!f.endsWith('.pid')) continue;
          const pid = Number(readFileSync(join(run, vol, f), 'utf8').trim());
          if (pid > 0) out.push(pid);
        }
      }
    }
    return out;
  }

  /** Kills every gfsd and brick daemon this cluster started, then removes the temp dir. */
  async teardown(): Promise<void> {
    const pids = new Set<number>([...this.brickPids(), ...pidsWith(this.dir)]);
    for (const n of this.nodes) if (n.child?.pid && n.child.exitCode === null) pids.add(n.child.pid);
    for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    await waitFor('processes to end', () => [...pids].every((p) => !alive(p)), 10_000).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
