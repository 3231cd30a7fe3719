#!/usr/bin/env node
// gfs-brickd: serves one brick of a volume over gRPC (GlusterFS's glusterfsd + posix translator).
import '../common/gc.js'; // first: how the heap is marked
import { writeFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { createLogger, type Logger } from '../common/log.js';
import { profileSnapshot } from '../common/profile.js';
import { SERVER_OPTIONS, brickService, newServer } from '../common/proto.js';
import { Brick } from './brick.js';
import { USAGE, UsageError, parseCli, type BrickdOptions } from './cli.js';
import { BrickRefused, prepareBrick } from './prepare.js';
import { brickImplementation } from './service.js';

const EXIT_REFUSED = 1;
const EXIT_USAGE = 2;
const EXIT_ADDR_IN_USE = 98;
const FORCE_SHUTDOWN_MS = 2000;

let log: Logger | undefined;

function fail(code: number, message: string): never {
  process.stderr.write(`gfs-brickd: ${message}\n`);
  log?.fatal({ exitCode: code }, message);
  log?.flush();
  process.exit(code);
}

function bind(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}

async function main(): Promise<void> {
  // Every fs and xattr call runs on libuv's pool (4 threads by default); readdirp of thousands of
  // entries and many clients want more. Read by libuv when the pool first starts, i.e. below.
  process.env.UV_THREADPOOL_SIZE ??= '16';
  let opts: BrickdOptions | null;
  try {
    opts = await parseCli(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) fail(EXIT_USAGE, err.message);
    throw err;
  }
  if (!opts) {
    process.stdout.write(USAGE);
    return;
  }
  // The brick applies each caller's umask itself; the process umask must not mask it again.
  process.umask(0);
  log = createLogger('gfs-brickd', opts.logLevel, opts.logFile);

  let realRoot: string;
  try {
    realRoot = await prepareBrick(opts.brickPath, opts.volumeId);
  } catch (err) {
    if (err instanceof BrickRefused) fail(EXIT_REFUSED, err.message);
    fail(EXIT_REFUSED, `cannot prepare brick '${opts.brickPath}': ${(err as Error).message}`);
  }

  const brick = new Brick({ brickPath: opts.brickPath, realRoot, volume: opts.volume, volumeId: opts.volumeId, log });
  const server = newServer(SERVER_OPTIONS);
  server.addService(brickService().service, brickImplementation(brick, { volumeId: opts.volumeId, secret: opts.secret }));

  // GFS_PROFILE=1: SIGUSR1 logs how long each kind of operation took here since the last one.
  process.on('SIGUSR1', () => log!.info({ profile: profileSnapshot(true) }, 'profile'));
  // Signals are handled from here on, so a stop during startup is graceful too.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log!.info({ signal }, 'shutting down');
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      void brick.close().finally(() => {
        log!.info('stopped');
        log!.flush(() => process.exit(0));
        setTimeout(() => process.exit(0), 500).unref();
      });
    };
    const force = setTimeout(() => {
      log!.warn('calls still open after grace period; forcing shutdown');
      server.forceShutdown();
      finish();
    }, FORCE_SHUTDOWN_MS);
    // Waiting lock requests would hold tryShutdown open: fail them first.
    brick.locks.abortAll();
    server.tryShutdown(() => {
      clearTimeout(force);
      finish();
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const hostPart = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  let port: number;
  try {
    port = await bind(server, `${hostPart}:${opts.port}`);
  } catch (err) {
    const msg = (err as Error).message;
    if (/EADDRINUSE/.test(msg)) fail(EXIT_ADDR_IN_USE, `port ${opts.listen} is already in use`);
    fail(EXIT_REFUSED, `cannot listen on ${opts.listen}: ${msg}`);
  }
  if (opts.pidFile) {
    try {
      await writeFile(opts.pidFile, `${process.pid}\n`);
    } catch (err) {
      server.forceShutdown();
      fail(EXIT_REFUSED, `cannot write --pid-file '${opts.pidFile}': ${(err as Error).message}`);
    }
  }
  log.info({ listen: `${hostPart}:${port}`, port, brick: opts.brickPath, volume: opts.volume, volumeId: opts.volumeId }, 'listening');
}

main().catch((err: unknown) => {
  log?.fatal({ err }, 'unexpected failure');
  fail(EXIT_REFUSED, `unexpected failure: ${(err as Error)?.stack ?? String(err)}`);
});
