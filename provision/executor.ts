// What the provisioner asks of the nodes. `gfsd`: each node's gfsd carves, formats, mounts and
// removes bricks on that node (mgmt/brick-carve.ts) and the volume is made with the rpcs the gfs
// CLI uses; the provisioner never runs a command on a host itself. `mock`: records each command
// and touches nothing, for dry runs and tests of the REST surface.
import { callMgmt } from '../mgmt/peer-client.js';
import { parseHostPort } from '../mgmt/types.js';
import type { DeviceRec, NodeRec } from './db.js';

const LONG_MS = 180_000;

export interface CarvedBrick { brick_id: string; image: boolean; mounted: boolean }

export interface Executor {
  readonly name: 'mock' | 'gfsd';
  /** Checks the node answers (Heketi's "peer probe" target check). */
  hello(node: NodeRec): Promise<void>;
  peerProbe(from: NodeRec, node: NodeRec): Promise<void>;
  peerDetach(from: NodeRec, node: NodeRec): Promise<void>;
  /** KiB the device can give out. */
  deviceSetup(node: NodeRec, dev: DeviceRec, destroyData: boolean): Promise<{ total: number; free: number }>;
  deviceTeardown(node: NodeRec, dev: DeviceRec): Promise<void>;
  /** Returns the brick directory. */
  brickCarve(node: NodeRec, dev: DeviceRec, brickId: string, sizeKiB: number): Promise<string>;
  brickRemove(node: NodeRec, dev: DeviceRec, brickId: string): Promise<void>;
  brickScan(node: NodeRec, dev: DeviceRec): Promise<CarvedBrick[]>;
  /** The gfs volumes the node's pool has: name -> brick list and status. */
  volumes(node: NodeRec): Promise<Map<string, { bricks: string[]; status: string }>>;
  volumeCreate(node: NodeRec, name: string, replica: number, bricks: string[]): Promise<void>;
  volumeStart(node: NodeRec, name: string): Promise<void>;
  volumeStop(node: NodeRec, name: string): Promise<void>;
  volumeDelete(node: NodeRec, name: string): Promise<void>;
}

export function manageAddress(node: NodeRec, defaultPort: number): { host: string; port: number } {
  return parseHostPort(node.hostnames.manage[0], defaultPort);
}

export class GfsdExecutor implements Executor {
  readonly name = 'gfsd' as const;
  constructor(private readonly defaultPort: number) {}

  private call<T = any>(node: NodeRec, method: string, req: object, timeout = LONG_MS): Promise<T> {
    const { host, port } = manageAddress(node, this.defaultPort);
    return callMgmt<T>(`${host}:${port}`, method, req, timeout);
  }

  async hello(node: NodeRec): Promise<void> {
    await this.call(node, 'NodeHello', {}, 5_000);
  }
  async peerProbe(from: NodeRec, node: NodeRec): Promise<void> {
    await this.call(from, 'PeerProbe', { host: node.hostnames.storage[0], port: manageAddress(node, this.defaultPort).port });
  }
  async peerDetach(from: NodeRec, node: NodeRec): Promise<void> {
    await this.call(from, 'PeerDetach', { host: node.hostnames.storage[0], force: false });
  }
  async deviceSetup(node: NodeRec, dev: DeviceRec, destroyData: boolean): Promise<{ total: number; free: number }> {
    const r = await this.call<{ total_bytes: number; free_bytes: number }>(node, 'DeviceSetup', { device_id: dev.id, device: dev.name, destroy_data: destroyData });
    return { total: Math.floor(r.total_bytes / 1024), free: Math.floor(r.free_bytes / 1024) };
  }
  async deviceTeardown(node: NodeRec, dev: DeviceRec): Promise<void> {
    await this.call(node, 'DeviceTeardown', { device_id: dev.id, device: dev.name });
  }
  async brickCarve(node: NodeRec, dev: DeviceRec, brickId: string, sizeKiB: number): Promise<string> {
    const r = await this.call<{ path: string }>(node, 'BrickCarve', { device_id: dev.id, device: dev.name, brick_id: brickId, size_bytes: sizeKiB * 1024 });
    return r.path;
  }
  async brickRemove(node: NodeRec, dev: DeviceRec, brickId: string): Promise<void> {
    await this.call(node, 'BrickRemove', { device_id: dev.id, device: dev.name, brick_id: brickId });
  }
  async brickScan(node: NodeRec, dev: DeviceRec): Promise<CarvedBrick[]> {
    return (await this.call<{ bricks: CarvedBrick[] }>(node, 'BrickScan', { device_id: dev.id, device: dev.name }, 30_000)).bricks ?? [];
  }
  async volumes(node: NodeRec): Promise<Map<string, { bricks: string[]; status: string }>> {
    const r = await this.call<{ volumes: { name: string; status: string; bricks: { host: string; path: string }[] }[] }>(node, 'VolumeInfo', { name: 'all' }, 30_000);
    return new Map((r.volumes ?? []).map((v) => [v.name, { status: v.status, bricks: (v.bricks ?? []).map((b) => `${b.host}:${b.path}`) }]));
  }
  async volumeCreate(node: NodeRec, name: string, replica: number, bricks: string[]): Promise<void> {
    await this.call(node, 'VolumeCreate', { name, replica: replica > 1 ? replica : 0, bricks, transport: 'tcp', force: false });
  }
  async volumeStart(node: NodeRec, name: string): Promise<void> {
    await this.call(node, 'VolumeStart', { name, force: false });
  }
  async volumeStop(node: NodeRec, name: string): Promise<void> {
    await this.call(node, 'VolumeStop', { name, force: true });
  }
  async volumeDelete(node: NodeRec, name: string): Promise<void> {
    await this.call(node, 'VolumeDelete', { name, force: false });
  }
}

/** Records every command it is given; answers as a node with empty devices of a fixed size would. */
export class MockExecutor implements Executor {
  readonly name = 'mock' as const;
  readonly commands: string[] = [];
  private readonly bricks = new Map<string, Set<string>>();
  private readonly vols = new Map<string, { bricks: string[]; status: string }>();
  constructor(private readonly deviceSizeGb: number, private readonly mountRoot = '/var/lib/gfs/mounts') {}

  private note(node: NodeRec, cmd: string): void {
    this.commands.push(`${node.hostnames.manage[0]}: ${cmd}`);
  }
  async hello(node: NodeRec) { this.note(node, 'hello'); }
  async peerProbe(from: NodeRec, node: NodeRec) { this.note(from, `peer probe ${node.hostnames.storage[0]}`); }
  async peerDetach(from: NodeRec, node: NodeRec) { this.note(from, `peer detach ${node.hostnames.storage[0]}`); }
  async deviceSetup(node: NodeRec, dev: DeviceRec) {
    this.note(node, `device setup ${dev.name} (vg_${dev.id})`);
    const kib = this.deviceSizeGb * 1024 * 1024;
    return { total: kib, free: kib };
  }
  async deviceTeardown(node: NodeRec, dev: DeviceRec) { this.note(node, `device teardown ${dev.name} (vg_${dev.id})`); }
  async brickCarve(node: NodeRec, dev: DeviceRec, brickId: string, sizeKiB: number) {
    this.note(node, `brick carve vg_${dev.id}/brick_${brickId} ${sizeKiB}KiB: truncate, mkfs.xfs -i size=512, mount -o loop`);
    (this.bricks.get(dev.id) ?? this.bricks.set(dev.id, new Set()).get(dev.id)!).add(brickId);
    return `${this.mountRoot}/vg_${dev.id}/brick_${brickId}/brick`;
  }
  async brickRemove(node: NodeRec, dev: DeviceRec, brickId: string) {
    this.note(node, `brick remove vg_${dev.id}/brick_${brickId}: umount, losetup -d, rm`);
    this.bricks.get(dev.id)?.delete(brickId);
  }
  async brickScan(_node: NodeRec, dev: DeviceRec) {
    return [...(this.bricks.get(dev.id) ?? [])].map((id) => ({ brick_id: id, image: true, mounted: true }));
  }
  async volumes() { return new Map(this.vols); }
  async volumeCreate(node: NodeRec, name: string, replica: number, bricks: string[]) {
    this.note(node, `volume create ${name}${replica > 1 ? ` replica ${replica}` : ''} ${bricks.join(' ')}`);
    this.vols.set(name, { bricks, status: 'Created' });
  }
  async volumeStart(node: NodeRec, name: string) { this.note(node, `volume start ${name}`); const v = this.vols.get(name); if (v) v.status = 'Started'; }
  async volumeStop(node: NodeRec, name: string) { this.note(node, `volume stop ${name} force`); const v = this.vols.get(name); if (v) v.status = 'Stopped'; }
  async volumeDelete(node: NodeRec, name: string) { this.note(node, `volume delete ${name}`); this.vols.delete(name); }
}
