// Bricks carved from this node's devices, for the REST provisioner (as Heketi's LVM steps, without
// device-mapper). A device is a directory or a block device / image file; a brick is a sparse image
// file on the device's file system, formatted XFS (`mkfs.xfs -i size=512`) and loop-mounted at
//   ROOT/vg_<device-id>/brick_<brick-id>         the mount point; the brick is its `brick/` directory
// A device that is a file or block device is formatted XFS once and mounted at ROOT/dev_<device-id>;
// a directory device holds the images itself. Every step is idempotent, so the provisioner can
// repeat a step or undo a half-done one after a crash. ROOT is /var/lib/gfs/mounts unless
// gfsd --brick-mount-root or GFS_BRICK_MOUNT_ROOT says otherwise.
import { execFile } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, statfsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { invalid, notFound, precondition } from './errors.js';

export const DEFAULT_BRICK_MOUNT_ROOT = '/var/lib/gfs/mounts';
const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

let mountRoot = process.env.GFS_BRICK_MOUNT_ROOT || DEFAULT_BRICK_MOUNT_ROOT;

export function configureBrickCarve(opts: { mountRoot?: string }): void {
  if (opts.mountRoot) mountRoot = resolve(opts.mountRoot);
}

export function brickMountRoot(): string {
  return mountRoot;
}

interface DeviceReq { device_id: string; device: string; destroy_data?: boolean }
interface CarveReq extends DeviceReq { brick_id: string; size_bytes?: number }

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    execFile(cmd, args, { timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) rej(precondition(`${cmd} ${args.join(' ')} failed: ${(String(stderr).trim() || err.message).split('\n')[0]}`));
      else res(String(stdout));
    });
  });
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points in /proc/mounts with their sources. */
function mounts(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length > 2) out.set(unescapeMount(f[1]), unescapeMount(f[0]));
  }
  return out;
}

function isMounted(mp: string): boolean {
  return mounts().has(mp);
}

function checkIds(r: { device_id: string; brick_id?: string; device: string }): void {
  if (!ID_RE.test(r.device_id ?? '')) throw invalid(`bad device id '${r.device_id}'`);
  if (r.brick_id !== undefined && !ID_RE.test(r.brick_id)) throw invalid(`bad brick id '${r.brick_id}'`);
  if (!r.device || !r.device.startsWith('/')) throw invalid(`device '${r.device}' is not an absolute path`);
}

const deviceMount = (id: string) => join(mountRoot, `dev_${id}`);
const brickMount = (devId: string, brickId: string) => join(mountRoot, `vg_${devId}`, `brick_${brickId}`);
const xfsLabel = (devId: string) => `gfs${devId.replace(/[^A-Za-z0-9]/g, '').slice(0, 9)}`;

async function fsType(path: string): Promise<{ type: string; label: string }> {
  try {
    const out = await run('blkid', ['-p', '-o', 'export', path]);
    const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(out)?.[1] ?? '';
    return { type: get('TYPE'), label: get('LABEL') };
  } catch {
    return { type: '', label: '' }; // blkid exits 2 when it finds no signature
  }
}

/** Where the device keeps brick images; a file or block device is formatted (once) and mounted. */
async function imageDir(r: DeviceReq, setup: boolean): Promise<string> {
  let st;
  try {
    st = statSync(r.device);
  } catch {
    throw notFound(`Device ${r.device} does not exist`);
  }
  if (st.isDirectory()) return r.device;
  if (!st.isFile() && !st.isBlockDevice()) throw invalid(`Device ${r.device} is neither a directory, a file nor a block device`);
  const mp = deviceMount(r.device_id);
  if (isMounted(mp)) return mp;
  const { type, label } = await fsType(r.device);
  if (label !== xfsLabel(r.device_id)) {
    if (!setup) throw precondition(`Device ${r.device} is not set up`);
    if (type && !r.destroy_data) throw precondition(`Device ${r.device} has a ${type} file system; use destroydata to overwrite it`);
    await run('mkfs.xfs', ['-f', '-q', '-i', 'size=512', '-L', xfsLabel(r.device_id), r.device]);
  }
  mkdirSync(mp, { recursive: true });
  await run('mount', [...(st.isFile() ? ['-o', 'loop'] : []), r.device, mp]);
  return mp;
}

function space(dir: string): { total_bytes: number; free_bytes: number } {
  const s = statfsSync(dir);
  return { total_bytes: s.blocks * s.bsize, free_bytes: s.bavail * s.bsize };
}

/** `pvcreate` + `vgcreate`: makes the device ready; answers how much it can give out. */
export async function deviceSetup(r: DeviceReq): Promise<{ total_bytes: number; free_bytes: number }> {
  checkIds(r);
  return space(await imageDir(r, true));
}

/** `vgremove`: refuses while bricks remain; unmounts a file or block device. */
export async function deviceTeardown(r: DeviceReq): Promise<Record<string, never>> {
  checkIds(r);
  const left = (await brickScan(r)).bricks;
  if (left.length) throw precondition(`Device ${r.device} still has ${left.length} brick(s)`);
  const mp = deviceMount(r.device_id);
  if (isMounted(mp)) await unmount(mp);
  rmdirQuiet(mp);
  rmdirQuiet(join(mountRoot, `vg_${r.device_id}`));
  return {};
}

/** `lvcreate` + `mkfs.xfs` + `mount`: the brick directory, on its own file system of size_bytes. */
export async function brickCarve(r: CarveReq): Promise<{ path: string; mount_point: string }> {
  checkIds(r);
  const size = Number(r.size_bytes ?? 0);
  if (!(size > 0)) throw invalid('brick size must be positive');
  const mp = brickMount(r.device_id, r.brick_id);
  if (!isMounted(mp)) {
    const img = join(await imageDir(r, false), `brick_${r.brick_id}.img`);
    if (!existsSync(img)) {
      const { free_bytes } = space(join(img, '..'));
      if (free_bytes < size) throw precondition(`No space on device ${r.device}: ${free_bytes} bytes free, ${size} needed`);
      const fd = openSync(img, 'wx', 0o600);
      try {
        ftruncateSync(fd, size);
      } finally {
        closeSync(fd);
      }
    }
    if ((await fsType(img)).type !== 'xfs') await run('mkfs.xfs', ['-f', '-q', '-i', 'size=512', img]);
    mkdirSync(mp, { recursive: true });
    await run('mount', ['-o', 'loop', img, mp]);
  }
  const path = join(mp, 'brick');
  mkdirSync(path, { recursive: true });
  return { path, mount_point: mp };
}

async function unmount(mp: string): Promise<void> {
  for (let i = 0; i < 5 && isMounted(mp); i++) {
    try {
      await run('umount', [mp]);
    } catch (e) {
      if (i === 4) throw e;
      await new Promise((r) => setTimeout(r, 200 * (i + 1)));
    }
  }
}

function rmdirQuiet(p: string): void {
  try {
    rmdirSync(p);
  } catch {
    /* absent or not empty */
  }
}

/** `umount` + `lvremove`: unmounts, detaches the loop device, removes the image. Absent is fine. */
export async function brickRemove(r: CarveReq): Promise<Record<string, never>> {
  checkIds(r);
  const mp = brickMount(r.device_id, r.brick_id);
  await unmount(mp);
  let dir: string | undefined;
  try {
    dir = await imageDir(r, false);
  } catch {
    dir = undefined; // the device is gone or not set up: no image to remove
  }
  if (dir) {
    const img = join(dir, `brick_${r.brick_id}.img`);
    if (existsSync(img)) {
      const loops = (await run('losetup', ['-j', img]).catch(() => '')).split('\n').map((l) => l.split(':')[0]).filter(Boolean);
      for (const dev of loops) await run('losetup', ['-d', dev]).catch(() => undefined);
      rmSync(img, { force: true });
    }
  }
  if (existsSync(mp) && !isMounted(mp)) {
    rmdirQuiet(join(mp, 'brick'));
    rmdirQuiet(mp);
  }
  rmdirQuiet(join(mountRoot, `vg_${r.device_id}`));
  return {};
}

/** What this node holds for a device: each brick with an image and/or a mount point. */
export async function brickScan(r: DeviceReq): Promise<{ bricks: { brick_id: string; image: boolean; mounted: boolean; size_bytes: number }[] }> {
  checkIds(r);
  const found = new Map<string, { brick_id: string; image: boolean; mounted: boolean; size_bytes: number }>();
  const entry = (id: string) => found.get(id) ?? found.set(id, { brick_id: id, image: false, mounted: false, size_bytes: 0 }).get(id)!;
  let dir: string | undefined;
  try {
    dir = await imageDir(r, false);
  } catch {
    dir = undefined;
  }
  if (dir) {
    for (const f of readdirSync(dir)) {
      const m = /^brick_(.+)\.img$/.exec(f);
      if (m) Object.assign(entry(m[1]), { image: true, size_bytes: statSync(join(dir, f)).size });
    }
  }
  const vg = join(mountRoot, `vg_${r.device_id}`);
  if (existsSync(vg)) {
    const mounted = mounts();
    for (const f of readdirSync(vg)) {
      const m = /^brick_(.+)$/.exec(f);
      if (m) entry(m[1]).mounted = mounted.has(join(vg, f));
    }
  }
  return { bricks: [...found.values()].sort((a, b) => a.brick_id.localeCompare(b.brick_id)) };
}
