// The self-heal daemon of this node (glustershd): one gfs-shd per replicated volume with bricks
// here, started with the volume's bricks and stopped with them; detached like the brick daemons,
// adopted again through its pid file after a gfsd restart.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../common/log.js';
import { DATA_DAEMON_NODE_FLAGS } from '../common/node-flags.js';
import { pidAlive } from './bricks.js';
import type { Store } from './store.js';
import type { VolumeDef } from './types.js';

const STOP_TIMEOUT_MS = 5_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The gfs-shd program: dist/client/shd.js beside this module's folder. */
export function shdPath(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', 'client', 'shd.js');
}

/** Replicated volumes get a self-heal daemon. */
export function needsShd(v: VolumeDef): boolean {
  return v.replica > 1;
}

export class ShdManager {
  constructor(
    private readonly store: Store,
    private readonly hostname: string,
    private readonly port: number,
    private readonly log: Logger,
    private readonly logLevel: string,
  ) {}

  private pidFile(volume: string): string {
    return join(this.store.runDir(volume), 'shd.pid');
  }

  /** The pid of the volume's running daemon here, if any. */
  find(v: VolumeDef): number | undefined {
    const file = this.pidFile(v.name);
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid)) return undefined;
    let cmd: string[] = [];
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'); } catch { return undefined; }
    if (!cmd.some((a) => a.endsWith('client/shd.js')) || cmd[cmd.indexOf('--volume') + 1] !== v.name) return undefined;
    return pid;
  }

  async start(v: VolumeDef): Promise<void> {
    if (!needsShd(v) || this.find(v)) return;
    const main = shdPath();
    if (!existsSync(main)) { this.log.warn({ main }, 'gfs-shd missing; no self-heal daemon'); return; }
    mkdirSync(this.store.runDir(v.name), { recursive: true });
    const logFile = join(this.store.logDir(), `glustershd-${v.name}.log`);
    const out = openSync(`${logFile}.out`, 'a');
    const pidFile = this.pidFile(v.name);
    rmSync(pidFile, { force: true });
    try {
      const child = spawn(process.execPath, [
        ...DATA_DAEMON_NODE_FLAGS, main, '--volfile-server', `${this.hostname}:${this.port}`, '--volume', v.name, '--node-host', this.hostname,
        '--log-file', logFile, '--log-level', this.logLevel, '--pid-file', pidFile,
      ], { detached: true, stdio: ['ignore', out, out] });
      child.unref();
      const until = Date.now() + 5000;
      while (!existsSync(pidFile) && Date.now() < until && child.exitCode === null) await sleep(50);
      this.log.info({ volume: v.name, pid: child.pid }, 'started self-heal daemon');
    } finally {
      closeSync(out);
    }
  }

  async stop(v: VolumeDef): Promise<void> {
    const pid = this.find(v);
    if (pid) {
      try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
      const until = Date.now() + STOP_TIMEOUT_MS;
      while (pidAlive(pid) && Date.now() < until) await sleep(50);
      if (pidAlive(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      this.log.info({ volume: v.name, pid }, 'stopped self-heal daemon');
    }
    rmSync(this.pidFile(v.name), { force: true });
  }
}
