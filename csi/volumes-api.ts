// The provisioner as the controller sees it: volumes by id and by name (the CSI name is the
// provisioner's volume name, so the name -> id mapping lives in the provisioner's db and survives
// a restart of the driver), created, expanded and deleted through its asynchronous 202 pattern.
import { createHash } from 'node:crypto';
import { ApiError, ProvisionerClient } from '../provision/client.js';
import type { Durability } from './capability.js';

export interface ApiVolume {
  id: string; name: string; size: number; cluster: string;
  durability: { type: string; replicate?: { replica?: number } };
  glustervolumeoptions?: string[];
  mount: { glusterfs: { hosts: string[]; device: string; options: Record<string, string> } };
}

const VOLNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
export const VOLUME_ID_RE = /^[0-9a-f]{32}$/;

/** The gfs volume name for a CSI name: the name itself when gfs allows it, else a stable digest. */
export function volumeNameFor(csiName: string): string {
  if (VOLNAME_RE.test(csiName)) return csiName;
  return `csi-${createHash('sha256').update(csiName).digest('hex').slice(0, 40)}`;
}

export class VolumesApi {
  constructor(readonly client: ProvisionerClient) {}

  async get(id: string): Promise<ApiVolume | undefined> {
    if (!VOLUME_ID_RE.test(id)) return undefined;
    try {
      return await this.client.json<ApiVolume>('GET', `/volumes/${id}`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return undefined;
      throw e;
    }
  }

  async list(): Promise<string[]> {
    return (await this.client.json<{ volumes: string[] }>('GET', '/volumes')).volumes;
  }

  async byName(name: string): Promise<ApiVolume | undefined> {
    for (const id of await this.list()) {
      const v = await this.get(id);
      if (v?.name === name) return v;
    }
    return undefined;
  }

  async create(req: { name: string; size: number; durability: Durability; clusters: string[]; glustervolumeoptions: string[]; gid?: number }): Promise<ApiVolume> {
    const body = {
      name: req.name, size: req.size, durability: req.durability,
      ...(req.clusters.length ? { clusters: req.clusters } : {}),
      ...(req.glustervolumeoptions.length ? { glustervolumeoptions: req.glustervolumeoptions } : {}),
      ...(req.gid !== undefined ? { gid: req.gid } : {}),
    };
    const v = await this.client.async<ApiVolume>('POST', '/volumes', body);
    if (!v) throw new ApiError(502, 'volume create finished without a volume');
    return v;
  }

  /** Deletes; true when it was there. */
  async delete(id: string): Promise<boolean> {
    try {
      await this.client.async('DELETE', `/volumes/${id}`);
      return true;
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || /Id not found/.test(e.message))) return false;
      throw e;
    }
  }

  async expand(id: string, byGiB: number): Promise<ApiVolume> {
    const v = await this.client.async<ApiVolume>('POST', `/volumes/${id}/expand`, { expand_size: byGiB });
    if (!v) throw new ApiError(502, 'volume expand finished without a volume');
    return v;
  }

  async topology(): Promise<any> {
    return this.client.json('GET', '/topology');
  }

  async hello(): Promise<boolean> {
    const r = await this.client.raw('GET', '/hello');
    return r.status === 200;
  }
}
