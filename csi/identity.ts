// The CSI Identity service: who the plugin is, what it offers, and whether it is ready (the
// controller is ready when the provisioner answers; a node plugin when /dev/fuse is there).
import { access } from 'node:fs/promises';
import { failedPrecondition } from './errors.js';
import type { VolumesApi } from './volumes-api.js';

export const DRIVER_NAME = 'gfs.csi.gfs.io';
export const DRIVER_VERSION = '0.1.0';

export type Mode = 'controller' | 'node' | 'all';

export class Identity {
  constructor(readonly mode: Mode, readonly name: string, readonly api?: VolumesApi) {}

  GetPluginInfo() {
    return { name: this.name, vendor_version: DRIVER_VERSION, manifest: { mode: this.mode } };
  }

  GetPluginCapabilities() {
    // OFFLINE: the provisioner grows a volume by recreating it over more bricks, and a running
    // gfs-mount cannot switch to a graph of another shape, so external-resizer must grow a volume
    // only while no pod has it mounted.
    const caps: object[] = [{ volume_expansion: { type: 'OFFLINE' } }];
    if (this.mode !== 'node') caps.unshift({ service: { type: 'CONTROLLER_SERVICE' } });
    return { capabilities: caps };
  }

  async Probe() {
    if (this.mode !== 'node' && this.api) {
      const ok = await this.api.hello().catch(() => false);
      if (!ok) throw failedPrecondition(`the provisioner at ${this.api.client.server} does not answer`);
    }
    if (this.mode !== 'controller') {
      await access('/dev/fuse').catch(() => { throw failedPrecondition('/dev/fuse is missing: this node cannot mount gfs volumes'); });
    }
    return { ready: { value: true } };
  }
}
