// Volumes by size: create, expand and delete as pending operations written to the db before any
// node is touched, so that a crash leaves nothing the db does not know about; recover() on start
// rolls back unfinished creates and expands and finishes unfinished deletes. The gfs volume is made
// to match the db by ensureGfsVolume (create/start, or recreate when its bricks differ).
import { badRequest, HttpError } from './errors.js';
import type { BrickRec, DeviceRec, Durability, PendingOp, VolumeRec } from './db.js';
import { place, type DeviceSlot } from './placement.js';
import type { Provisioner } from './provisioner.js';
import { newId } from './queue.js';

const VOLNAME_RE = /^[a-zA-Z0-9_-]+$/;

export interface VolumeCreateReq {
  size?: number; name?: string; clusters?: string[]; gid?: number; glustervolumeoptions?: string[];
  durability?: { type?: string; replicate?: { replica?: number }; disperse?: { data?: number; redundancy?: number } };
  snapshot?: { enable?: boolean; factor?: number }; block?: boolean;
}

function replicaOf(v: VolumeRec): number {
  return v.durability.type === 'replicate' ? v.durability.replicate.replica : 1;
}

/** The free space placement may use: online devices of online nodes of the cluster. */
function slots(p: Provisioner, clusterId: string): DeviceSlot[] {
  const out: DeviceSlot[] = [];
  for (const n of p.clusterNodes(clusterId)) {
    for (const d of n.devices.map((id) => p.db.get('device', id))) {
      if (d && d.state === 'online') out.push({ id: d.id, node: n.id, zone: n.zone, free: d.storage.free });
    }
  }
  return out;
}

/** Validates as Heketi's VolumeCreate handler does (400s); returns the queue url. */
export function volumeCreate(p: Provisioner, req: VolumeCreateReq): string {
  if (typeof req.size !== 'number' || !Number.isInteger(req.size) || req.size < 1) throw badRequest('Invalid volume size');
  if (req.name !== undefined && req.name !== '' && !VOLNAME_RE.test(req.name)) throw badRequest('validation failed: name: must be in a valid format.');
  if ((req.gid ?? 0) < 0) throw badRequest('Bad group id less than zero');
  const type = req.durability?.type || 'none';
  let durability: Durability;
  if (type === 'none') durability = { type: 'none', replicate: {}, disperse: {} };
  else if (type === 'replicate') {
    const replica = req.durability?.replicate?.replica || 3;
    if (replica > 3 || replica < 1) throw badRequest('Invalid replica value');
    durability = { type: 'replicate', replicate: { replica }, disperse: {} };
  } else if (type === 'disperse') throw badRequest('disperse volumes are not supported yet');
  else throw badRequest('Unknown durability type');
  if (req.block) throw badRequest('block volumes are not supported');
  const clusters = p.db.list('cluster').filter((c) => c.file);
  if (!p.db.list('cluster').length) throw badRequest('No clusters configured');
  for (const id of req.clusters ?? []) if (!p.db.get('cluster', id)) throw badRequest(`Cluster id ${id} not found`);
  if (req.name && p.db.list('volume').some((v) => v.name === req.name)) throw new HttpError(409, `Name ${req.name} already in use`);
  const candidates = req.clusters?.length ? req.clusters : clusters.map((c) => c.id);

  return p.async('volume create', async () => {
    const id = newId();
    const vol: VolumeRec = {
      id, name: req.name || `vol_${id}`, cluster: '', size: req.size!, durability, gid: req.gid ?? 0,
      glustervolumeoptions: req.glustervolumeoptions ?? [], snapshot: { enable: !!req.snapshot?.enable, factor: req.snapshot?.factor ?? 1 }, bricks: [],
    };
    if (p.db.list('volume').some((v) => v.name === vol.name)) throw new Error(`Name ${vol.name} already in use`);
    const op = reserve(p, vol, candidates, vol.size, 'create-volume');
    await p.step('reserved');
    await build(p, op);
    return `/volumes/${vol.id}`;
  });
}

/** Places bricks for sizeGb and writes them, the volume and the pending operation in one transaction. */
function reserve(p: Provisioner, vol: VolumeRec, clusters: string[], sizeGb: number, type: PendingOp['type']): PendingOp {
  const limits = { brickMinGb: p.cfg.glusterfs.brick_min_size_gb, brickMaxGb: p.cfg.glusterfs.brick_max_size_gb, maxBricks: p.cfg.glusterfs.max_bricks_per_volume };
  let lastErr: unknown;
  for (const clusterId of clusters) {
    const made = p.db.transaction((): PendingOp | undefined => {
      let placement;
      try {
        placement = place(slots(p, clusterId), sizeGb, replicaOf(vol), { ...limits, maxBricks: limits.maxBricks - vol.bricks.length });
      } catch (e) {
        lastErr = e;
        return undefined;
      }
      const op: PendingOp = { id: newId(), type, volume: vol.id, bricks: [], started: new Date().toISOString(), ...(type === 'expand-volume' ? { oldSize: vol.size } : {}) };
      for (const set of placement.sets) {
        for (const devId of set) {
          const d = p.db.must('device', devId);
          const b: BrickRec = { id: newId(), device: d.id, node: d.node, volume: vol.id, size: placement.brickKiB, path: '', pending: op.id };
          p.db.put('brick', b);
          p.db.put('device', { ...d, bricks: [...d.bricks, b.id], storage: { ...d.storage, free: d.storage.free - b.size, used: d.storage.used + b.size } });
          op.bricks.push(b.id);
        }
      }
      const next: VolumeRec = { ...vol, cluster: clusterId, bricks: [...vol.bricks, ...op.bricks], pending: op.id, size: type === 'expand-volume' ? vol.size + sizeGb : vol.size };
      p.db.put('volume', next);
      if (type === 'create-volume') {
        const c = p.db.must('cluster', clusterId);
        p.db.put('cluster', { ...c, volumes: [...c.volumes, vol.id] });
      }
      p.db.put('op', op);
      p.log.info({ op: op.id, type, volume: vol.name, sets: placement.sets.length, brickKiB: placement.brickKiB }, 'bricks reserved');
      return op;
    });
    if (made) return made;
  }
  throw lastErr ?? new Error('No clusters configured');
}

/** Carves the operation's bricks and makes the gfs volume match; rolls back on failure. */
async function build(p: Provisioner, op: PendingOp): Promise<void> {
  try {
    for (const [i, bid] of op.bricks.entries()) {
      const b = p.db.must('brick', bid);
      const path = await p.ex.brickCarve(p.db.must('node', b.node), p.db.must('device', b.device), b.id, b.size);
      p.db.transaction(() => p.db.put('brick', { ...p.db.must('brick', bid), path }));
      if (i === 0) await p.step('carved');
    }
    await ensureGfsVolume(p, p.db.must('volume', op.volume));
    p.db.transaction(() => {
      const v = p.db.must('volume', op.volume);
      const { pending: _v, ...vol } = v;
      p.db.put('volume', vol);
      for (const bid of op.bricks) {
        const { pending: _b, ...b } = p.db.must('brick', bid);
        p.db.put('brick', b);
      }
      p.db.remove('op', op.id);
    });
    p.log.info({ op: op.id, volume: op.volume }, `${op.type} done`);
  } catch (e) {
    p.log.warn({ op: op.id, err: (e as Error).message }, `${op.type} failed; rolling back`);
    await rollback(p, op).catch((re) => {
      p.log.error({ op: op.id, err: (re as Error).message }, 'rollback failed; the operation stays pending');
      p.db.transaction(() => {
        const cur = p.db.get('op', op.id);
        if (cur) p.db.put('op', { ...cur, lastError: (re as Error).message });
      });
    });
    throw e;
  }
}

function brickAddress(p: Provisioner, b: BrickRec): string {
  return `${p.db.must('node', b.node).hostnames.storage[0]}:${b.path}`;
}

/** Makes the cluster's gfs volume exist, started, with exactly the volume's bricks. */
async function ensureGfsVolume(p: Provisioner, v: VolumeRec): Promise<void> {
  const want = v.bricks.map((id) => brickAddress(p, p.db.must('brick', id)));
  await p.onCluster(v.cluster, async (n) => {
    let have = (await p.ex.volumes(n)).get(v.name);
    if (have && have.bricks.join(' ') !== want.join(' ')) {
      if (have.status === 'Started') await p.ex.volumeStop(n, v.name);
      await p.ex.volumeDelete(n, v.name);
      have = undefined;
    }
    if (!have) {
      await p.ex.volumeCreate(n, v.name, replicaOf(v), want);
      await p.step('created');
    }
    if (have?.status !== 'Started') await p.ex.volumeStart(n, v.name);
  }, v);
}

/** Stops and deletes the cluster's gfs volume of that name, if there is one. */
async function removeGfsVolume(p: Provisioner, v: VolumeRec): Promise<void> {
  await p.onCluster(v.cluster, async (n) => {
    const have = (await p.ex.volumes(n)).get(v.name);
    if (!have) return;
    if (have.status === 'Started') await p.ex.volumeStop(n, v.name);
    await p.ex.volumeDelete(n, v.name);
  }, v);
}

async function removeBricks(p: Provisioner, ids: string[]): Promise<void> {
  for (const bid of ids) {
    const b = p.db.get('brick', bid);
    if (!b) continue;
    const node = p.db.get('node', b.node);
    const dev = p.db.get('device', b.device);
    if (node && dev) await p.ex.brickRemove(node, dev, b.id);
  }
}

/** Forgets bricks and gives their space back, in the caller's transaction. */
function forgetBricks(p: Provisioner, ids: string[]): void {
  for (const bid of ids) {
    const b = p.db.get('brick', bid);
    if (!b) continue;
    const d = p.db.get('device', b.device);
    if (d) {
      p.db.put('device', { ...d, bricks: d.bricks.filter((x) => x !== bid), storage: { ...d.storage, free: d.storage.free + b.size, used: d.storage.used - b.size } } as DeviceRec);
    }
    p.db.remove('brick', bid);
  }
}

/** Undoes a create or an expand: the volume as it was before (or gone), its new bricks removed. */
async function rollback(p: Provisioner, op: PendingOp): Promise<void> {
  const v = p.db.get('volume', op.volume);
  if (v && op.type === 'create-volume') await removeGfsVolume(p, v);
  if (v && op.type === 'expand-volume') await ensureGfsVolume(p, { ...v, bricks: v.bricks.filter((b) => !op.bricks.includes(b)) });
  await removeBricks(p, op.bricks);
  p.db.transaction(() => {
    forgetBricks(p, op.bricks);
    const cur = p.db.get('volume', op.volume);
    if (cur && op.type === 'create-volume') {
      p.db.remove('volume', cur.id);
      const c = p.db.get('cluster', cur.cluster);
      if (c) p.db.put('cluster', { ...c, volumes: c.volumes.filter((x) => x !== cur.id) });
    } else if (cur) {
      const { pending: _p, ...rest } = cur;
      p.db.put('volume', { ...rest, bricks: cur.bricks.filter((b) => !op.bricks.includes(b)), size: op.oldSize ?? cur.size });
    }
    p.db.remove('op', op.id);
  });
  p.log.info({ op: op.id, volume: op.volume }, `${op.type} rolled back`);
}

export function volumeDelete(p: Provisioner, id: string): string {
  const v = p.db.get('volume', id);
  if (!v) throw new HttpError(404, 'Id not found');
  if (v.pending) throw new HttpError(409, `The target exists, contains other items, or is in use: volume ${id} has a pending operation`);
  return p.async('volume delete', async () => {
    const cur = p.db.get('volume', id);
    if (!cur) throw new Error('Id not found');
    if (cur.pending) throw new Error(`volume ${id} has a pending operation`);
    const op: PendingOp = { id: newId(), type: 'delete-volume', volume: id, bricks: [...cur.bricks], started: new Date().toISOString() };
    p.db.transaction(() => {
      p.db.put('op', op);
      p.db.put('volume', { ...cur, pending: op.id });
    });
    await finishDelete(p, op);
  });
}

async function finishDelete(p: Provisioner, op: PendingOp): Promise<void> {
  const v = p.db.get('volume', op.volume);
  if (v) await removeGfsVolume(p, v);
  await p.step('volume-removed');
  await removeBricks(p, op.bricks);
  p.db.transaction(() => {
    forgetBricks(p, op.bricks);
    const cur = p.db.get('volume', op.volume);
    if (cur) {
      p.db.remove('volume', cur.id);
      const c = p.db.get('cluster', cur.cluster);
      if (c) p.db.put('cluster', { ...c, volumes: c.volumes.filter((x) => x !== cur.id) });
    }
    p.db.remove('op', op.id);
  });
  p.log.info({ op: op.id, volume: op.volume }, 'volume deleted');
}

/** Adds sets for expand_size GiB; the gfs volume is recreated over all bricks (data stays on them). */
export function volumeExpand(p: Provisioner, id: string, req: { expand_size?: number }): string {
  if (typeof req.expand_size !== 'number' || !Number.isInteger(req.expand_size) || req.expand_size < 1) throw badRequest('Invalid volume size');
  const v = p.db.get('volume', id);
  if (!v) throw new HttpError(404, 'Id not found');
  if (v.pending) throw new HttpError(409, `volume ${id} has a pending operation`);
  return p.async('volume expand', async () => {
    const cur = p.db.must('volume', id);
    const op = reserve(p, cur, [cur.cluster], req.expand_size!, 'expand-volume');
    await build(p, op);
    return `/volumes/${id}`;
  });
}

/** On start: every operation a crash left pending is rolled back (create, expand) or finished (delete). */
export async function recover(p: Provisioner): Promise<void> {
  for (const op of p.db.list('op')) {
    p.log.warn({ op: op.id, type: op.type, volume: op.volume }, 'pending operation found; recovering');
    try {
      if (op.type === 'delete-volume') await finishDelete(p, op);
      else await rollback(p, op);
    } catch (e) {
      p.log.error({ op: op.id, err: (e as Error).message }, 'recovery failed; the operation stays pending');
      p.db.transaction(() => {
        const cur = p.db.get('op', op.id);
        if (cur) p.db.put('op', { ...cur, lastError: (e as Error).message });
      });
    }
  }
}

