// The brick daemons of this node: spawning gfs-brickd (detached, so bricks outlive a gfsd restart
// as glusterfsd outlives glusterd), adopting running ones through their pid files, the port map,
// and stopping them (SIGTERM, then SIGKILL).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { DATA_DAEMON_NODE_FLAGS } from '../common/node-flags.js';
import { brickService, CHANNEL_OPTIONS } from '../common/proto.js';
import { ctxToMetadata } from '../common/wire.js';
import { ROOT_CTX } from '../common/types.js';
import type { Logger } from '../common/log.js';
import { precondition } from './errors.js';
import type { Store } from './store.js';
import { FIRST_BRICK_PORT, type VolumeDef } from './types.js';

export interface RunningBrick {
  volume: string;
  path: string;
  pid: number;
  port: number;
}

const EXIT_PORT_IN_USE = 98;
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The gfs-brickd program: dist/brickd/main.js beside this module's folder. */
export function brickdPath(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', 'brickd', 'main.js');
}

/** Alive and not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function cmdline(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined;
  }
}

function argAfter(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => res(true)));
  });
}

/** A file name for a brick, as glusterd's "host-data-brick1". */
export function brickFileName(host: string, path: string): string {
  return `${host}${path.replace(/\//g, '-')}`;
}

export class BrickManager {
  private readonly running = new Map<string, RunningBrick>();

  constructor(
    private readonly store: Store,
    private readonly hostname: string,
    private readonly log: Logger,
    private readonly logLevel: string,
  ) {}

  private key(volume: string, path: string): string {
    return `${volume}\0${path}`;
  }

  pidFile(volume: string, path: string): string {
    return join(this.store.runDir(volume), `${brickFileName(this.hostname, path)}.pid`);
  }

  /** The running daemon of a brick, re-checked against /proc; adopts one started before a restart. */
  find(v: VolumeDef, path: string): RunningBrick | undefined {
    const k = this.key(v.name, path);
    const known = this.running.get(k);
    if (known && pidAlive(known.pid)) return known;
    this.running.delete(k);
    const file = this.pidFile(v.name, path);
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid)) return undefined;
    const args = cmdline(pid);
    if (!args || !args.some((a) => a.endsWith('brickd/main.js'))) return undefined;
    if (argAfter(args, '--brick-path') !== path || argAfter(args, '--volume-id') !== v.id) return undefined;
    const port = Number((argAfter(args, '--listen') ?? '').split(':').pop());
    if (!Number.isInteger(port) || port <= 0) return undefined;
    const rb = { volume: v.name, path, pid, port };
    this.running.set(k, rb);
    this.log.info({ volume: v.name, brick: path, pid, port }, 'adopted running brick daemon');
    return rb;
  }

  /** The port of a running brick of this node serving path (any volume). */
  portOf(path: string): number | undefined {
    for (const v of this.store.listVolumes()) {
      if (!v.bricks.some((b) => b.path === path && b.nodeUuid === this.store.uuid)) continue;
      const rb = this.find(v, path);
      if (rb) return rb.port;
    }
    return undefined;
  }

  private usedPorts(): Set<number> {
    const s = new Set<number>();
    for (const rb of this.running.values()) if (pidAlive(rb.pid)) s.add(rb.port);
    return s;
  }

  private starting: Promise<unknown> = Promise.resolve();

  /** Starts the brick unless its daemon already runs. One start at a time, so two bricks of this
   * node never pick the same free port. */
  start(v: VolumeDef, path: string): Promise<RunningBrick> {
    const run = this.starting.then(() => this.startOne(v, path));
    this.starting = run.catch(() => undefined);
    return run;
  }

  private async startOne(v: VolumeDef, path: string): Promise<RunningBrick> {
    const existing = this.find(v, path);
    if (existing) return existing;
    const main = brickdPath();
    if (!existsSync(main)) throw precondition(`cannot start brick ${this.hostname}:${path}: ${main} is missing`);
    mkdirSync(this.store.runDir(v.name), { recursive: true });
    const logDir = join(this.store.logDir(), 'bricks');
    mkdirSync(logDir, { recursive: true });
    const base = brickFileName(this.hostname, path);
    const used = this.usedPorts();
    for (let port = FIRST_BRICK_PORT; port < FIRST_BRICK_PORT + 1000; port++) {
      if (used.has(port) || !(await portFree(this.hostname, port))) continue;
      const pidFile = this.pidFile(v.name, path);
      rmSync(pidFile, { force: true });
      const args = [
        main, '--brick-path', path, '--listen', `${this.hostname}:${port}`, '--volume', v.name, '--volume-id', v.id,
        '--auth-file', this.store.authFile(v.name), '--log-level', this.logLevel,
        '--log-file', join(logDir, `${base}.log`), '--pid-file', pidFile,
      ];
      const out = openSync(join(logDir, `${base}.out`), 'a');
      let child: ChildProcess;
      try {
        child = spawn(process.execPath, [...DATA_DAEMON_NODE_FLAGS, ...args], { detached: true, stdio: ['ignore', out, out] });
      } finally {
        closeSync(out);
      }
      child.unref();
      const code = await this.waitReady(child, v, port);
      if (code === EXIT_PORT_IN_USE) continue;
      if (code !== undefined) throw precondition(`brick daemon for ${this.hostname}:${path} exited with code ${code} (see ${join(logDir, `${base}.out`)})`);
      const pid = child.pid!;
      if (!existsSync(pidFile)) writeFileSync(pidFile, `${pid}\n`);
      const rb = { volume: v.name, path, pid, port };
      this.running.set(this.key(v.name, path), rb);
      this.log.info({ volume: v.name, brick: path, pid, port }, 'started brick daemon');
      return rb;
    }
    throw precondition(`no free port for brick ${this.hostname}:${path}`);
  }

  /** Resolves undefined once the brick answers Ping, or the exit code if the daemon ended first. */
  private async waitReady(child: ChildProcess, v: VolumeDef, port: number): Promise<number | undefined> {
    let exitCode: number | undefined;
    child.once('exit', (code, signal) => { exitCode = code ?? (signal ? 128 : 1); });
    const client = new (brickService())(`${this.hostname}:${port}`, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    try {
      const deadline = Date.now() + READY_TIMEOUT_MS;
      while (Date.now() < deadline) {
        if (exitCode !== undefined) return exitCode;
        const ok = await new Promise<boolean>((res) => {
          client.Ping({}, ctxToMetadata(ROOT_CTX, v.id, v.secret), { deadline: Date.now() + 1000 }, (err: unknown) => res(!err));
        });
        if (ok && exitCode === undefined) return undefined;
        await sleep(100);
      }
      if (exitCode !== undefined) return exitCode;
      child.kill('SIGKILL');
      throw precondition(`brick daemon on port ${port} did not answer within ${READY_TIMEOUT_MS / 1000}s`);
    } finally {
      client.close();
    }
  }

  /** Stops the brick's daemon if it runs: SIGTERM, then SIGKILL. */
  async stop(v: VolumeDef, path: string): Promise<void> {
    const rb = this.find(v, path);
    this.running.delete(this.key(v.name, path));
    if (rb) {
      const signalled = (sig: NodeJS.Signals) => { try { process.kill(rb.pid, sig); } catch { /* gone */ } };
      signalled('SIGTERM');
      const until = Date.now() + STOP_TIMEOUT_MS;
      while (pidAlive(rb.pid) && Date.now() < until) await sleep(50);
      if (pidAlive(rb.pid)) {
        this.log.warn({ volume: v.name, brick: path, pid: rb.pid }, 'brick daemon ignored SIGTERM, killing');
        signalled('SIGKILL');
        while (pidAlive(rb.pid)) await sleep(50);
      }
      this.log.info({ volume: v.name, brick: path, pid: rb.pid }, 'stopped brick daemon');
    }
    rmSync(this.pidFile(v.name, path), { force: true });
  }
}
