// The management plane's records: pool members and volume definitions, as stored in the workdir
// and carried between peers as JSON.
export const DEFAULT_MGMT_PORT = 24007;
export const FIRST_BRICK_PORT = 49152;

export interface Member {
  uuid: string;
  hostname: string;
  port: number;
}

export type VolumeStatusName = 'Created' | 'Started' | 'Stopped';

export interface BrickDef {
  host: string;
  path: string;
  /** The uuid of the node that owns the brick. */
  nodeUuid: string;
  arbiter?: boolean;
}

export interface VolumeDef {
  name: string;
  id: string;
  status: VolumeStatusName;
  /** 1 when not striped / not replicated; arbiter 0 or 1. */
  stripe: number;
  replica: number;
  arbiter: number;
  transport: 'tcp';
  bricks: BrickDef[];
  /** `gfs volume set` options, values as given. */
  options: Record<string, string>;
  /** The volume's credentials, presented by clients to every brick. */
  secret: string;
  /** Bumped on every change; a peer keeps the newest. */
  version: number;
}

export function memberAddress(m: { hostname: string; port: number }): string {
  return `${m.hostname}:${m.port}`;
}

export function brickName(b: { host: string; path: string }): string {
  return `${b.host}:${b.path}`;
}

/** Parses HOST[:PORT]. */
export function parseHostPort(text: string, defaultPort = DEFAULT_MGMT_PORT): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(text.trim());
  if (!m || !m[1]) throw new Error(`'${text}' is not HOST[:PORT]`);
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`'${text}': bad port`);
  return { host: m[1], port };
}
