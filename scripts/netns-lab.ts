// The network-namespace lab: each gfs node is a "host" of its own, a network namespace with one
// veth into a bridge namespace (a Linux bridge) and a private address (10.77.0.0/24) that exists
// only inside the lab's namespaces. Each node runs its own gfsd (and so its bricks and self-heal
// daemon) in its namespace; a client namespace mounts volumes. Processes enter a namespace with
// `nsenter --net` (only the network namespace: a FUSE mount made there stays visible to the
// machine). Nothing ever connects to a lab address from the machine's own namespace.
// Everything is torn down by teardown(): mounts, every process in the lab's namespaces (by pid,
// from `ip netns pids`), and the namespaces (their veths go with them).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = { gfs: join(REPO, 'dist/mgmt/cli.js'), gfsd: join(REPO, 'dist/mgmt/gfsd.js'), mount: join(REPO, 'dist/client/main.js') };
export const SUBNET = '10.77.0';
export const MGMT_PORT = 24007;
const MAX_NODES = 8;
const CMD_TIMEOUT_MS = 120_000;

export interface Result { code: number; stdout: string; stderr: string }

export function run(cmd: string, args: string[], timeoutMs = CMD_TIMEOUT_MS): Promise<Result> {
  return new Promise((res) => {
    const c = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      res({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    c.stdin?.end();
  });
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LabNode {
  index: number;
  /** The namespace, e.g. gl1a2b3c-n1. */
  ns: string;
  addr: string;
  /** Everything of this node on disk: gfsd's workdir and its bricks. */
  dir: string;
  workdir: string;
  gfsd?: ChildProcess;
}

export interface LabOptions { nodes: number; root?: string; log?: (s: string) => void }

export class NetnsLab {
  readonly nodes: LabNode[] = [];
  readonly bridgeNs: string;
  readonly clientNs: string;
  readonly clientAddr = `${SUBNET}.100`;
  private readonly made: string[] = [];
  private readonly log: (s: string) => void;

  private constructor(readonly root: string, readonly prefix: string, opts: LabOptions) {
    this.bridgeNs = `${prefix}-br`;
    this.clientNs = `${prefix}-cl`;
    this.log = opts.log ?? (() => {});
  }

  /** Builds the namespaces, the bridge and the links, and starts gfsd on every node. On any
   * failure it tears down what it made and throws. */
  static async start(opts: LabOptions): Promise<NetnsLab> {
    if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_NODES) throw new Error(`--nodes must be 1..${MAX_NODES}`);
    const root = opts.root ?? (await mkdtemp(join(tmpdir(), 'gfs-netns-')));
    await mkdir(root, { recursive: true });
    const prefix = `gl${randomBytes(3).toString('hex')}`;
    const lab = new NetnsLab(root, prefix, opts);
    try {
      await lab.build(opts.nodes);
      for (const n of lab.nodes) await lab.startGfsd(n);
    } catch (e) {
      await lab.teardown();
      throw e;
    }
    return lab;
  }

  private async addNs(name: string): Promise<void> {
    await must('ip', ['netns', 'add', name]);
    this.made.push(name);
    await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  }

  /** A veth from the bridge namespace (port `port`) into `ns` (eth0 there) with address `addr`. */
  private async plug(ns: string, port: string, addr: string): Promise<void> {
    await must('ip', ['-n', this.bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await must('ip', ['-n', this.bridgeNs, 'link', 'set', port, 'master', 'br0', 'up']);
    await must('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
    await must('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
  }

  private async build(count: number): Promise<void> {
    await this.addNs(this.bridgeNs);
    await must('ip', ['-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await must('ip', ['-n', this.bridgeNs, 'link', 'set', 'br0', 'up']);
    for (let i = 1; i <= count; i++) {
      const dir = join(this.root, `node${i}`);
      const node: LabNode = { index: i - 1, ns: `${this.prefix}-n${i}`, addr: `${SUBNET}.${10 + i}`, dir, workdir: join(dir, 'gfsd') };
      await this.addNs(node.ns);
      await this.plug(node.ns, `p${i}`, node.addr);
      await mkdir(node.workdir, { recursive: true });
      this.nodes.push(node);
    }
    await this.addNs(this.clientNs);
    await this.plug(this.clientNs, 'pc', this.clientAddr);
    this.log(`lab ${this.prefix}: ${count} nodes ${this.nodes.map((n) => `${n.ns}=${n.addr}`).join(' ')}, client ${this.clientNs}=${this.clientAddr}`);
  }

  /** Runs a program in a lab namespace (network namespace only). */
  exec(ns: string, cmd: string, args: string[], timeoutMs = CMD_TIMEOUT_MS): Promise<Result> {
    return run('nsenter', [`--net=/run/netns/${ns}`, '--', cmd, ...args], timeoutMs);
  }

  /** Can `fromNs` open a TCP connection to addr:port? Checked inside the lab, never from here. */
  async reachable(fromNs: string, addr: string, port = MGMT_PORT, timeoutS = 2): Promise<boolean> {
    const r = await this.exec(fromNs, 'timeout', [String(timeoutS), 'bash', '-c', `exec 3<>/dev/tcp/${addr}/${port}`], (timeoutS + 5) * 1000);
    return r.code === 0;
  }

  async startGfsd(n: LabNode): Promise<void> {
    if (n.gfsd && n.gfsd.exitCode === null && n.gfsd.signalCode === null) throw new Error(`gfsd of ${n.ns} already runs`);
    const out = openSync(join(n.workdir, 'gfsd.out'), 'a');
    n.gfsd = spawn('nsenter', [`--net=/run/netns/${n.ns}`, '--', process.execPath, BIN.gfsd, '--listen', `${n.addr}:${MGMT_PORT}`,
      '--workdir', n.workdir, '--log-file', join(n.workdir, 'gfsd.log')], { stdio: ['ignore', out, out] });
    closeSync(out);
    const until = Date.now() + 30_000;
    while (!(await this.reachable(n.ns, n.addr))) {
      if (n.gfsd.exitCode !== null) throw new Error(`gfsd of ${n.ns} exited with ${n.gfsd.exitCode} (see ${join(n.workdir, 'gfsd.log')})`);
      if (Date.now() > until) throw new Error(`gfsd of ${n.ns} did not listen within 30s`);
      await sleep(200);
    }
  }

  /** Stops gfsd as an admin would (SIGTERM; its bricks keep running). */
  async stopGfsd(n: LabNode, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = n.gfsd;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await Promise.race([exited, sleep(15_000)]);
    if (p.exitCode === null && p.signalCode === null) { p.kill('SIGKILL'); await exited; }
  }

  /** Pids of the processes in a namespace (`ip netns pids`): only what this lab started runs there. */
  async pidsIn(ns: string): Promise<number[]> {
    const r = await run('ip', ['netns', 'pids', ns]);
    return r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((p) => p !== process.pid);
  }

  /** The command lines of a namespace's processes. */
  async processesIn(ns: string): Promise<{ pid: number; cmd: string[] }[]> {
    const out: { pid: number; cmd: string[] }[] = [];
    for (const pid of await this.pidsIn(ns)) {
      const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmd) out.push({ pid, cmd: cmd.split('\0').filter(Boolean) });
    }
    return out;
  }

  /** Power off: every process of the node killed at once (gfsd, bricks, self-heal daemon). */
  async powerOff(n: LabNode): Promise<number> {
    const pids = await this.pidsIn(n.ns);
    for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    const until = Date.now() + 10_000;
    while ((await this.pidsIn(n.ns)).length && Date.now() < until) await sleep(100);
    if (n.gfsd) await new Promise((r) => (n.gfsd!.exitCode !== null || n.gfsd!.signalCode !== null ? r(undefined) : n.gfsd!.once('exit', r)));
    return pids.length;
  }

  /** Cuts (or restores) a node's only link, inside its namespace. */
  async link(n: LabNode, up: boolean): Promise<void> {
    await must('ip', ['-n', n.ns, 'link', 'set', 'eth0', up ? 'up' : 'down']);
  }

  /** The gfs CLI, run in the client namespace against node i's gfsd. */
  gfs(args: string[], node = 0): Promise<Result> {
    return this.exec(this.clientNs, process.execPath, [BIN.gfs, '--remote-host', `${this.nodes[node].addr}:${MGMT_PORT}`, '--mode=script', ...args]);
  }

  async mustGfs(args: string[], node = 0): Promise<string> {
    const r = await this.gfs(args, node);
    if (r.code !== 0) throw new Error(`gfs ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  async probeAll(): Promise<void> {
    for (const n of this.nodes.slice(1)) await this.mustGfs(['peer', 'probe', n.addr]);
  }

  brick(node: number, name: string): string {
    return join(this.nodes[node].dir, 'bricks', name);
  }

  brickSpec(node: number, name: string): string {
    return `${this.nodes[node].addr}:${this.brick(node, name)}`;
  }

  /** gfs-mount in the client namespace; the mount itself is visible everywhere. */
  async mount(volume: string, mp: string, opts: string[] = [], server = 0): Promise<void> {
    await mkdir(mp, { recursive: true });
    const r = await this.exec(this.clientNs, process.execPath, [BIN.mount, `${this.nodes[server].addr}:${volume}`, mp,
      '--log-file', join(this.root, `mount-${volume}.log`), ...opts.flatMap((o) => ['-o', o])]);
    if (r.code !== 0) throw new Error(`gfs-mount failed (${r.code}): ${r.stderr}`);
  }

  async unmount(mp: string): Promise<void> {
    const r = await run('fusermount', ['-u', mp]);
    if (r.code !== 0) await run('umount', ['-l', mp]);
  }

  async teardown(): Promise<void> {
    const mounts = (await readFile('/proc/mounts', 'utf8')).split('\n').map((l) => l.split(' '))
      .filter((f) => f[1]?.startsWith(`${this.root}/`) && f[2]?.startsWith('fuse')).map((f) => f[1]);
    for (const mp of mounts.reverse()) {
      const r = await run('fusermount', ['-uz', mp]);
      if (r.code !== 0) await run('umount', ['-l', mp]);
    }
    for (const ns of this.made) for (const pid of await this.pidsIn(ns)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    for (const n of this.nodes) n.gfsd?.kill('SIGKILL');
    const until = Date.now() + 10_000;
    for (const ns of this.made) while ((await this.pidsIn(ns)).length && Date.now() < until) await sleep(100);
    for (const ns of this.made.splice(0).reverse()) await run('ip', ['netns', 'del', ns]);
    this.log(`lab ${this.prefix}: torn down`);
  }

  async removeRoot(): Promise<void> {
    await rm(this.root, { recursive: true, force: true }).catch(() => {});
  }
}

/** `npm run lab -- --netns`: the pool in namespaces, a distributed-replicated volume (replica 2
 * when the node count is even), mounted until Ctrl-C; then everything is torn down. */
export async function labMain(o: { nodes: number; volume: string; mount: string; workdir: string }): Promise<void> {
  const lab = await NetnsLab.start({ nodes: o.nodes, root: o.workdir, log: (s) => console.log(s) });
  let stopping = false;
  const down = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nlab: unmounting, stopping every process in the lab\'s namespaces, removing them');
    await lab.unmount(o.mount).catch(() => {});
    await lab.teardown();
    process.exit(code);
  };
  process.on('SIGINT', () => void down(0));
  process.on('SIGTERM', () => void down(0));
  try {
    await lab.probeAll();
    const replica = o.nodes % 2 === 0 && o.nodes >= 2 ? ['replica', '2'] : [];
    if ((await lab.gfs(['volume', 'info', o.volume])).code !== 0) {
      await lab.mustGfs(['volume', 'create', o.volume, ...replica, ...lab.nodes.map((_, i) => lab.brickSpec(i, 'brick1')), 'force']);
    }
    if (!/Status: Started/.test(await lab.mustGfs(['volume', 'info', o.volume]))) await lab.mustGfs(['volume', 'start', o.volume]);
    const backups = lab.nodes.slice(1, 3).map((n) => n.addr).join(':');
    await lab.mount(o.volume, o.mount, backups ? [`backup-volfile-servers=${backups}`] : []);
    console.log(await lab.mustGfs(['volume', 'info', o.volume]));
    const n1 = lab.nodes[0];
    console.log(`Volume ${o.volume} is mounted on ${o.mount} (served from namespace ${lab.clientNs}). Try:
  cd ${o.mount} && touch testfile{1..6} && ls ${lab.root}/node*/bricks/brick1
  nsenter --net=/run/netns/${lab.clientNs} gfs --remote-host ${n1.addr} volume status ${o.volume}
  ip -n ${n1.ns} link set eth0 down     # cut node1's link; 'up' brings it back
Ctrl-C unmounts and removes the namespaces (the data stays in ${lab.root}).`);
  } catch (e) {
    console.error(`lab: ${(e as Error).message}`);
    await down(1);
  }
}
