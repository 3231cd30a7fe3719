// Where a volume's bricks go, as Heketi's allocator decides: sets of `replica` bricks, never two of
// one set on the same node, zones spread when there are enough, the devices with most free space
// first; the volume is split into more (smaller) sets when one brick would exceed
// brick_max_size_gb or when nothing fits, down to brick_min_size_gb and max_bricks_per_volume.
export const GiB_KiB = 1024 * 1024;

export interface DeviceSlot { id: string; node: string; zone: number; free: number }

export interface Limits { brickMinGb: number; brickMaxGb: number; maxBricks: number }

export interface Placement { brickKiB: number; sets: string[][] }

export class NoSpaceError extends Error {
  constructor(message: string) {
    super(`No space: ${message}`);
    this.name = 'NoSpaceError';
  }
}

/** One attempt: `sets` sets of `replica` bricks of brickKiB each; undefined when they do not fit. */
function tryPlace(devices: DeviceSlot[], sets: number, replica: number, brickKiB: number): string[][] | undefined {
  const free = new Map(devices.map((d) => [d.id, d.free]));
  const out: string[][] = [];
  for (let s = 0; s < sets; s++) {
    const nodes = new Set<string>();
    const zones = new Set<number>();
    const set: string[] = [];
    for (let r = 0; r < replica; r++) {
      const pick = devices
        .filter((d) => free.get(d.id)! >= brickKiB && !nodes.has(d.node))
        .sort((a, b) => Number(zones.has(a.zone)) - Number(zones.has(b.zone)) || free.get(b.id)! - free.get(a.id)! || a.id.localeCompare(b.id))[0];
      if (!pick) return undefined;
      free.set(pick.id, free.get(pick.id)! - brickKiB);
      nodes.add(pick.node);
      zones.add(pick.zone);
      set.push(pick.id);
    }
    out.push(set);
  }
  return out;
}

const gib = (kib: number) => `${+(kib / GiB_KiB).toFixed(2)} GiB`;

/** Places a volume of sizeGb; throws NoSpaceError saying what was short. */
export function place(devices: DeviceSlot[], sizeGb: number, replica: number, lim: Limits): Placement {
  const sizeKiB = sizeGb * GiB_KiB;
  let sets = 1;
  while (Math.ceil(sizeKiB / sets) > lim.brickMaxGb * GiB_KiB) sets *= 2;
  let last = { sets, brickKiB: Math.ceil(sizeKiB / sets) };
  for (;;) {
    const brickKiB = Math.ceil(sizeKiB / sets);
    if (brickKiB < lim.brickMinGb * GiB_KiB || sets * replica > lim.maxBricks) break;
    last = { sets, brickKiB };
    const placed = tryPlace(devices, sets, replica, brickKiB);
    if (placed) return { brickKiB, sets: placed };
    sets *= 2;
  }
  const nodesWithRoom = new Set(devices.filter((d) => d.free >= last.brickKiB).map((d) => d.node));
  const totalFree = devices.reduce((a, d) => a + d.free, 0);
  const largest = devices.reduce((a, d) => Math.max(a, d.free), 0);
  const why = devices.length === 0
    ? 'no online devices in the cluster'
    : nodesWithRoom.size < replica
      ? `${nodesWithRoom.size} node(s) have a device with ${gib(last.brickKiB)} free, ${replica} needed (largest free device: ${gib(largest)})`
      : `${gib(totalFree)} free in all, ${gib(sizeKiB * replica)} needed`;
  throw new NoSpaceError(`cannot place ${last.sets} x ${replica} brick(s) of ${gib(last.brickKiB)} for a ${sizeGb} GiB volume: ${why}`);
}
