#!/usr/bin/env node
// gfsd: the management daemon of one node (as glusterd). Serves proto/mgmt.proto, keeps the pool
// and the volume store in the workdir, and runs this node's brick daemons. SIGTERM exits 0 and
// leaves the brick daemons running; the next start adopts them.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../common/log.js';
import { mgmtService, SERVER_OPTIONS } from '../common/proto.js';
import { configureBrickCarve } from './brick-carve.js';
import { Node } from './node.js';
import { catchUp } from './peer-ops.js';
import { mgmtHandlers } from './service.js';
import { DEFAULT_MGMT_PORT, parseHostPort } from './types.js';

const USAGE = `Usage: gfsd [--listen HOST[:PORT]] [--workdir DIR] [--log-level LEVEL] [--log-file FILE] [--pid-file FILE]
  --listen     address to serve on and this node's hostname (default 127.0.0.1:${DEFAULT_MGMT_PORT})
  --workdir    state directory (default /var/lib/gfsd)
  --brick-mount-root  where carved bricks are mounted (default $GFS_BRICK_MOUNT_ROOT or /var/lib/gfs/mounts)`;

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        listen: { type: 'string', default: `127.0.0.1:${DEFAULT_MGMT_PORT}` },
        workdir: { type: 'string', default: '/var/lib/gfsd' },
        'log-level': { type: 'string' },
        'log-file': { type: 'string' },
        'pid-file': { type: 'string' },
        'brick-mount-root': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`gfsd: ${(e as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const { host, port } = parseHostPort(values.listen!);
  const level = values['log-level'] ?? process.env.GFS_LOG_LEVEL ?? 'info';
  const log = createLogger('gfsd', level, values['log-file']);
  const node = new Node(values.workdir!, host, port, log, level);
  configureBrickCarve({ mountRoot: values['brick-mount-root'] });

  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(mgmtService().service, mgmtHandlers(node));
  try {
    await new Promise<number>((res, rej) => server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? rej(err) : res(p))));
  } catch (e) {
    process.stderr.write(`gfsd: cannot listen on ${host}:${port}: ${(e as Error).message}\n`);
    process.exit(98);
  }
  const pidFile = values['pid-file'];
  if (pidFile) {
    mkdirSync(dirname(pidFile), { recursive: true });
    writeFileSync(pidFile, `${process.pid}\n`);
  }
  log.info({ uuid: node.self.uuid, listen: `${host}:${port}`, workdir: values.workdir }, 'gfsd started');

  const shutdown = (sig: string) => {
    log.info({ signal: sig }, 'gfsd stopping (brick daemons keep running)');
    if (pidFile) rmSync(pidFile, { force: true });
    server.forceShutdown();
    log.flush?.();
    setTimeout(() => process.exit(0), 50);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  // Catch up with the pool, then adopt the brick daemons of started volumes or start missing ones.
  await node.exclusive(async () => {
    await catchUp(node).catch((e) => log.warn({ err: (e as Error).message }, 'catch-up with peers failed'));
    for (const v of node.store.listVolumes()) {
      if (v.status !== 'Started') continue;
      for (const path of node.localPaths(v)) {
        try {
          await node.bricks.start(v, path);
        } catch (e) {
          log.error({ volume: v.name, brick: path, err: (e as Error).message }, 'cannot start brick');
        }
      }
      if (node.localPaths(v).length) await node.shd.start(v).catch((e) => log.error({ volume: v.name, err: (e as Error).message }, 'cannot start self-heal daemon'));
    }
  });
}

main().catch((e) => {
  process.stderr.write(`gfsd: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
