// Test harness for gfs-brickd: starts real brick daemons on loopback ports and talks gRPC to them.
// Every process started here is killed by stopAll(), which tests call from test.after.always.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { ROOT_CTX, type Ctx } from '../common/types.js';
import { CHANNEL_OPTIONS, brickService } from '../common/proto.js';
import { ctxToMetadata, fromGrpcError } from '../common/wire.js';

export const HOST = '127.0.10.1';
export const MAIN = fileURLToPath(new URL('../brickd/main.js', import.meta.url));

const started = new Set<ChildProcess>();

export async function freePort(host = HOST): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(0, host, resolve); });
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const temps = new Set<string>();

/** A fresh directory in the system temp dir, removed by cleanup(). */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.add(dir);
  return dir;
}

export interface Daemon {
  proc: ChildProcess;
  port: number;
  brick: string;
  volumeId: string;
  secret: string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface DaemonOpts {
  brick?: string;
  port?: number;
  volumeId?: string;
  secret?: string;
  extra?: string[];
}

/** Spawns gfs-brickd; resolves once it exits or logs "listening" (whichever comes first). A port
 *  picked here can be taken by another test's daemon before this one binds it: then another. */
export async function spawnBrickd(o: DaemonOpts = {}): Promise<Daemon & { listening: boolean }> {
  for (let attempt = 1; ; attempt++) {
    const d = await spawnOnce(o);
    if (d.listening || o.port !== undefined || attempt === 3 || (await d.exited).code !== EXIT_ADDR_IN_USE) return d;
  }
}

/** gfs-brickd's exit code when its address is in use. */
const EXIT_ADDR_IN_USE = 98;

async function spawnOnce(o: DaemonOpts): Promise<Daemon & { listening: boolean }> {
  const brick = o.brick ?? (await tempDir('gfs-brick-'));
  const port = o.port ?? (await freePort());
  const volumeId = o.volumeId ?? '6a1f3d2e-9b4c-4f1a-8e2d-0c5b7a9e1f23';
  const secret = o.secret ?? 's3cret-volume-key';
  const authFile = join(await tempDir('gfs-auth-'), 'secret');
  await writeFile(authFile, `${secret}\n`, { mode: 0o600 });
  const args = [MAIN, '--brick-path', brick, '--listen', `${HOST}:${port}`, '--volume', 'testvol',
    '--volume-id', volumeId, '--auth-file', authFile, ...(o.extra ?? [])];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(proc);
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('close', (code, signal) => { started.delete(proc); resolve({ code, signal }); });
  });
  const listening = await new Promise<boolean>((resolve) => {
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (/"msg":"listening"/.test(err)) resolve(true);
    });
    void exited.then(() => resolve(false));
  });
  return { proc, port, brick, volumeId, secret, stderr: () => err, exited, listening };
}

export async function startBrickd(o: DaemonOpts = {}): Promise<Daemon> {
  const d = await spawnBrickd(o);
  if (!d.listening) throw new Error(`gfs-brickd did not start: ${d.stderr()}`);
  return d;
}

/** Runs gfs-brickd with raw arguments to its end (for exit-code tests). */
export async function runBrickd(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  proc.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number | null>((resolve) => proc.on('close', (c) => { started.delete(proc); resolve(c); }));
  return { code, stdout, stderr };
}

/** Kills every brickd still running (SIGKILL, by the child's own pid). */
export function stopAll(): void {
  for (const p of started) p.kill('SIGKILL');
  started.clear();
}

/** stopAll() plus removal of every temp dir made by tempDir(). */
export async function cleanup(): Promise<void> {
  stopAll();
  await Promise.allSettled([...temps].map((d) => rm(d, { recursive: true, force: true })));
  temps.clear();
}

type Req = Record<string, unknown>;
export type Res = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export class BrickClient {
  readonly raw: grpc.Client & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  constructor(readonly port: number, public volumeId: string, public secret: string) {
    const Service = brickService();
    this.raw = new Service(`${HOST}:${port}`, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as BrickClient['raw'];
  }

  call(method: string, req: Req, ctx: Ctx = ROOT_CTX, deadlineMs?: number): Promise<Res> {
    const md = ctxToMetadata(ctx, this.volumeId, this.secret);
    const opts: grpc.CallOptions = deadlineMs ? { deadline: Date.now() + deadlineMs } : {};
    return new Promise((resolve, reject) => {
      this.raw[method](req, md, opts, (err: grpc.ServiceError | null, res: Res) => (err ? reject(err) : resolve(res)));
    });
  }

  close(): void {
    this.raw.close();
  }
}

/** The symbolic errno a failed call carries (its gfs-errno trailer). */
export async function errnoOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return fromGrpcError(err, 'test').errno;
  }
  return 'no error';
}

export const args = (gfid: string, mode = 0o644, xattrs: Record<string, Buffer> = {}) => ({ mode, umask: 0o022, gfid, xattrs });
