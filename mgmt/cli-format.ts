// The gfs CLI's output, laid out as the gluster CLI's.
import { brickCountText } from './volgen.js';
import { DEFAULT_MGMT_PORT, type Member } from './types.js';

export interface WireBrick { host: string; path: string; arbiter: boolean; node_uuid: string }
export interface WireVolume {
  name: string; id: string; type: string; status: string; stripe: number; replica: number; arbiter: number;
  transport: string; bricks: WireBrick[]; options: Record<string, string>; snapshot_count: number;
}
export interface WireBrickStatus { host: string; path: string; port: number; online: boolean; pid: number }
export interface WireVolumeStatus { name: string; bricks: WireBrickStatus[]; shds?: WireBrickStatus[] }
export interface WirePeer { member: Member; connected: boolean; state: string; self: boolean }

export function formatVolumeInfo(vols: WireVolume[]): string {
  if (vols.length === 0) return 'No volumes present\n';
  return vols.map((v) => {
    const lines = [
      '',
      `Volume Name: ${v.name}`,
      `Type: ${v.type}`,
      `Volume ID: ${v.id}`,
      `Status: ${v.status}`,
      `Snapshot Count: ${v.snapshot_count ?? 0}`,
      `Number of Bricks: ${brickCountText(v, v.bricks.length)}`,
      `Transport-type: ${v.transport || 'tcp'}`,
      'Bricks:',
      ...v.bricks.map((b, i) => `Brick${i + 1}: ${b.host}:${b.path}${b.arbiter ? ' (arbiter)' : ''}`),
      'Options Reconfigured:',
      ...Object.entries(v.options ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, val]) => `${k}: ${val}`),
    ];
    return `${lines.join('\n')}\n`;
  }).join('');
}

const DASHES = '-'.repeat(78);

export function formatVolumeStatus(vols: WireVolumeStatus[]): string {
  if (vols.length === 0) return 'No volumes present\n';
  return vols.map((v) => {
    const names = v.bricks.map((b) => `Brick ${b.host}:${b.path}`);
    const width = Math.max(44, ...names.map((n) => n.length + 1));
    const out = [`Status of volume: ${v.name}`, `${'Gfs process'.padEnd(width)}TCP Port  RDMA Port  Online  Pid`, DASHES];
    v.bricks.forEach((b, i) => {
      const port = b.online ? String(b.port) : 'N/A';
      const rdma = b.online ? '0' : 'N/A';
      const pid = b.online ? String(b.pid) : 'N/A';
      out.push(`${names[i].padEnd(width)}${port.padEnd(10)}${rdma.padEnd(11)}${(b.online ? 'Y' : 'N').padEnd(8)}${pid}`);
    });
    for (const s of v.shds ?? []) {
      out.push(`${`Self-heal Daemon on ${s.host}`.padEnd(width)}${'N/A'.padEnd(10)}${'N/A'.padEnd(11)}${(s.online ? 'Y' : 'N').padEnd(8)}${s.online ? s.pid : 'N/A'}`);
    }
    out.push(' ', `Task Status of Volume ${v.name}`, DASHES, 'There are no active volume tasks', ' ');
    return `${out.join('\n')}\n`;
  }).join('\n');
}

export function formatPeerStatus(peers: WirePeer[]): string {
  const out = [`Number of Peers: ${peers.length}`];
  for (const p of peers) {
    out.push('', `Hostname: ${p.member.hostname}`);
    if (p.member.port !== DEFAULT_MGMT_PORT) out.push(`Port: ${p.member.port}`);
    out.push(`Uuid: ${p.member.uuid}`, `State: ${p.state} (${p.connected ? 'Connected' : 'Disconnected'})`);
  }
  return `${out.join('\n')}\n`;
}

export function formatPoolList(peers: WirePeer[]): string {
  const out = ['UUID\t\t\t\t\tHostname \tState'];
  for (const p of peers) {
    const host = p.self ? 'localhost' : p.member.hostname;
    out.push(`${p.member.uuid}\t${host.padEnd(9)}\t${p.connected ? 'Connected' : 'Disconnected'} `);
  }
  return `${out.join('\n')}\n`;
}

export function peersJson(peers: WirePeer[]): object {
  return {
    peers: peers.map((p) => ({
      uuid: p.member.uuid, hostname: p.member.hostname, port: p.member.port, state: p.state,
      connected: p.connected, ...(p.self ? { self: true } : {}),
    })),
  };
}
