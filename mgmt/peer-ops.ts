// The trusted pool: probe, detach, status, and the membership steps a peer runs.
import { memberAddress, type Member, type VolumeDef } from './types.js';
import { callMgmt } from './peer-client.js';
import { invalid, precondition, unavailable } from './errors.js';
import type { Node } from './node.js';

export interface NodeInfo { self: Member; peers: Member[]; volume_count: number; volumes_json?: string[] }
export interface PeerState { member: Member; connected: boolean; state: string; self: boolean }

export function nodeHello(node: Node): NodeInfo {
  return { self: node.self, peers: node.store.listPeers(), volume_count: node.store.listVolumes().length };
}

/** Returns a note for the CLI ("" for a plain success). */
export async function peerProbe(node: Node, host: string, port: number): Promise<string> {
  if (host === node.self.hostname && port === node.self.port) return 'Probe on localhost not needed';
  const known = node.store.listPeers().find((p) => p.hostname === host && p.port === port);
  if (known) return `Host ${host} port ${port} already in peer list`;
  let info: NodeInfo;
  try {
    info = await callMgmt<NodeInfo>(memberAddress({ hostname: host, port }), 'NodeHello', {});
  } catch {
    throw unavailable('Probe returned with Transport endpoint is not connected');
  }
  if (info.self.uuid === node.self.uuid) return 'Probe on localhost not needed';
  if (node.store.getPeer(info.self.uuid)) return `Host ${host} port ${port} already in peer list`;
  if (info.peers.length > 0 || info.volume_count > 0) {
    throw precondition(`${host} is either already part of another cluster or having volumes configured`);
  }
  const target: Member = { uuid: info.self.uuid, hostname: info.self.hostname || host, port: info.self.port || port };
  const volumes = node.store.listVolumes().map((v) => JSON.stringify(v));
  try {
    await callMgmt(memberAddress(target), 'PeerJoin', { members: node.members(), volumes_json: volumes });
  } catch {
    throw unavailable('Probe returned with Transport endpoint is not connected');
  }
  // Every member learns every other member.
  await Promise.allSettled(node.store.listPeers().map((p) =>
    callMgmt(memberAddress(p), 'PeerJoin', { members: [target], volumes_json: [] })));
  node.store.putPeer(target);
  node.log.info({ peer: target }, 'peer probed');
  return '';
}

export async function peerDetach(node: Node, host: string, force: boolean): Promise<void> {
  const peer = node.store.listPeers().find((p) => p.hostname === host);
  if (!peer) {
    if (host === node.self.hostname) throw invalid(`${host} is localhost`);
    throw invalid(`${host} is not part of cluster`);
  }
  const vols = node.store.listVolumes().filter((v) => v.bricks.some((b) => b.nodeUuid === peer.uuid));
  if (vols.length > 0) throw precondition(`Brick(s) with the peer ${host} exist in cluster`);
  const down = !(await node.reachable(peer));
  if (down && !force) throw unavailable(`${host} is not connected. Use 'force' to detach it anyway`);
  await Promise.allSettled(node.members().filter((m) => !node.isSelf(m)).map((m) =>
    callMgmt(memberAddress(m), 'PeerLeave', { uuid: peer.uuid })));
  node.store.removePeer(peer.uuid);
  node.log.info({ peer }, 'peer detached');
}

export async function peerStates(node: Node, includeSelf: boolean): Promise<PeerState[]> {
  const rows = await Promise.all(node.store.listPeers().map(async (m) => ({
    member: m, connected: await node.reachable(m), state: 'Peer in Cluster', self: false,
  })));
  if (includeSelf) rows.push({ member: node.self, connected: true, state: 'Peer in Cluster', self: true });
  return rows;
}

// --- membership steps run by a peer ---

export function peerJoin(node: Node, members: Member[], volumesJson: string[]): NodeInfo {
  for (const m of members) if (m.uuid !== node.self.uuid) node.store.putPeer({ uuid: m.uuid, hostname: m.hostname, port: m.port });
  for (const j of volumesJson) syncVolume(node, j, '');
  return { ...nodeHello(node), volumes_json: node.store.listVolumes().map((v) => JSON.stringify(v)) };
}

/** After a restart: fetch the definitions of every reachable peer and keep the newest version of
 * each. (A volume deleted while this node was down is not noticed yet.) */
export async function catchUp(node: Node): Promise<void> {
  await Promise.allSettled(node.store.listPeers().map(async (p) => {
    const info = await callMgmt<NodeInfo>(memberAddress(p), 'PeerJoin', { members: [], volumes_json: [] });
    for (const j of info.volumes_json ?? []) syncVolume(node, j, '');
  }));
}

export function peerLeave(node: Node, uuid: string): void {
  if (uuid !== node.self.uuid) {
    node.store.removePeer(uuid);
    return;
  }
  // This node leaves the pool: it forgets the others and the volumes it has no bricks in.
  for (const p of node.store.listPeers()) node.store.removePeer(p.uuid);
  for (const v of node.store.listVolumes()) if (node.localPaths(v).length === 0) node.store.removeVolume(v.name);
  node.log.info('detached from the pool');
}

export function syncVolume(node: Node, volumeJson: string, deleteName: string): void {
  if (deleteName) {
    node.store.removeVolume(deleteName);
    return;
  }
  const v = JSON.parse(volumeJson) as VolumeDef;
  const mine = node.store.getVolume(v.name);
  if (mine && mine.id === v.id && mine.version > v.version) return;
  node.store.putVolume(v);
}
