// The CSI Node service: NodePublishVolume is a gfs mount of the volume at the target path (no
// staging: a FUSE mount per pod is cheap and keeps each pod's readonly flag its own),
// NodeUnpublishVolume unmounts; both idempotent. Stats come from statfs of the mount.
import { mkdir, rmdir, stat, statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import { KeyedLock } from './keyed-lock.js';
import { READ_ONLY_MODES, unsupported } from './capability.js';
import { CsiError, alreadyExists, internal, invalidArgument, notFound } from './errors.js';
import { status } from '@grpc/grpc-js';
import { gfsMount, mountAt, unmount } from './mounts.js';
import { CTX_BACKUP, CTX_DEVICE, CTX_VOLUME, volumeContext } from './volume-context.js';
import type { VolumesApi } from './volumes-api.js';

const NODE_CAPS = ['GET_VOLUME_STATS'];

export interface NodeOptions { nodeId: string; mountLogDir: string; api?: VolumesApi; maxVolumes?: number }

function isFuse(fstype: string): boolean {
  return fstype === 'fuse' || fstype.startsWith('fuse.');
}

export class NodeService {
  private lock = new KeyedLock();
  constructor(readonly opts: NodeOptions, readonly log: Logger) {}

  /** The mount source and options: from volume_context, else asked of the provisioner. */
  private async source(req: any): Promise<{ device: string; volume: string; backups: string }> {
    let ctx: Record<string, string> = req.volume_context ?? {};
    if (!ctx[CTX_DEVICE]) {
      if (!this.opts.api) throw invalidArgument('volume_context has no device and no --provisioner-url was given to look the volume up');
      const v = await this.opts.api.get(req.volume_id);
      if (!v) throw notFound(`volume ${req.volume_id} does not exist`);
      ctx = volumeContext(v);
    }
    const device = ctx[CTX_DEVICE];
    return { device, volume: ctx[CTX_VOLUME] || device.split(':').pop()!, backups: ctx[CTX_BACKUP] ?? '' };
  }

  async NodePublishVolume(req: any) {
    if (!req.volume_id) throw invalidArgument('volume_id is missing');
    if (!req.target_path) throw invalidArgument('target_path is missing');
    if (!req.volume_capability) throw invalidArgument('volume_capability is missing');
    const why = unsupported(req.volume_capability);
    if (why) throw invalidArgument(why);
    const target: string = req.target_path;
    const readOnly = !!req.readonly || READ_ONLY_MODES.has(req.volume_capability.access_mode.mode);
    return this.lock.run(target, async () => {
      const { device, volume, backups } = await this.source(req);
      const have = await mountAt(target);
      if (have && isFuse(have.fstype)) {
        if (have.source.split(':').pop() !== volume) throw alreadyExists(`${target} has another volume mounted (${have.source})`);
        this.log.info({ volume: req.volume_id, target }, 'NodePublishVolume: mounted already');
        return {};
      }
      await mkdir(target, { recursive: true });
      const options = [...(readOnly ? ['ro'] : []), ...(backups ? [`backup-volfile-servers=${backups}`] : []),
        ...((req.volume_capability.mount?.mount_flags ?? []) as string[])];
      try {
        await gfsMount(device, target, options, this.opts.mountLogDir);
      } catch (e) {
        throw internal(`mounting ${device} at ${target}: ${(e as Error).message}`, e);
      }
      this.log.info({ volume: req.volume_id, device, target, readOnly }, 'NodePublishVolume: mounted');
      return {};
    });
  }

  async NodeUnpublishVolume(req: any) {
    if (!req.volume_id) throw invalidArgument('volume_id is missing');
    if (!req.target_path) throw invalidArgument('target_path is missing');
    const target: string = req.target_path;
    return this.lock.run(target, async () => {
      if (await mountAt(target)) {
        try {
          await unmount(target);
        } catch (e) {
          throw internal((e as Error).message, e);
        }
      }
      // The target directory is ours to remove (spec.md NodeUnpublishVolume); gone already is fine.
      await rmdir(target).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') this.log.warn({ target, err: e.message }, 'cannot remove the target directory');
      });
      this.log.info({ volume: req.volume_id, target }, 'NodeUnpublishVolume');
      return {};
    });
  }

  async NodeGetVolumeStats(req: any) {
    if (!req.volume_id) throw invalidArgument('volume_id is missing');
    if (!req.volume_path) throw invalidArgument('volume_path is missing');
    try {
      await stat(req.volume_path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw notFound(`${req.volume_path} does not exist`);
      throw new CsiError(status.INTERNAL, `${req.volume_path}: ${(e as Error).message}`);
    }
    const s = await statfs(req.volume_path);
    return {
      usage: [
        { unit: 'BYTES', total: s.blocks * s.bsize, available: s.bavail * s.bsize, used: (s.blocks - s.bfree) * s.bsize },
        { unit: 'INODES', total: s.files, available: s.ffree, used: s.files - s.ffree },
      ],
    };
  }

  NodeGetCapabilities() {
    return { capabilities: NODE_CAPS.map((type) => ({ rpc: { type } })) };
  }

  NodeGetInfo() {
    return { node_id: this.opts.nodeId, max_volumes_per_node: this.opts.maxVolumes ?? 0 };
  }
}
