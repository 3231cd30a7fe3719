// GET /db/check: where the db and the nodes disagree. Compares the db with itself (space accounting,
// references), with each node's carved bricks (BrickScan) and with each cluster's gfs volumes.
import type { Provisioner } from './provisioner.js';

export interface CheckReport { ok: boolean; executor: string; problems: string[]; pending_operations: object[] }

const OURS_RE = /^vol_[0-9a-f]{32}$/;

export async function dbCheck(p: Provisioner): Promise<CheckReport> {
  const problems: string[] = [];
  const db = p.db;
  const ops = db.list('op');
  for (const op of ops) problems.push(`pending operation ${op.id}: ${op.type} of volume ${op.volume}${op.lastError ? ` (last error: ${op.lastError})` : ''}`);

  for (const d of db.list('device')) {
    const sum = d.bricks.reduce((a, id) => a + (db.get('brick', id)?.size ?? 0), 0);
    if (d.storage.used !== sum) problems.push(`device ${d.id}: used ${d.storage.used} KiB but its bricks add up to ${sum} KiB`);
    if (d.storage.free + d.storage.used !== d.storage.total) problems.push(`device ${d.id}: free ${d.storage.free} + used ${d.storage.used} != total ${d.storage.total} KiB`);
    for (const id of d.bricks) if (!db.get('brick', id)) problems.push(`device ${d.id}: brick ${id} is not in the db`);
  }
  const volumes = db.list('volume');
  for (const b of db.list('brick')) {
    const v = db.get('volume', b.volume);
    if (!v || !v.bricks.includes(b.id)) problems.push(`brick ${b.id}: not part of volume ${b.volume}`);
    if (!db.get('device', b.device)?.bricks.includes(b.id)) problems.push(`brick ${b.id}: not listed on device ${b.device}`);
  }
  for (const v of volumes) for (const id of v.bricks) if (!db.get('brick', id)) problems.push(`volume ${v.name}: brick ${id} is not in the db`);

  if (p.ex.name === 'gfsd') {
    for (const n of db.list('node').filter((x) => x.state === 'online')) {
      for (const d of n.devices.map((id) => db.get('device', id)).filter((x) => !!x)) {
        let found;
        try {
          found = await p.ex.brickScan(n, d!);
        } catch (e) {
          problems.push(`node ${n.hostnames.manage[0]}: cannot scan device ${d!.name}: ${(e as Error).message}`);
          continue;
        }
        const onNode = new Map(found.map((b) => [b.brick_id, b]));
        for (const id of d!.bricks) {
          const b = onNode.get(id);
          if (!b) problems.push(`brick ${id}: in the db but not on node ${n.hostnames.manage[0]} device ${d!.name}`);
          else if (!b.mounted) problems.push(`brick ${id}: on node ${n.hostnames.manage[0]} but not mounted`);
        }
        for (const b of found) if (!d!.bricks.includes(b.brick_id)) problems.push(`brick ${b.brick_id}: on node ${n.hostnames.manage[0]} device ${d!.name} but not in the db`);
      }
    }
    for (const c of db.list('cluster')) {
      if (!p.clusterNodes(c.id).length) continue;
      let gfs;
      try {
        gfs = await p.onCluster(c.id, (n) => p.ex.volumes(n));
      } catch (e) {
        problems.push(`cluster ${c.id}: cannot list volumes: ${(e as Error).message}`);
        continue;
      }
      const mine = volumes.filter((v) => v.cluster === c.id);
      for (const v of mine) {
        const g = gfs.get(v.name);
        if (!g) problems.push(`volume ${v.name}: in the db but not on the nodes`);
        else if (g.status !== 'Started') problems.push(`volume ${v.name}: ${g.status}, not Started`);
        else if (g.bricks.length !== v.bricks.length) problems.push(`volume ${v.name}: ${g.bricks.length} bricks on the nodes, ${v.bricks.length} in the db`);
      }
      for (const name of gfs.keys()) {
        if (OURS_RE.test(name) && !mine.some((v) => v.name === name)) problems.push(`volume ${name}: on the nodes but not in the db`);
      }
    }
  }
  return { ok: problems.length === 0, executor: p.ex.name, problems, pending_operations: ops };
}
