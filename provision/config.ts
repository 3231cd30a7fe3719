// The provisioner's configuration file, shaped as Heketi's (heketi.json): port, use_auth, jwt keys
// for admin and user, and the glusterfs section (executor, db, brick sizes, log level). Every key
// has a default that works on a laptop: the mock executor, auth off, a db in the user's home.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type ExecutorName = 'mock' | 'gfsd';

export interface ProvisionerConfig {
  /** Address to listen on (not in Heketi's file; it listens everywhere). */
  host: string;
  port: number;
  use_auth: boolean;
  jwt: { admin: { key: string }; user: { key: string } };
  glusterfs: {
    executor: ExecutorName;
    db: string;
    brick_min_size_gb: number;
    brick_max_size_gb: number;
    max_bricks_per_volume: number;
    loglevel: string;
    /** gfsd's port on nodes whose manage hostname names none. */
    gfsd_port: number;
    /** Size the mock executor reports for every device. */
    mock_device_size_gb: number;
  };
}

export const DEFAULT_CONFIG: ProvisionerConfig = {
  host: '127.0.0.1',
  port: 8080,
  use_auth: false,
  jwt: { admin: { key: '' }, user: { key: '' } },
  glusterfs: {
    executor: 'mock',
    db: process.getuid?.() === 0 ? '/var/lib/gfs-provisioner/provisioner.db' : join(homedir(), '.gfs-provisioner', 'provisioner.db'),
    brick_min_size_gb: 1,
    brick_max_size_gb: 1024,
    max_bricks_per_volume: 33,
    loglevel: 'info',
    gfsd_port: 24007,
    mock_device_size_gb: 500,
  },
};

export class ConfigError extends Error {}

function positiveInt(v: unknown, key: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new ConfigError(`config: ${key} must be a positive integer, not ${JSON.stringify(v)}`);
  return n;
}

/** Merges a parsed config file over the defaults; throws a ConfigError naming the bad key. */
export function parseConfig(raw: unknown): ProvisionerConfig {
  const r = (raw ?? {}) as Record<string, any>;
  const g = (r.glusterfs ?? {}) as Record<string, any>;
  const d = DEFAULT_CONFIG;
  const cfg: ProvisionerConfig = {
    host: typeof r.host === 'string' ? r.host : d.host,
    port: r.port === undefined ? d.port : positiveInt(r.port, 'port'),
    use_auth: r.use_auth === undefined ? d.use_auth : r.use_auth === true || r.use_auth === 'true',
    jwt: {
      admin: { key: String(r.jwt?.admin?.key ?? '') },
      user: { key: String(r.jwt?.user?.key ?? '') },
    },
    glusterfs: {
      executor: g.executor ?? d.glusterfs.executor,
      db: typeof g.db === 'string' && g.db ? g.db : d.glusterfs.db,
      brick_min_size_gb: g.brick_min_size_gb === undefined ? d.glusterfs.brick_min_size_gb : positiveInt(g.brick_min_size_gb, 'glusterfs.brick_min_size_gb'),
      brick_max_size_gb: g.brick_max_size_gb === undefined ? d.glusterfs.brick_max_size_gb : positiveInt(g.brick_max_size_gb, 'glusterfs.brick_max_size_gb'),
      max_bricks_per_volume: g.max_bricks_per_volume === undefined ? d.glusterfs.max_bricks_per_volume : positiveInt(g.max_bricks_per_volume, 'glusterfs.max_bricks_per_volume'),
      loglevel: typeof g.loglevel === 'string' ? g.loglevel : d.glusterfs.loglevel,
      gfsd_port: g.gfsd_port === undefined ? d.glusterfs.gfsd_port : positiveInt(g.gfsd_port, 'glusterfs.gfsd_port'),
      mock_device_size_gb: g.mock_device_size_gb === undefined ? d.glusterfs.mock_device_size_gb : positiveInt(g.mock_device_size_gb, 'glusterfs.mock_device_size_gb'),
    },
  };
  if (cfg.glusterfs.executor !== 'mock' && cfg.glusterfs.executor !== 'gfsd') {
    throw new ConfigError(`config: glusterfs.executor must be "mock" or "gfsd", not ${JSON.stringify(cfg.glusterfs.executor)}`);
  }
  if (cfg.glusterfs.brick_min_size_gb > cfg.glusterfs.brick_max_size_gb) throw new ConfigError('config: brick_min_size_gb is larger than brick_max_size_gb');
  if (cfg.use_auth && (!cfg.jwt.admin.key || !cfg.jwt.user.key)) throw new ConfigError('config: use_auth needs jwt.admin.key and jwt.user.key');
  return cfg;
}

export function loadConfig(file?: string): ProvisionerConfig {
  if (!file) return parseConfig({});
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(`config: cannot read ${file}: ${(e as Error).message}`);
  }
  return parseConfig(raw);
}
