// Volume commands as the node the CLI talks to runs them (create, start, stop, delete, set, info,
// status, list), and the steps each brick-owning node runs for them (the *Local functions).
import { randomBytes, randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import { checkBrickDir, commitBrickDirs, releaseBrickDirs } from './brick-dirs.js';
import { exists, invalid, MgmtError, notFound, precondition } from './errors.js';
import { LONG_TIMEOUT_MS, type Node } from './node.js';
import { checkVolumeOption } from './vol-options.js';
import { needsShd } from './shd.js';
import { checkLayout, isSupported, unsupportedMessage, volumeType } from './volgen.js';
import { brickName, type BrickDef, type Member, type VolumeDef } from './types.js';

export interface CreateReq {
  name: string; stripe: number; replica: number; arbiter: number; transport: string; bricks: string[]; force: boolean;
}

export interface BrickStatusRow { host: string; path: string; port: number; online: boolean; pid: number }

const VOLNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function getVolume(node: Node, name: string): VolumeDef {
  const v = node.store.getVolume(name);
  if (!v) throw notFound(`Volume ${name} does not exist`);
  return v;
}

function parseBrick(text: string): { host: string; path: string } {
  const i = text.indexOf(':');
  const host = i > 0 ? text.slice(0, i) : '';
  const raw = i > 0 ? text.slice(i + 1) : '';
  if (!host || !raw.startsWith('/')) throw invalid(`wrong brick type: ${text}, use <HOSTNAME>:<export-dir-abs-path>`);
  let path = posix.normalize(raw);
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return { host, path };
}

/** Every member must answer before a volume changes (gluster takes a lock on each). */
async function requireConnected(node: Node, members: Member[]): Promise<void> {
  const down = (await Promise.all(members.map(async (m) => ((await node.reachable(m)) ? undefined : m)))).find(Boolean);
  if (down) throw precondition(`Host ${down.hostname} is not in 'Peer in Cluster' state`);
}

export async function volumeCreate(node: Node, req: CreateReq): Promise<void> {
  const { name } = req;
  if (!VOLNAME_RE.test(name) || name === 'all') {
    throw invalid(`Invalid volume name ${name}: use letters, digits, '_' and '-', start with a letter or digit, at most 64 characters`);
  }
  if (node.store.getVolume(name)) throw exists(`Volume ${name} already exists`);
  if (req.transport && req.transport !== 'tcp') throw invalid(`transport ${req.transport} is not supported (use tcp)`);
  const layout = checkLayout(req, req.bricks.length);
  const type = volumeType(layout, req.bricks.length);
  if (!isSupported(type)) throw invalid(unsupportedMessage(type));

  const bricks: BrickDef[] = [];
  const seen = new Set<string>();
  for (const [i, text] of req.bricks.entries()) {
    const { host, path } = parseBrick(text);
    const id = brickName({ host, path });
    if (seen.has(id)) throw invalid(`Found duplicate brick ${id} in the command`);
    seen.add(id);
    const m = node.memberByHost(host);
    if (!m) throw precondition(`Host ${host} is not in 'Peer in Cluster' state`);
    for (const v of node.store.listVolumes()) {
      if (v.bricks.some((b) => b.nodeUuid === m.uuid && b.path === path)) throw precondition(`${id} is already part of a volume`);
    }
    const arbiter = layout.arbiter > 0 && i % layout.replica === layout.replica - 1;
    bricks.push({ host, path, nodeUuid: m.uuid, ...(arbiter ? { arbiter: true } : {}) });
  }
  // gluster refuses replica sets with two bricks on one server unless forced.
  if (layout.replica > 1 && !req.force) {
    for (let g = 0; g < bricks.length; g += layout.replica) {
      const set = bricks.slice(g, g + layout.replica).map((b) => b.nodeUuid);
      if (new Set(set).size < set.length) {
        throw invalid('Multiple bricks of a replicate volume are present on the same server. This setup is not optimal. Bricks should be on different nodes to have best fault tolerant configuration. Use \'force\' at the end of the command if you want to override this behavior.');
      }
    }
  }
  const def: VolumeDef = {
    name, id: randomUUID(), status: 'Created', ...layout, transport: 'tcp', bricks, options: {},
    secret: randomBytes(32).toString('hex'), version: 1,
  };
  const owners = node.owners(def);
  await requireConnected(node, node.members());

  // Phase 1: every owning node checks its bricks; nothing is created yet.
  await node.onAll(owners, 'Staging', (m) => {
    const r = { volume: name, volume_id: def.id, paths: node.localPaths(def, m.uuid), force: req.force };
    return node.on(m, () => stageLocal(node, r), 'StageBricks', r);
  });
  // Phase 2: make and mark the directories; undo on every node if one fails.
  let created: Map<string, { created: string[] }>;
  try {
    created = await node.onAll(owners, 'Commit', (m) => {
      const r = { volume: name, volume_id: def.id, paths: node.localPaths(def, m.uuid), force: req.force };
      return node.on(m, () => commitLocal(r), 'CommitBricks', r);
    });
  } catch (e) {
    await rollbackBricks(node, def, (e as { partial?: Map<string, { created: string[] }> }).partial ?? new Map());
    throw e;
  }
  try {
    await requireConnected(node, node.store.listPeers());
    await node.publish(def);
  } catch (e) {
    await node.unpublish(name);
    await rollbackBricks(node, def, created);
    throw e;
  }
}

async function rollbackBricks(node: Node, def: VolumeDef, done: Map<string, { created: string[] }>): Promise<void> {
  await Promise.allSettled([...done.entries()].map(([uuid, res]) => {
    const m = node.member(uuid)!;
    const r = { volume_id: def.id, paths: node.localPaths(def, uuid), remove_dirs: res.created };
    return node.on(m, () => releaseLocal(r), 'ReleaseBricks', r);
  }));
}

export async function volumeStart(node: Node, name: string, force: boolean): Promise<void> {
  const v = getVolume(node, name);
  if (v.status === 'Started' && !force) throw precondition(`Volume ${name} already started`);
  const owners = node.owners(v);
  await requireConnected(node, owners);
  try {
    await node.onAll(owners, 'Commit', (m) => {
      const r = { volume: name, force };
      return node.on(m, () => startLocal(node, r), 'StartBricks', r, LONG_TIMEOUT_MS);
    });
  } catch (e) {
    if (v.status !== 'Started') {
      await Promise.allSettled(owners.map((m) => node.on(m, () => stopLocal(node, { volume: name }), 'StopBricks', { volume: name }, LONG_TIMEOUT_MS)));
    }
    throw e;
  }
  await node.publish({ ...v, status: 'Started', version: v.version + 1 });
}

export async function volumeStop(node: Node, name: string, force: boolean): Promise<void> {
  const v = getVolume(node, name);
  if (v.status !== 'Started' && !force) throw precondition(`Volume ${name} is not in the started state`);
  const owners = node.owners(v);
  if (!force) await requireConnected(node, owners);
  const live = [];
  for (const m of owners) if (!force || (await node.reachable(m))) live.push(m);
  await node.onAll(live, 'Commit', (m) => node.on(m, () => stopLocal(node, { volume: name }), 'StopBricks', { volume: name }, LONG_TIMEOUT_MS));
  await node.publish({ ...v, status: 'Stopped', version: v.version + 1 });
}

export async function volumeDelete(node: Node, name: string): Promise<void> {
  const v = getVolume(node, name);
  if (v.status === 'Started') throw precondition(`Volume ${name} has been started.Volume needs to be stopped before deletion.`);
  const owners = node.owners(v);
  await requireConnected(node, owners);
  await node.onAll(owners, 'Commit', (m) => {
    const r = { volume_id: v.id, paths: node.localPaths(v, m.uuid), remove_dirs: [] };
    return node.on(m, () => releaseLocal(r), 'ReleaseBricks', r);
  });
  await node.unpublish(name);
}

export async function volumeSet(node: Node, name: string, key: string, value: string): Promise<void> {
  const v = getVolume(node, name);
  const stored = checkVolumeOption(key, value);
  await node.publish({ ...v, options: { ...v.options, [key]: stored }, version: v.version + 1 });
}

export function volumeInfo(node: Node, name: string): VolumeDef[] {
  if (!name || name === 'all') return node.store.listVolumes();
  return [getVolume(node, name)];
}

export async function volumeStatus(node: Node, name: string): Promise<{ name: string; bricks: BrickStatusRow[]; shds: BrickStatusRow[] }[]> {
  let vols: VolumeDef[];
  if (name && name !== 'all') {
    const v = getVolume(node, name);
    if (v.status !== 'Started') throw precondition(`Volume ${name} is not started`);
    vols = [v];
  } else {
    vols = node.store.listVolumes().filter((v) => v.status === 'Started');
  }
  return Promise.all(vols.map(async (v) => {
    const rows = new Map<string, BrickStatusRow>();
    const shdRows = new Map<string, BrickStatusRow>();
    await Promise.allSettled(node.owners(v).map(async (m) => {
      const res = await node.on(m, () => localStatus(node, { volume: v.name }), 'LocalBrickStatus', { volume: v.name });
      for (const r of res.bricks) rows.set(`${m.uuid}\0${r.path}`, r);
      if (res.shd) shdRows.set(m.uuid, res.shd);
    }));
    const bricks = v.bricks.map((b) => rows.get(`${b.nodeUuid}\0${b.path}`) ?? { host: b.host, path: b.path, port: 0, online: false, pid: 0 });
    const shds = needsShd(v) ? node.owners(v).map((m) => shdRows.get(m.uuid) ?? { host: m.hostname, path: '', port: 0, online: false, pid: 0 }) : [];
    return { name: v.name, bricks, shds };
  }));
}

// --- the steps a brick-owning node runs (the handlers of the peer rpcs) ---

interface LocalReq { volume?: string; volume_id?: string; paths?: string[]; force?: boolean; remove_dirs?: string[] }

export function stageLocal(node: Node, r: LocalReq): Record<string, never> {
  for (const p of r.paths ?? []) checkBrickDir(node.self.hostname, p, !!r.force);
  return {};
}

export function commitLocal(r: LocalReq): { created: string[] } {
  return { created: commitBrickDirs(r.volume_id!, r.paths ?? []) };
}

export function releaseLocal(r: LocalReq): Record<string, never> {
  releaseBrickDirs(r.volume_id!, r.paths ?? [], r.remove_dirs ?? []);
  return {};
}

export async function startLocal(node: Node, r: LocalReq): Promise<Record<string, never>> {
  const v = getVolume(node, r.volume!);
  const results = await Promise.allSettled(node.localPaths(v).map((p) => node.bricks.start(v, p)));
  const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (failed) throw failed.reason instanceof MgmtError ? failed.reason : precondition(String(failed.reason?.message ?? failed.reason));
  await node.shd.start(v);
  return {};
}

export async function stopLocal(node: Node, r: LocalReq): Promise<Record<string, never>> {
  const v = getVolume(node, r.volume!);
  await node.shd.stop(v);
  await Promise.all(node.localPaths(v).map((p) => node.bricks.stop(v, p)));
  return {};
}

export function localStatus(node: Node, r: LocalReq): { bricks: BrickStatusRow[]; shd?: BrickStatusRow } {
  const v = getVolume(node, r.volume!);
  const shdPid = needsShd(v) ? node.shd.find(v) : undefined;
  return {
    ...(needsShd(v) ? { shd: { host: node.self.hostname, path: '', port: 0, online: !!shdPid, pid: shdPid ?? 0 } } : {}),
    bricks: node.localPaths(v).map((path) => {
      const rb = node.bricks.find(v, path);
      return { host: node.self.hostname, path, port: rb?.port ?? 0, online: !!rb, pid: rb?.pid ?? 0 };
    }),
  };
}
