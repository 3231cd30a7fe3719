#!/usr/bin/env node
// gfs-provisioner-cli: heketi-cli's commands against gfs-provisioner. Server, user and key come
// from --server/--user/--secret or GFS_PROVISIONER_SERVER/_USER/_KEY (as HEKETI_CLI_SERVER/...).
// Exits 1 with "Error: <the server's reason>" on any failure.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ApiError, ProvisionerClient } from './client.js';
import { formatTopology, formatVolume } from './cli-format.js';

const USAGE = `Usage: gfs-provisioner-cli [--server URL] [--user admin|user] [--secret KEY] [--json] COMMAND
  topology load --json=FILE          topology info
  cluster list | info ID | create | delete ID
  node list | info ID | add --cluster=ID --management-host-name=H --storage-host-name=H --zone=N | delete ID
  device add --name=PATH --node=ID [--destroy-existing-data] | info ID | delete ID | resync ID
  volume create --size=GiB [--name=N] [--replica=N | --durability=none|replicate] [--clusters=ID,...]
  volume list | info ID|NAME | delete ID|NAME | expand --volume=ID --expand-size=GiB
  db check`;

const out = (s: string): void => {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
};

class Usage extends Error {}

type Opts = Record<string, string | boolean | undefined>;

async function resolveVolume(c: ProvisionerClient, ref: string | undefined): Promise<string> {
  if (!ref) throw new Usage();
  if (/^[0-9a-f]{32}$/.test(ref)) return ref;
  const { volumes } = await c.json<{ volumes: string[] }>('GET', '/volumes');
  for (const id of volumes) {
    const v = await c.json('GET', `/volumes/${id}`);
    if (v.name === ref) return id;
  }
  throw new ApiError(404, `Volume ${ref} not found`);
}

async function topologyLoad(c: ProvisionerClient, file: string): Promise<void> {
  const topo = JSON.parse(readFileSync(file, 'utf8')) as { clusters: { nodes: { node: any; devices: (string | { name: string; destroydata?: boolean })[] }[] }[] };
  const existing = (await c.json('GET', '/topology')).clusters as any[];
  for (const cl of topo.clusters ?? []) {
    // The cluster that already has one of these nodes, or a new one.
    let clusterId: string | undefined;
    for (const n of cl.nodes) {
      const found = existing.find((e) => e.nodes.some((x: any) => x.hostnames.manage[0] === n.node.hostnames.manage[0]));
      if (found) clusterId = found.id;
    }
    if (clusterId) out(`Found cluster ${clusterId}`);
    else {
      clusterId = (await c.json('POST', '/clusters', { file: true, block: true })).id as string;
      out(`Creating cluster ... ID: ${clusterId}\n\tAllowing file volumes on cluster.\n\tAllowing block volumes on cluster.`);
    }
    for (const n of cl.nodes) {
      const host = n.node.hostnames.manage[0];
      const topoNow = (await c.json('GET', '/topology')).clusters as any[];
      let node = topoNow.flatMap((e) => e.nodes).find((x: any) => x.hostnames.manage[0] === host);
      if (node) out(`\tFound node ${host} on cluster ${node.cluster}`);
      else {
        process.stdout.write(`\tCreating node ${host} ... `);
        node = await c.async('POST', '/nodes', { zone: n.node.zone ?? 1, hostnames: n.node.hostnames, cluster: clusterId, ...(n.node.tags ? { tags: n.node.tags } : {}) });
        out(`ID: ${node.id}`);
      }
      for (const d of n.devices ?? []) {
        const dev = typeof d === 'string' ? { name: d } : d;
        if (node.devices?.some((x: any) => x.name === dev.name)) {
          out(`\t\tFound device ${dev.name}`);
          continue;
        }
        process.stdout.write(`\t\tAdding device ${dev.name} ... `);
        try {
          await c.async('POST', '/devices', { name: dev.name, node: node.id, destroydata: !!dev.destroydata });
          out('OK');
        } catch (e) {
          out(`Unable to add device: ${(e as Error).message}`);
          process.exitCode = 1;
        }
      }
    }
  }
}

async function run(argv: string[]): Promise<void> {
  const { values: o, positionals: pos } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      server: { type: 'string', short: 's' }, user: { type: 'string' }, secret: { type: 'string' }, json: { type: 'string' },
      name: { type: 'string' }, size: { type: 'string' }, replica: { type: 'string' }, durability: { type: 'string' },
      clusters: { type: 'string' }, node: { type: 'string' }, cluster: { type: 'string' }, zone: { type: 'string' },
      'management-host-name': { type: 'string' }, 'storage-host-name': { type: 'string' }, 'destroy-existing-data': { type: 'boolean' },
      volume: { type: 'string' }, 'expand-size': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  const opts = o as Opts;
  if (opts.help || pos.length === 0) {
    out(USAGE);
    return;
  }
  const server = (opts.server as string) ?? process.env.GFS_PROVISIONER_SERVER ?? 'http://127.0.0.1:8080';
  const c = new ProvisionerClient(server, (opts.user as string) ?? process.env.GFS_PROVISIONER_USER ?? 'admin', (opts.secret as string) ?? process.env.GFS_PROVISIONER_KEY ?? '');
  const asJson = opts.json === 'true' || opts.json === '';
  const show = (v: unknown, text: string) => out(asJson ? JSON.stringify(v) : text);
  const [noun, verb, arg] = pos;
  switch (`${noun} ${verb ?? ''}`.trim()) {
    case 'topology load':
      if (typeof opts.json !== 'string' || !opts.json) throw new Usage();
      return topologyLoad(c, opts.json);
    case 'topology info': {
      const t = await c.json('GET', '/topology');
      return show(t, formatTopology(t));
    }
    case 'cluster list': {
      const { clusters } = await c.json('GET', '/clusters');
      const rows = await Promise.all(clusters.map((id: string) => c.json('GET', `/clusters/${id}`)));
      return show({ clusters }, ['Clusters:', ...rows.map((r) => `Id:${r.id} ${r.file ? '[file]' : ''}${r.block ? '[block]' : ''}`)].join('\n'));
    }
    case 'cluster info': {
      const r = await c.json('GET', `/clusters/${arg}`);
      return show(r, `Cluster id: ${r.id}\nNodes:\n${r.nodes.join('\n')}\nVolumes:\n${r.volumes.join('\n')}\nBlock: ${r.block}\n\nFile: ${r.file}`);
    }
    case 'cluster create': {
      const r = await c.json('POST', '/clusters', { file: true, block: true });
      return show(r, `Cluster id: ${r.id}`);
    }
    case 'cluster delete':
      await c.json('DELETE', `/clusters/${arg}`);
      return out(`Cluster ${arg} deleted`);
    case 'node list': {
      const t = await c.json('GET', '/topology');
      return show(t, t.clusters.flatMap((cl: any) => cl.nodes.map((n: any) => `Id:${n.id}\tCluster:${cl.id}`)).join('\n'));
    }
    case 'node info': {
      const n = await c.json('GET', `/nodes/${arg}`);
      return show(n, [`Node Id: ${n.id}`, `State: ${n.state}`, `Cluster Id: ${n.cluster}`, `Zone: ${n.zone}`,
        `Management Hostname: ${n.hostnames.manage.join(', ')}`, `Storage Hostname: ${n.hostnames.storage.join(', ')}`, 'Devices:',
        ...n.devices.map((d: any) => `Id:${d.id}   Name:${d.name}\tState:${d.state}\tSize (GiB):${Math.round(d.storage.total / 1048576)}\tUsed (GiB):${Math.round(d.storage.used / 1048576)}\tFree (GiB):${Math.round(d.storage.free / 1048576)}\tBricks:${d.bricks.length}`)].join('\n'));
    }
    case 'node add': {
      const n = await c.async('POST', '/nodes', {
        zone: Number(opts.zone ?? 1), cluster: opts.cluster,
        hostnames: { manage: [opts['management-host-name']], storage: [opts['storage-host-name']] },
      });
      return show(n, `Node information:\nId: ${n.id}\nState: ${n.state}\nCluster Id: ${n.cluster}\nZone: ${n.zone}\nManagement Hostname ${n.hostnames.manage[0]}\nStorage Hostname ${n.hostnames.storage[0]}`);
    }
    case 'node delete':
      await c.async('DELETE', `/nodes/${arg}`);
      return out(`Node ${arg} deleted`);
    case 'device add':
      if (!opts.name || !opts.node) throw new Usage();
      await c.async('POST', '/devices', { name: opts.name, node: opts.node, destroydata: !!opts['destroy-existing-data'] });
      return out('Device added successfully');
    case 'device info': {
      const d = await c.json('GET', `/devices/${arg}`);
      return show(d, [`Device Id: ${d.id}`, `Name: ${d.name}`, `State: ${d.state}`, `Size (GiB): ${Math.round(d.storage.total / 1048576)}`,
        `Used (GiB): ${Math.round(d.storage.used / 1048576)}`, `Free (GiB): ${Math.round(d.storage.free / 1048576)}`, 'Bricks:',
        ...d.bricks.map((b: any) => `Id:${b.id}   Size (GiB):${Math.round(b.size / 1048576)}\tPath: ${b.path}`)].join('\n'));
    }
    case 'device delete':
      await c.async('DELETE', `/devices/${arg}`);
      return out(`Device ${arg} deleted`);
    case 'device resync':
      await c.async('GET', `/devices/${arg}/resync`);
      return out('Device updated');
    case 'volume create': {
      const size = Number(opts.size);
      if (!opts.size || !Number.isInteger(size)) throw new Usage();
      const replica = opts.replica === undefined ? undefined : Number(opts.replica);
      const type = (opts.durability as string) ?? (replica === undefined ? 'replicate' : replica > 1 ? 'replicate' : 'none');
      const req = {
        size, ...(opts.name ? { name: opts.name } : {}),
        durability: { type, ...(type === 'replicate' ? { replicate: { replica: replica ?? 3 } } : {}) },
        ...(opts.clusters ? { clusters: String(opts.clusters).split(',') } : {}),
      };
      const v = await c.async('POST', '/volumes', req);
      return show(v, formatVolume(v));
    }
    case 'volume list': {
      const { volumes } = await c.json('GET', '/volumes');
      const rows = await Promise.all(volumes.map((id: string) => c.json('GET', `/volumes/${id}`)));
      return show({ volumes }, rows.map((v) => `Id:${v.id}    Cluster:${v.cluster}    Name:${v.name}`).join('\n'));
    }
    case 'volume info': {
      const v = await c.json('GET', `/volumes/${await resolveVolume(c, arg)}`);
      return show(v, formatVolume(v));
    }
    case 'volume delete': {
      const id = await resolveVolume(c, arg);
      await c.async('DELETE', `/volumes/${id}`);
      return out(`Volume ${id} deleted`);
    }
    case 'volume expand': {
      const v = await c.async('POST', `/volumes/${await resolveVolume(c, opts.volume as string)}/expand`, { expand_size: Number(opts['expand-size']) });
      return show(v, formatVolume(v));
    }
    case 'db check': {
      const r = await c.json('GET', '/db/check');
      return show(r, r.ok ? 'db check: clean' : `db check: ${r.problems.length} problem(s)\n${r.problems.join('\n')}`);
    }
    default:
      throw new Usage();
  }
}

// heketi-cli's --json is both the output switch and topology load's --json=FILE.
const argv = process.argv.slice(2).map((a, i, all) => (a === '--json' && !/\.json$/.test(all[i + 1] ?? '') ? '--json=true' : a));

run(argv).catch((e) => {
  if (e instanceof Usage || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`${e instanceof Usage ? '' : `${(e as Error).message}\n`}${USAGE}\n`);
    process.exit(2);
  }
  process.stderr.write(`Error: ${(e as Error).message}\n`);
  process.exit(1);
});
