#!/usr/bin/env node
// gfs-provisioner: volumes by size over a Heketi-compatible REST API (as heketi). Reads a
// heketi.json-shaped config (provision/config.ts), keeps its state in an lmdb file, asks each
// node's gfsd to carve bricks (executor "gfsd") or only records what it would do ("mock").
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { createLogger } from '../common/log.js';
import { ConfigError, loadConfig } from './config.js';
import { Db } from './db.js';
import { GfsdExecutor, MockExecutor, type Executor } from './executor.js';
import { Provisioner } from './provisioner.js';
import { requestHandler } from './routes.js';
import { recover } from './volumes.js';

const USAGE = `Usage: gfs-provisioner [--config FILE] [--port N] [--log-level LEVEL] [--log-file FILE]
  --config   a heketi.json-shaped file: port, use_auth, jwt.{admin,user}.key, glusterfs.{executor
             (mock|gfsd), db, brick_min_size_gb, brick_max_size_gb, max_bricks_per_volume, loglevel}`;

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        config: { type: 'string' }, port: { type: 'string' }, 'log-level': { type: 'string' },
        'log-file': { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`gfs-provisioner: ${(e as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let cfg;
  try {
    cfg = loadConfig(values.config);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`gfs-provisioner: ${e.message}\n`);
    process.exit(2);
  }
  if (values.port) cfg.port = Number(values.port);
  const log = createLogger('gfs-provisioner', values['log-level'] ?? process.env.GFS_LOG_LEVEL ?? cfg.glusterfs.loglevel, values['log-file']);
  const db = new Db(cfg.glusterfs.db);
  const ex: Executor = cfg.glusterfs.executor === 'gfsd' ? new GfsdExecutor(cfg.glusterfs.gfsd_port) : new MockExecutor(cfg.glusterfs.mock_device_size_gb);
  const p = new Provisioner(db, ex, cfg, log);

  // Operations a crash left pending go first: requests that change anything queue behind them.
  void p.exclusive(() => recover(p)).catch((e) => log.error({ err: (e as Error).message }, 'recovery failed'));

  const server = createServer(requestHandler(p));
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(cfg.port, cfg.host, () => res());
  }).catch((e) => {
    process.stderr.write(`gfs-provisioner: cannot listen on ${cfg.host}:${cfg.port}: ${(e as Error).message}\n`);
    process.exit(98);
  });
  log.info({ listen: `${cfg.host}:${cfg.port}`, executor: ex.name, db: cfg.glusterfs.db, auth: cfg.use_auth }, 'gfs-provisioner started');

  const shutdown = (sig: string) => {
    log.info({ signal: sig }, 'gfs-provisioner stopping');
    server.close();
    void db.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((e) => {
  process.stderr.write(`gfs-provisioner: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
