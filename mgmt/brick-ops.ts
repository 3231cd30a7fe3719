// Changing one brick of a volume, as gluster does: `volume reset-brick VOL H:B start` takes the
// brick offline (to swap its disk); `reset-brick VOL H:B H:B commit force` marks the (new, maybe
// empty) directory as the volume's again and starts it; `replace-brick VOL H:OLD H:NEW commit force`
// moves a brick to another directory or node. A full heal (`volume heal VOL full`) then rebuilds it.
// The self-heal daemons of the volume restart so they see the new brick; mounted clients pick the
// changed spec up when they next poll for it.
import { mkdirSync } from 'node:fs';
import { posix } from 'node:path';
import { setAttributeSync } from '@napi-rs/xattr';
import { gfidToBytes } from '../common/gfid.js';
import { checkBrickDir, readVolumeId, VOLUME_ID_XATTR } from './brick-dirs.js';
import { invalid, notFound, precondition } from './errors.js';
import { LONG_TIMEOUT_MS, type Node } from './node.js';
import { getVolume } from './volume-ops.js';
import { brickName, type BrickDef, type Member, type VolumeDef } from './types.js';

export interface ResetBrickReq { name: string; source: string; target: string; action: string; force: boolean }
export interface ReplaceBrickReq { name: string; source: string; target: string; force: boolean }

function parseBrick(text: string): { host: string; path: string } {
  const i = text.indexOf(':');
  const path = i > 0 ? posix.normalize(text.slice(i + 1)).replace(/(.)\/$/, '$1') : '';
  if (i <= 0 || !path.startsWith('/')) throw invalid(`wrong brick type: ${text}, use <HOSTNAME>:<export-dir-abs-path>`);
  return { host: text.slice(0, i), path };
}

function findBrick(v: VolumeDef, text: string): { index: number; brick: BrickDef } {
  const { host, path } = parseBrick(text);
  const index = v.bricks.findIndex((b) => b.host === host && b.path === path);
  if (index < 0) throw notFound(`Incorrect source brick ${text} for volume ${v.name}`);
  return { index, brick: v.bricks[index] };
}

function owner(node: Node, b: BrickDef): Member {
  const m = node.member(b.nodeUuid);
  if (!m) throw precondition(`Host ${b.host} is not in 'Peer in Cluster' state`);
  return m;
}

async function mustReach(node: Node, m: Member): Promise<void> {
  if (!(await node.reachable(m))) throw precondition(`Host ${m.hostname} is not in 'Peer in Cluster' state`);
}

/** Restarts the self-heal daemon on every owner of the volume that answers, so it loads the new spec. */
async function restartShds(node: Node, v: VolumeDef): Promise<void> {
  await Promise.allSettled(node.owners(v).map((m) => node.on(m, () => restartShdLocal(node, { volume: v.name }), 'RestartShd', { volume: v.name }, LONG_TIMEOUT_MS)));
}

export async function resetBrick(node: Node, req: ResetBrickReq): Promise<void> {
  const v = getVolume(node, req.name);
  const { brick } = findBrick(v, req.source);
  const m = owner(node, brick);
  await mustReach(node, m);
  const r = { volume: v.name, paths: [brick.path] };
  if (req.action === 'start') {
    await node.on(m, () => stopBrickLocal(node, r), 'StopBrick', r, LONG_TIMEOUT_MS);
    return;
  }
  if (req.action !== 'commit') throw invalid(`unknown reset-brick action ${req.action} (use start or commit force)`);
  if (req.target !== req.source) {
    throw invalid('When destination brick is new, please use gfs volume replace-brick <VOLNAME> <SOURCE-BRICK> <NEW-BRICK> commit force');
  }
  if (!req.force) throw invalid('reset-brick commit needs force: gfs volume reset-brick <VOLNAME> <SOURCE-BRICK> <SOURCE-BRICK> commit force');
  await node.on(m, () => resetBrickLocal(node, r), 'ResetBrick', r, LONG_TIMEOUT_MS);
  await node.publish({ ...v, version: v.version + 1 });
  if (v.status === 'Started') await restartShds(node, v);
}

export async function replaceBrick(node: Node, req: ReplaceBrickReq): Promise<void> {
  const v = getVolume(node, req.name);
  if (!req.force) throw invalid('replace-brick is supported only with commit force');
  const { index, brick } = findBrick(v, req.source);
  const { host, path } = parseBrick(req.target);
  const dst = node.memberByHost(host);
  if (!dst) throw precondition(`Host ${host} is not in 'Peer in Cluster' state`);
  for (const other of node.store.listVolumes()) {
    if (other.bricks.some((b) => b.nodeUuid === dst.uuid && b.path === path)) throw precondition(`${brickName({ host, path })} is already part of a volume`);
  }
  await mustReach(node, dst);
  const stage = { volume: v.name, volume_id: v.id, paths: [path], force: true };
  await node.on(dst, () => { checkBrickDir(dst.hostname, path, true); return {}; }, 'StageBricks', stage);
  const src = owner(node, brick);
  if (await node.reachable(src)) {
    const r = { volume: v.name, paths: [brick.path] };
    await node.on(src, () => stopBrickLocal(node, r), 'StopBrick', r, LONG_TIMEOUT_MS);
  }
  const bricks = v.bricks.slice();
  bricks[index] = { host, path, nodeUuid: dst.uuid, ...(brick.arbiter ? { arbiter: true } : {}) };
  const next: VolumeDef = { ...v, bricks, version: v.version + 1 };
  await node.publish(next);
  const r = { volume: v.name, paths: [path] };
  await node.on(dst, () => resetBrickLocal(node, r), 'ResetBrick', r, LONG_TIMEOUT_MS);
  if (v.status === 'Started') await restartShds(node, next);
}

// --- the steps the owning node runs ---

interface LocalReq { volume?: string; paths?: string[] }

export async function stopBrickLocal(node: Node, r: LocalReq): Promise<Record<string, never>> {
  const v = getVolume(node, r.volume!);
  for (const p of r.paths ?? []) await node.bricks.stop(v, p);
  return {};
}

/** Stops the brick, (re)marks its directory as the volume's (a new disk comes empty) and, if the
 * volume is started, starts it again. A directory of another volume is refused. */
export async function resetBrickLocal(node: Node, r: LocalReq): Promise<Record<string, never>> {
  const v = getVolume(node, r.volume!);
  for (const p of r.paths ?? []) {
    if (!node.localPaths(v).includes(p)) throw notFound(`Brick ${node.self.hostname}:${p} is not part of volume ${v.name} on this node`);
    await node.bricks.stop(v, p);
    mkdirSync(p, { recursive: true });
    const have = readVolumeId(p);
    if (have && have !== v.id) throw precondition(`${node.self.hostname}:${p} is already part of a volume`);
    if (!have) setAttributeSync(p, VOLUME_ID_XATTR, gfidToBytes(v.id));
    if (v.status === 'Started') await node.bricks.start(v, p);
  }
  if (v.status === 'Started') await node.shd.start(v);
  return {};
}

export async function restartShdLocal(node: Node, r: LocalReq): Promise<Record<string, never>> {
  const v = getVolume(node, r.volume!);
  await node.shd.stop(v);
  if (v.status === 'Started' && node.localPaths(v).length) await node.shd.start(v);
  return {};
}
