#!/usr/bin/env node
// gfs-csi: the Container Storage Interface driver for gfs (as kadalu's or the in-tree glusterfs
// provisioner): the Controller service makes volumes through gfs-provisioner's REST API, the Node
// service mounts them with gfs-mount. One program, three modes: controller (a Deployment with the
// external-provisioner/-resizer sidecars), node (a DaemonSet with node-driver-registrar), or all.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { createLogger } from '../common/log.js';
import { ProvisionerClient } from '../provision/client.js';
import { Controller } from './controller.js';
import { DRIVER_NAME, Identity, type Mode } from './identity.js';
import { NodeService } from './node.js';
import { serve } from './server.js';
import { VolumesApi } from './volumes-api.js';

const USAGE = `Usage: gfs-csi [options]
  --endpoint URL          the CSI socket (default unix:///csi/csi.sock; also CSI_ENDPOINT)
  --mode MODE             controller | node | all (default all)
  --node-id ID            this node's name (default the host name; also NODE_ID)
  --driver-name NAME      default ${DRIVER_NAME}
  --provisioner-url URL   gfs-provisioner's REST API (also GFS_PROVISIONER_SERVER); the controller needs it
  --provisioner-user U    JWT issuer: admin (default; GetCapacity needs it) or user (also GFS_PROVISIONER_USER)
  --provisioner-key K     the JWT key (also GFS_PROVISIONER_KEY); none: no Authorization header
  --mount-log-dir DIR     where the gfs-mount daemons log (default /var/log/gfs)
  --log-level LEVEL       default info (also GFS_LOG_LEVEL)
  --log-file FILE         default stderr`;

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        endpoint: { type: 'string' }, mode: { type: 'string' }, 'node-id': { type: 'string' }, 'driver-name': { type: 'string' },
        'provisioner-url': { type: 'string' }, 'provisioner-user': { type: 'string' }, 'provisioner-key': { type: 'string' },
        'mount-log-dir': { type: 'string' }, 'log-level': { type: 'string' }, 'log-file': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    process.stderr.write(`gfs-csi: ${(e as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const fail = (m: string) => {
    process.stderr.write(`gfs-csi: ${m}\n${USAGE}\n`);
    process.exit(2);
  };
  const mode = (values.mode ?? 'all') as Mode;
  if (!['controller', 'node', 'all'].includes(mode)) fail(`--mode must be controller, node or all, not '${mode}'`);
  const endpoint = values.endpoint ?? process.env.CSI_ENDPOINT ?? 'unix:///csi/csi.sock';
  const nodeId = values['node-id'] ?? process.env.NODE_ID ?? hostname();
  const url = values['provisioner-url'] ?? process.env.GFS_PROVISIONER_SERVER;
  if (mode !== 'node' && !url) fail('the controller needs --provisioner-url');
  const log = createLogger('gfs-csi', values['log-level'] ?? process.env.GFS_LOG_LEVEL ?? 'info', values['log-file']);
  const api = url
    ? new VolumesApi(new ProvisionerClient(url, values['provisioner-user'] ?? process.env.GFS_PROVISIONER_USER ?? 'admin',
      values['provisioner-key'] ?? process.env.GFS_PROVISIONER_KEY ?? '', 200))
    : undefined;

  const services: Record<string, object> = { Identity: new Identity(mode, values['driver-name'] ?? DRIVER_NAME, api) };
  if (mode !== 'node') services.Controller = new Controller(api!, log);
  if (mode !== 'controller') services.Node = new NodeService({ nodeId, mountLogDir: values['mount-log-dir'] ?? '/var/log/gfs', api }, log);
  let server;
  try {
    server = await serve(endpoint, services, log);
  } catch (e) {
    process.stderr.write(`gfs-csi: cannot listen on ${endpoint}: ${(e as Error).message}\n`);
    process.exit(98);
  }
  log.info({ endpoint, mode, nodeId, provisioner: url }, 'gfs-csi started');
  const shutdown = (sig: string) => {
    log.info({ signal: sig }, 'gfs-csi stopping');
    server.tryShutdown(() => process.exit(0));
    setTimeout(() => process.exit(0), 5_000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((e) => {
  process.stderr.write(`gfs-csi: ${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
