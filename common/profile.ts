// Where the time goes, per process: counts and total time of named operations (FUSE requests,
// brick calls), kept only while enabled (GFS_PROFILE=1, or enableProfile()). Cheap when off.
export interface ProfileRow { count: number; totalMs: number; maxMs: number }

const rows = new Map<string, ProfileRow>();
let enabled = process.env.GFS_PROFILE === '1';

export function profileEnabled(): boolean {
  return enabled;
}

export function enableProfile(on = true): void {
  enabled = on;
}

/** Adds one operation of `ms` milliseconds under `name` (e.g. 'fuse.WRITE', 'rpc.Write'). */
export function profileAdd(name: string, ms: number): void {
  let r = rows.get(name);
  if (!r) rows.set(name, (r = { count: 0, totalMs: 0, maxMs: 0 }));
  r.count++;
  r.totalMs += ms;
  if (ms > r.maxMs) r.maxMs = ms;
}

/** The rows so far, slowest total first; reset empties the table. */
export function profileSnapshot(reset = false): Record<string, ProfileRow & { avgUs: number }> {
  const out: Record<string, ProfileRow & { avgUs: number }> = {};
  for (const [k, r] of [...rows.entries()].sort((a, b) => b[1].totalMs - a[1].totalMs)) {
    out[k] = { count: r.count, totalMs: Math.round(r.totalMs * 10) / 10, maxMs: Math.round(r.maxMs * 10) / 10, avgUs: Math.round((r.totalMs / r.count) * 1000) };
  }
  if (reset) rows.clear();
  return out;
}
