// What one brick round trip costs: grpc-js on loopback, with the brick service definition and the
// channel options gfs uses, in one process (server and client share the event loop) or against a
// server in a child process (as a mount talks to a brick). Prints small-call latency at
// concurrency 1 and 16, and bulk throughput moving 1 GiB as 1 MiB reads and writes.
// With --brick: the cost of each kind of file operation through protocol/client (the Session
// stream) against a real gfs-brickd on a temp directory, at concurrency 1 and 16.
// Usage: node dist/scripts/grpc-cost.js [--calls N] [--mib N] [--serve] [--brick]
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { brickService, CHANNEL_OPTIONS, newServer, SERVER_OPTIONS } from '../common/proto.js';

const { values } = parseArgs({ options: { calls: { type: 'string' }, mib: { type: 'string' }, serve: { type: 'boolean' }, inproc: { type: 'boolean' }, brick: { type: 'boolean' } } });
const CALLS = Number(values.calls ?? 5000);
const MIB = Number(values.mib ?? 1024);
const BLOCK = 1024 * 1024;

type Cb = (e: grpc.ServiceError | null, r?: unknown) => void;

async function serve(): Promise<{ port: number; stop: () => void }> {
  const server = newServer(SERVER_OPTIONS);
  const block = Buffer.alloc(BLOCK, 1);
  server.addService(brickService().service, {
    Ping: (_c: unknown, cb: Cb) => cb(null, { volume_id: '', brick_path: '', pid: process.pid }),
    Read: (call: { request: { size: number } }, cb: Cb) => cb(null, { data: call.request.size === BLOCK ? block : Buffer.alloc(call.request.size) }),
    Write: (call: { request: { data: Buffer } }, cb: Cb) => cb(null, { written: call.request.data.length }),
  } as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return { port, stop: () => server.forceShutdown() };
}

function unary(client: grpc.Client, method: string, req: unknown): Promise<unknown> {
  return new Promise((res, rej) => {
    const md = new grpc.Metadata();
    md.set('gfs-volume-id', 'x');
    md.set('gfs-uid', '0');
    (client as unknown as Record<string, (r: unknown, m: grpc.Metadata, cb: Cb) => void>)[method](req, md, (e, r) => (e ? rej(e) : res(r)));
  });
}

async function measure(port: number, where: string): Promise<void> {
  const Brick = brickService();
  const client = new Brick(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  for (let i = 0; i < 200; i++) await unary(client, 'Ping', {});
  for (const conc of [1, 16]) {
    const t = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: conc }, async () => { while (next++ < CALLS) await unary(client, 'Ping', {}); }));
    const ms = performance.now() - t;
    console.log(`${where}: small call, concurrency ${String(conc).padStart(2)}: ${((ms * 1000) / CALLS).toFixed(0).padStart(5)} us per call, ${Math.round(CALLS / (ms / 1000))} calls/s`);
  }
  const data = Buffer.alloc(BLOCK, 2);
  for (const [what, fn] of [['write', () => unary(client, 'Write', { fd: 1, offset: 0, data })], ['read', () => unary(client, 'Read', { fd: 1, offset: 0, size: BLOCK })]] as const) {
    for (const conc of [1, 4]) {
      const t = performance.now();
      let next = 0;
      await Promise.all(Array.from({ length: conc }, async () => { while (next++ < MIB) await fn(); }));
      const s = (performance.now() - t) / 1000;
      console.log(`${where}: 1 MiB ${what}s, ${conc} in flight: ${Math.round(MIB / s)} MiB/s (${(s * 1024 / MIB).toFixed(2)} s per GiB)`);
    }
  }
  client.close();
}

/** Per-operation cost through protocol/client against a real brick daemon. */
async function brickOps(): Promise<void> {
  const { startBrickd, cleanup, HOST } = await import('../test/brickd-harness.js');
  const { create } = await import('../client/xlators/protocol/client/index.js');
  const { createLogger } = await import('../common/log.js');
  const { ROOT_CTX } = await import('../common/types.js');
  const { newGfid } = await import('../common/gfid.js');
  const d = await startBrickd();
  const xl = create('cost-client', { 'remote-host': HOST, 'remote-subvolume': d.brick, 'remote-port': d.port }, [],
    { log: createLogger('grpc-cost', 'warn'), volume: 'testvol', volumeId: d.volumeId, secret: d.secret, rootCtx: ROOT_CTX });
  try {
    await xl.init();
    const ctx = ROOT_CTX;
    const args = () => ({ mode: 0o100644, umask: 0o022, gfid: newGfid(), xattrs: {} });
    const made = await xl.create(ctx, { path: '/data' }, 2, args());
    await xl.write(ctx, made.fd, 0, Buffer.alloc(1 << 20, 1));
    const block = Buffer.alloc(4096, 3);
    let n = 0;
    const ops: [string, () => Promise<unknown>][] = [
      ['lookup (exists)', () => xl.lookup(ctx, { path: '/data' })],
      ['lookup (missing)', () => xl.lookup(ctx, { path: `/none${n++}` }).catch(() => undefined)],
      ['lookup + 4 xattrs', () => xl.lookup(ctx, { path: '/data' }, ['security.selinux', 'security.capability', 'system.posix_acl_access', 'system.posix_acl_default'])],
      ['create + release', async () => { const r = await xl.create(ctx, { path: `/f${n++}` }, 0o101, args()); await xl.release(ctx, r.fd); }],
      ['setattr mtime', () => xl.setattr(ctx, { path: '/data' }, { mtime: 1_900_000_000_123_456_789n })],
      ['write 4 KiB', () => xl.write(ctx, made.fd, (n++ % 256) * 4096, block)],
      ['read 4 KiB', () => xl.read(ctx, made.fd, (n++ % 256) * 4096, 4096)],
    ];
    for (const [what, fn] of ops) {
      for (let i = 0; i < 50; i++) await fn();
      for (const conc of [1, 16]) {
        const t = performance.now();
        let next = 0;
        await Promise.all(Array.from({ length: conc }, async () => { while (next++ < CALLS) await fn(); }));
        const ms = performance.now() - t;
        console.log(`brick: ${what.padEnd(18)} concurrency ${String(conc).padStart(2)}: ${((ms * 1000) / CALLS).toFixed(0).padStart(5)} us per op`);
      }
    }
    await xl.release(ctx, made.fd);
  } finally {
    await xl.fini();
    await cleanup();
  }
}

async function main(): Promise<void> {
  if (values.brick) {
    await brickOps();
    return;
  }
  if (values.serve) {
    const { port } = await serve();
    process.send?.({ port });
    return;
  }
  if (values.inproc !== false) {
    const s = await serve();
    await measure(s.port, 'in-process');
    s.stop();
  }
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((res) => child.once('message', (m: { port: number }) => res(m.port)));
  try {
    await measure(port, 'two processes');
  } finally {
    child.kill('SIGTERM');
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
