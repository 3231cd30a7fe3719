// Clusters, nodes and devices: what Heketi's app_cluster.go, app_node.go and app_device.go do.
// Adding a node joins its gfsd to the cluster's trusted pool; adding a device asks the node's gfsd
// to set it up and records the space it can give out.
import { badRequest, conflict, notFound } from './errors.js';
import type { ClusterRec, DeviceRec, EntryState, NodeRec } from './db.js';
import type { Provisioner } from './provisioner.js';
import { newId } from './queue.js';

const DEVICE_RE = /^\/[a-zA-Z0-9_.:/-]+$/;
const STATES: EntryState[] = ['online', 'offline', 'failed'];

export function clusterCreate(p: Provisioner, req: { file?: boolean; block?: boolean }): ClusterRec {
  const c: ClusterRec = { id: newId(), nodes: [], volumes: [], file: req.file ?? true, block: req.block ?? true };
  p.db.transaction(() => p.db.put('cluster', c));
  return c;
}

export function clusterDelete(p: Provisioner, id: string): void {
  const c = p.db.get('cluster', id);
  if (!c) throw notFound();
  if (c.nodes.length || c.volumes.length) throw conflict(`Unable to delete cluster [${id}] because it contains volumes and/or nodes`);
  p.db.transaction(() => p.db.remove('cluster', id));
}

export function clusterSetFlags(p: Provisioner, id: string, req: { file?: boolean; block?: boolean }): void {
  const c = p.db.get('cluster', id);
  if (!c) throw notFound();
  p.db.transaction(() => p.db.put('cluster', { ...c, file: !!req.file, block: !!req.block }));
}

interface NodeAddReq { zone?: number; hostnames?: { manage?: string[]; storage?: string[] }; cluster?: string; tags?: Record<string, string> }

/** Checks synchronously (400/404/409), then joins the node in the background; returns the queue url. */
export function nodeAdd(p: Provisioner, req: NodeAddReq): string {
  const manage = req.hostnames?.manage ?? [];
  const storage = req.hostnames?.storage ?? [];
  if (!manage.length) throw badRequest('Manage hostname missing');
  if (!storage.length) throw badRequest('Storage hostname missing');
  if (!req.zone || req.zone < 1) throw badRequest('Zone cannot be zero or value is missing');
  if ([...manage, ...storage].some((h) => !h)) throw badRequest('Hostname cannot be an empty string');
  const cluster = req.cluster ?? '';
  if (!p.db.get('cluster', cluster)) throw notFound('Cluster id does not exist');
  for (const n of p.db.list('node')) {
    if (n.hostnames.manage.some((h) => manage.includes(h)) || n.hostnames.storage.some((h) => storage.includes(h))) {
      throw conflict(`Hostname ${manage[0]} already used by node ${n.id}`);
    }
  }
  const node: NodeRec = {
    id: newId(), cluster, zone: req.zone, hostnames: { manage, storage }, state: 'online', devices: [], ...(req.tags ? { tags: req.tags } : {}),
  };
  return p.async('node add', async () => {
    await p.ex.hello(node);
    const peer = p.clusterNodes(cluster)[0];
    if (peer) await p.ex.peerProbe(peer, node);
    p.db.transaction(() => {
      const c = p.db.must('cluster', cluster);
      p.db.put('cluster', { ...c, nodes: [...c.nodes, node.id] });
      p.db.put('node', node);
    });
    p.log.info({ node: node.id, host: manage[0] }, 'node added');
    return `/nodes/${node.id}`;
  });
}

export function nodeDelete(p: Provisioner, id: string): string {
  const n = p.db.get('node', id);
  if (!n) throw notFound();
  if (n.devices.length) throw conflict(`Unable to delete node [${id}] because it contains devices`);
  return p.async('node delete', async () => {
    const peer = p.clusterNodes(n.cluster).find((m) => m.id !== id);
    if (peer) await p.ex.peerDetach(peer, n);
    p.db.transaction(() => {
      const c = p.db.get('cluster', n.cluster);
      if (c) p.db.put('cluster', { ...c, nodes: c.nodes.filter((x) => x !== id) });
      p.db.remove('node', id);
    });
  });
}

function checkState(req: { state?: string }): EntryState {
  if (!STATES.includes(req.state as EntryState)) throw badRequest(`validation failed: state: ${req.state} is not valid state.`);
  return req.state as EntryState;
}

export function nodeSetState(p: Provisioner, id: string, req: { state?: string }): string {
  const state = checkState(req);
  if (!p.db.get('node', id)) throw notFound();
  return p.async('node state', async () => {
    p.db.transaction(() => p.db.put('node', { ...p.db.must('node', id), state }));
  });
}

interface DeviceAddReq { name?: string; node?: string; destroydata?: boolean; tags?: Record<string, string> }

export function deviceAdd(p: Provisioner, req: DeviceAddReq): string {
  const name = req.name ?? '';
  if (!DEVICE_RE.test(name)) throw badRequest(`validation failed: name: must be in a valid format.`);
  const node = p.db.get('node', req.node ?? '');
  if (!node) throw notFound('Node id does not exist');
  for (const d of node.devices.map((x) => p.db.get('device', x))) {
    if (d?.name === name) throw conflict(`Device ${name} is already used on node ${node.id}`);
  }
  const dev: DeviceRec = {
    id: newId(), node: node.id, name, state: 'online', storage: { total: 0, free: 0, used: 0 }, bricks: [], ...(req.tags ? { tags: req.tags } : {}),
  };
  return p.async('device add', async () => {
    const { free } = await p.ex.deviceSetup(node, dev, !!req.destroydata);
    p.db.transaction(() => {
      const n = p.db.must('node', node.id);
      p.db.put('node', { ...n, devices: [...n.devices, dev.id] });
      p.db.put('device', { ...dev, storage: { total: free, free, used: 0 } });
    });
    p.log.info({ device: dev.id, node: node.id, name, kib: free }, 'device added');
  });
}

export function deviceDelete(p: Provisioner, id: string): string {
  const d = p.db.get('device', id);
  if (!d) throw notFound();
  if (d.bricks.length) throw conflict(`Unable to delete device [${id}] because it contains bricks`);
  return p.async('device delete', async () => {
    await p.ex.deviceTeardown(p.db.must('node', d.node), d);
    p.db.transaction(() => {
      const n = p.db.get('node', d.node);
      if (n) p.db.put('node', { ...n, devices: n.devices.filter((x) => x !== id) });
      p.db.remove('device', id);
    });
  });
}

export function deviceSetState(p: Provisioner, id: string, req: { state?: string }): string {
  const state = checkState(req);
  if (!p.db.get('device', id)) throw notFound();
  return p.async('device state', async () => {
    p.db.transaction(() => p.db.put('device', { ...p.db.must('device', id), state }));
  });
}

/** Asks the node again how much the device can give out (Heketi's resync after growing a disk). */
export function deviceResync(p: Provisioner, id: string): string {
  const d = p.db.get('device', id);
  if (!d) throw notFound();
  return p.async('device resync', async () => {
    const { free } = await p.ex.deviceSetup(p.db.must('node', d.node), d, false);
    p.db.transaction(() => {
      const cur = p.db.must('device', id);
      // Sparse brick images hold little of their size yet, so the file system's free space only
      // tells of growth: the total never shrinks below what was recorded.
      const total = Math.max(cur.storage.total, free);
      p.db.put('device', { ...cur, storage: { total, free: total - cur.storage.used, used: cur.storage.used } });
    });
  });
}
