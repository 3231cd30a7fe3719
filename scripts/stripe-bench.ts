// scripts/stripe-bench: sequential write and read of one file (dd bs=1M, caches dropped before the
// read) on a stripe 2 volume, as a ratio to a distribute volume over bricks on the same two nodes,
// measured in the same run. Usage: node dist/scripts/stripe-bench.js [--size MiB] (as root).
import { parseArgs } from 'node:util';
import { Cluster, sh } from '../test/harness.js';

const { values } = parseArgs({ options: { size: { type: 'string' } } });
const MIB = Number(values.size ?? 1024);

async function secs(script: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await sh(script, { timeoutMs: 3_600_000 });
  if (r.code !== 0) throw new Error(`${script}: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const teardowns: (() => Promise<void>)[] = [];
const t = { teardown: (fn: () => Promise<void>) => teardowns.push(fn) } as unknown as Parameters<typeof Cluster.start>[0];

try {
  const c = await Cluster.start(t, { nodes: 2, subnet: 69 });
  await c.probeAll();
  await c.volume('dist', [[0, 'd0'], [1, 'd1']]);
  await c.volume('stripe', [[0, 's0'], [1, 's1']], ['stripe', '2']);
  const result: Record<string, { write: number; read: number }> = {};
  for (const v of ['dist', 'stripe']) {
    const mp = await c.mount(v);
    const w = await secs(`dd if=/dev/zero of=${mp}/big bs=1M count=${MIB} conv=fsync 2>&1`);
    await sh('sync; echo 3 > /proc/sys/vm/drop_caches');
    const r = await secs(`dd if=${mp}/big of=/dev/null bs=1M 2>&1`);
    result[v] = { write: MIB / w, read: MIB / r };
    console.log(`${v}: write ${(MIB / w).toFixed(1)} MiB/s, read ${(MIB / r).toFixed(1)} MiB/s`);
    await sh(`rm -f ${mp}/big`);
  }
  console.log(`stripe 2 / distribute, ${MIB} MiB: write ${(result.stripe.write / result.dist.write).toFixed(2)}, read ${(result.stripe.read / result.dist.read).toFixed(2)}`);
} finally {
  for (const fn of teardowns.reverse()) await fn();
}
