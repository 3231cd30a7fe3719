// The JSON shapes of Heketi's API (pkg/glusterfs/api/types.go) built from the db records.
import { DEFAULT_MGMT_PORT } from '../mgmt/types.js';
import { parseHostPort } from '../mgmt/types.js';
import type { BrickRec, ClusterRec, Db, DeviceRec, NodeRec, VolumeRec } from './db.js';

export function brickInfo(b: BrickRec): object {
  return { id: b.id, path: b.path, device: b.device, node: b.node, volume: b.volume, size: b.size };
}

export function deviceInfo(db: Db, d: DeviceRec): object {
  return {
    name: d.name, ...(d.tags ? { tags: d.tags } : {}), storage: { ...d.storage }, id: d.id, state: d.state,
    bricks: d.bricks.map((id) => db.get('brick', id)).filter((b): b is BrickRec => !!b).map(brickInfo),
  };
}

export function nodeInfo(db: Db, n: NodeRec): object {
  return {
    zone: n.zone, hostnames: n.hostnames, cluster: n.cluster, ...(n.tags ? { tags: n.tags } : {}), id: n.id, state: n.state,
    devices: n.devices.map((id) => db.get('device', id)).filter((d): d is DeviceRec => !!d).map((d) => deviceInfo(db, d)),
  };
}

export function clusterInfo(c: ClusterRec): object {
  return { id: c.id, nodes: [...c.nodes].sort(), volumes: [...c.volumes].sort(), block: c.block, file: c.file, blockvolumes: [] };
}

/** The address clients mount: storage host, gfsd port when not the default, volume name. */
export function mountHosts(db: Db, v: VolumeRec, defaultPort: number): { hosts: string[]; port: number } {
  const c = db.get('cluster', v.cluster);
  const brickNodes = v.bricks.map((id) => db.get('brick', id)?.node).filter((x): x is string => !!x);
  const order = [...new Set([...brickNodes, ...(c?.nodes ?? [])])];
  const nodes = order.map((id) => db.get('node', id)).filter((n): n is NodeRec => !!n && n.state === 'online');
  const port = nodes[0] ? parseHostPort(nodes[0].hostnames.manage[0], defaultPort).port : defaultPort;
  return { hosts: nodes.map((n) => n.hostnames.storage[0]), port };
}

export function volumeInfo(db: Db, v: VolumeRec, defaultPort: number): object {
  const { hosts, port } = mountHosts(db, v, defaultPort);
  const first = hosts[0] ?? '';
  const device = `${first}${port !== DEFAULT_MGMT_PORT ? `:${port}` : ''}:${v.name}`;
  return {
    size: v.size, name: v.name, durability: v.durability, gid: v.gid, glustervolumeoptions: v.glustervolumeoptions,
    snapshot: v.snapshot, id: v.id, cluster: v.cluster,
    mount: { glusterfs: { hosts, device, options: { 'backup-volfile-servers': hosts.slice(1).join(':') } } },
    blockinfo: {},
    bricks: v.bricks.map((id) => db.get('brick', id)).filter((b): b is BrickRec => !!b).map(brickInfo),
  };
}

export function topologyInfo(db: Db, defaultPort: number): object {
  return {
    clusters: db.list('cluster').map((c) => ({
      volumes: c.volumes.map((id) => db.get('volume', id)).filter((v): v is VolumeRec => !!v).map((v) => volumeInfo(db, v, defaultPort)),
      nodes: c.nodes.map((id) => db.get('node', id)).filter((n): n is NodeRec => !!n).map((n) => nodeInfo(db, n)),
      id: c.id, block: c.block, file: c.file,
    })),
  };
}
