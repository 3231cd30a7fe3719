// The CSI Controller service over the provisioner's REST API. Every call is idempotent as the
// specification asks: CreateVolume looks the name up first (the provisioner's volume name is the
// key), so a retried call returns the volume the first one made; DeleteVolume of an unknown id
// succeeds; calls for one name or id run one at a time in this process.
import type { Logger } from 'pino';
import { KeyedLock } from './keyed-lock.js';
import {
  GiB, fits, parseParams, replicaOf, requireCapabilities, sizeGiB, unsupported, type VolumeCapability,
} from './capability.js';
import { CsiError, alreadyExists, fromApi, invalidArgument, notFound } from './errors.js';
import { status } from '@grpc/grpc-js';
import { volumeContext } from './volume-context.js';
import { VolumesApi, volumeNameFor, type ApiVolume } from './volumes-api.js';

const CONTROLLER_CAPS = ['CREATE_DELETE_VOLUME', 'LIST_VOLUMES', 'GET_CAPACITY', 'EXPAND_VOLUME'];

function csiVolume(v: ApiVolume) {
  return { capacity_bytes: v.size * GiB, volume_id: v.id, volume_context: volumeContext(v), accessible_topology: [] };
}

function sameDurability(v: ApiVolume, want: { type: string; replicate?: { replica: number } }): boolean {
  return replicaOf(v.durability) === replicaOf(want);
}

export class Controller {
  private lock = new KeyedLock();
  constructor(readonly api: VolumesApi, readonly log: Logger) {}

  async CreateVolume(req: any) {
    if (!req.name) throw invalidArgument('name is missing');
    requireCapabilities(req.volume_capabilities);
    if (req.volume_content_source?.type) throw invalidArgument('volume_content_source is not supported (no snapshots or clones)');
    const params = parseParams(req.parameters);
    const size = sizeGiB(req.capacity_range);
    const name = volumeNameFor(req.name);
    return this.lock.run(`name:${name}`, async () => {
      let v = await this.api.byName(name).catch((e) => { throw fromApi(e, 'looking the name up'); });
      if (v) {
        if (!fits(v.size, req.capacity_range)) {
          throw alreadyExists(`volume ${req.name} exists with ${v.size} GiB, which does not fit capacity_range ${JSON.stringify(req.capacity_range ?? {})}`);
        }
        if (!sameDurability(v, params.durability)) throw alreadyExists(`volume ${req.name} exists with another volumetype (${v.durability.type})`);
        this.log.info({ name: req.name, id: v.id }, 'CreateVolume: exists already');
        return { volume: csiVolume(v) };
      }
      try {
        v = await this.api.create({ name, size, ...params });
      } catch (e) {
        // Another controller made it in between: answer as for a retry.
        const again = await this.api.byName(name).catch(() => undefined);
        if (again && fits(again.size, req.capacity_range)) return { volume: csiVolume(again) };
        throw fromApi(e, `creating volume ${req.name}`);
      }
      this.log.info({ name: req.name, id: v.id, size, durability: params.durability }, 'CreateVolume: created');
      return { volume: csiVolume(v) };
    });
  }

  async DeleteVolume(req: any) {
    if (!req.volume_id) throw invalidArgument('volume_id is missing');
    return this.lock.run(`id:${req.volume_id}`, async () => {
      const gone = !(await this.api.get(req.volume_id).catch((e) => { throw fromApi(e, 'looking the volume up'); }));
      if (!gone) {
        const was = await this.api.delete(req.volume_id).catch((e) => { throw fromApi(e, `deleting volume ${req.volume_id}`); });
        this.log.info({ id: req.volume_id, was }, 'DeleteVolume');
      }
      return {};
    });
  }

  async ValidateVolumeCapabilities(req: any) {
    if (!req.volume_id) throw invalidArgument('volume_id is missing');
    if (!req.volume_capabilities?.length) throw invalidArgument('volume_capabilities is missing');
    const v = await this.api.get(req.volume_id).catch((e) => { throw fromApi(e, 'looking the volume up'); });
    if (!v) throw notFound(`volume ${req.volume_id} does not exist`);
    const why = (req.volume_capabilities as VolumeCapability[]).map(unsupported).find(Boolean);
    if (why) return { message: why };
    return {
      confirmed: {
        volume_context: req.volume_context ?? {}, volume_capabilities: req.volume_capabilities,
        parameters: req.parameters ?? {}, mutable_parameters: req.mutable_parameters ?? {},
      },
    };
  }

  async ListVolumes(req: any) {
    const ids = (await this.api.list().catch((e) => { throw fromApi(e, 'listing volumes'); })).sort();
    const start = req.starting_token ? Number(req.starting_token) : 0;
    if (!Number.isInteger(start) || start < 0 || start > ids.length) throw new CsiError(status.ABORTED, `starting_token '${req.starting_token}' is not valid`);
    const max = req.max_entries > 0 ? req.max_entries : ids.length;
    const page = ids.slice(start, start + max);
    const entries = [];
    for (const id of page) {
      const v = await this.api.get(id).catch(() => undefined);
      if (v) entries.push({ volume: csiVolume(v) });
    }
    const next = start + page.length;
    return { entries, next_token: next < ids.length ? String(next) : '' };
  }

  /** Free space the volume type can use: free KiB of online devices of online nodes, over the replica count. */
  async GetCapacity(req: any) {
    for (const c of req.volume_capabilities ?? []) {
      const why = unsupported(c);
      if (why) return { available_capacity: 0 };
    }
    const params = parseParams(req.parameters);
    const topo = await this.api.topology().catch((e) => { throw fromApi(e, 'reading the topology'); });
    let freeKiB = 0;
    for (const c of topo.clusters ?? []) {
      if (params.clusters.length && !params.clusters.includes(c.id)) continue;
      for (const n of c.nodes ?? []) {
        if (n.state !== 'online') continue;
        for (const d of n.devices ?? []) {
          if (d.state !== 'online') continue;
          freeKiB += d.storage.free;
        }
      }
    }
    const replica = replicaOf(params.durability);
    const available = Math.floor(freeKiB / replica) * 1024;
    return { available_capacity: available, maximum_volume_size: { value: available }, minimum_volume_size: { value: GiB } };
  }

  ControllerGetCapabilities() {
    return { capabilities: CONTROLLER_CAPS.map((type) => ({ rpc: { type } })) };
  }

  async ControllerExpandVolume(req: any) {
    if (!req.volume_id) throw invalidArgument('volume_id is missing');
    if (!req.capacity_range) throw invalidArgument('capacity_range is missing');
    if (req.volume_capability) {
      const why = unsupported(req.volume_capability);
      if (why) throw invalidArgument(why);
    }
    const want = sizeGiB(req.capacity_range);
    return this.lock.run(`id:${req.volume_id}`, async () => {
      const v = await this.api.get(req.volume_id).catch((e) => { throw fromApi(e, 'looking the volume up'); });
      if (!v) throw notFound(`volume ${req.volume_id} does not exist`);
      if (v.size >= want) return { capacity_bytes: v.size * GiB, node_expansion_required: false };
      const grown = await this.api.expand(v.id, want - v.size).catch((e) => { throw fromApi(e, `expanding volume ${v.id}`); });
      this.log.info({ id: v.id, from: v.size, to: grown.size }, 'ControllerExpandVolume');
      // Nothing to do on the nodes: the next mount gets the grown volume's spec.
      return { capacity_bytes: grown.size * GiB, node_expansion_required: false };
    });
  }
}
