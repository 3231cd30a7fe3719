// What CreateVolume hands kubelet through the PersistentVolume (volume_context, stored as the PV's
// volumeAttributes) so that NodePublishVolume can mount without asking the provisioner: the mount
// source gfs-mount takes and its backup volfile servers.
import type { ApiVolume } from './volumes-api.js';

export const CTX_VOLUME = 'volume';
export const CTX_DEVICE = 'device';
export const CTX_BACKUP = 'backup-volfile-servers';

export function volumeContext(v: ApiVolume): Record<string, string> {
  const g = v.mount.glusterfs;
  const ctx: Record<string, string> = { [CTX_VOLUME]: v.name, [CTX_DEVICE]: g.device };
  const backups = g.options?.['backup-volfile-servers'];
  if (backups) ctx[CTX_BACKUP] = backups;
  return ctx;
}
