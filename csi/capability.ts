// Volume capabilities and StorageClass parameters: what a gfs volume can be asked for and how a
// request's words become the provisioner's. A gfs volume is a mounted file system (no raw block),
// shared by any number of nodes, so every mount access mode but the alpha ones is supported.
import { invalidArgument, outOfRange } from './errors.js';

export const GiB = 1024 ** 3;

export interface VolumeCapability {
  block?: object | null;
  mount?: { fs_type?: string; mount_flags?: string[]; volume_mount_group?: string } | null;
  access_type?: 'block' | 'mount';
  access_mode?: { mode?: string } | null;
}

export const SUPPORTED_MODES = new Set([
  'SINGLE_NODE_WRITER', 'SINGLE_NODE_READER_ONLY', 'MULTI_NODE_READER_ONLY', 'MULTI_NODE_SINGLE_WRITER', 'MULTI_NODE_MULTI_WRITER',
]);
export const READ_ONLY_MODES = new Set(['SINGLE_NODE_READER_ONLY', 'MULTI_NODE_READER_ONLY']);
const FS_TYPES = new Set(['', 'gfs', 'fuse.gfs', 'glusterfs']);

/** Why a capability cannot be served, or undefined when it can. */
export function unsupported(c: VolumeCapability): string | undefined {
  if (c.access_type === 'block' || c.block) return 'block access is not supported: gfs volumes are file systems';
  if (!c.access_mode) return 'access_mode is missing';
  const mode = c.access_mode.mode ?? 'UNKNOWN';
  if (!SUPPORTED_MODES.has(mode)) return `access mode ${mode} is not supported`;
  const fs = c.mount?.fs_type ?? '';
  if (!FS_TYPES.has(fs)) return `fs_type ${fs} is not supported (gfs volumes are mounted as gfs)`;
  return undefined;
}

/** INVALID_ARGUMENT unless there is at least one capability and all are supported. */
export function requireCapabilities(caps: VolumeCapability[] | undefined): VolumeCapability[] {
  if (!caps?.length) throw invalidArgument('volume_capabilities is missing');
  for (const c of caps) {
    const why = unsupported(c);
    if (why) throw invalidArgument(why);
  }
  return caps;
}

export interface Durability { type: 'none' | 'replicate'; replicate?: { replica: number } }

export interface VolumeParams {
  durability: Durability;
  clusters: string[];
  glustervolumeoptions: string[];
  gid?: number;
}

// Keys the in-tree kubernetes.io/glusterfs StorageClass has that mean nothing to a CSI driver
// (the driver is told the provisioner's address and key on its command line); accepted so that the
// seed's StorageClass parameters can be copied over unchanged.
const IGNORED = new Set(['resturl', 'restuser', 'restuserkey', 'restauthenabled', 'secretname', 'secretnamespace', 'volumenameprefix', 'customepnameprefix', 'snapfactor', 'gidmin', 'gidmax']);

/** StorageClass parameters: volumetype (none | replicate:N), clusterid (comma-separated), volumeoptions, gid. */
export function parseParams(params: Record<string, string> | undefined): VolumeParams {
  const out: VolumeParams = { durability: { type: 'replicate', replicate: { replica: 3 } }, clusters: [], glustervolumeoptions: [] };
  for (const [rawKey, value] of Object.entries(params ?? {})) {
    const key = rawKey.toLowerCase();
    if (key.startsWith('csi.storage.k8s.io/') || IGNORED.has(key)) continue;
    if (key === 'volumetype') out.durability = parseVolumeType(value);
    else if (key === 'clusterid') out.clusters = value.split(',').map((s) => s.trim()).filter(Boolean);
    else if (key === 'volumeoptions') out.glustervolumeoptions = value.split(',').map((s) => s.trim()).filter(Boolean);
    else if (key === 'gid') {
      if (!/^\d+$/.test(value)) throw invalidArgument(`parameter gid must be a number, not '${value}'`);
      out.gid = Number(value);
    } else throw invalidArgument(`unknown parameter '${rawKey}' (known: volumetype, clusterid, volumeoptions, gid)`);
  }
  return out;
}

/** "none", "replicate:N" (as the in-tree glusterfs plugin spells it); "disperse:D:R" is refused. */
export function parseVolumeType(v: string): Durability {
  const s = v.trim().toLowerCase();
  if (s === 'none' || s === 'distribute') return { type: 'none' };
  const m = /^replicate(?::(\d+))?$/.exec(s);
  if (m) {
    const replica = m[1] ? Number(m[1]) : 3;
    if (replica < 1 || replica > 3) throw invalidArgument(`volumetype ${v}: replica must be 1 to 3`);
    return replica === 1 ? { type: 'none' } : { type: 'replicate', replicate: { replica } };
  }
  if (s.startsWith('disperse')) throw invalidArgument(`volumetype ${v}: disperse volumes are not supported yet`);
  throw invalidArgument(`volumetype '${v}' is not one of none, replicate:N`);
}

export function replicaOf(d: { type: string; replicate?: { replica?: number } }): number {
  return d.type === 'replicate' ? (d.replicate?.replica ?? 3) : 1;
}

/** The whole GiB the provisioner allocates for a capacity range (at least 1). */
export function sizeGiB(range: { required_bytes?: number; limit_bytes?: number } | null | undefined): number {
  const req = Number(range?.required_bytes ?? 0);
  const limit = Number(range?.limit_bytes ?? 0);
  if (req < 0 || limit < 0) throw invalidArgument('capacity_range must not be negative');
  if (limit && req > limit) throw invalidArgument(`capacity_range: required_bytes ${req} is more than limit_bytes ${limit}`);
  const gib = Math.max(1, Math.ceil(req / GiB));
  if (limit && gib * GiB > limit) {
    throw outOfRange(`capacity_range: volumes come in whole GiB; ${gib} GiB is more than limit_bytes ${limit}`);
  }
  return gib;
}

/** Does a volume of gib GiB satisfy the range? */
export function fits(gib: number, range: { required_bytes?: number; limit_bytes?: number } | null | undefined): boolean {
  const bytes = gib * GiB;
  const req = Number(range?.required_bytes ?? 0);
  const limit = Number(range?.limit_bytes ?? 0);
  return bytes >= req && (!limit || bytes <= limit);
}
