// Replicate benchmarks, ratios against a baseline measured in the same run: replica 2 write
// throughput against distribute (dd bs=1M of 1 GiB on each, the same disk), and the time from a
// brick's restart until `heal info` shows 0 entries, for 1,000 small files and for one 1 GiB file.
// Run: node dist/scripts/bench-replicate.js  (as root; uses 127.51.x.x)
import type { ExecutionContext } from 'ava';
import { Cluster, sh, waitFor } from '../test/harness.js';

const GIB = Number(process.env.BENCH_MB ?? 1024);

async function main(): Promise<void> {
  const downs: (() => Promise<void>)[] = [];
  const t = { teardown: (fn: () => Promise<void>) => downs.push(fn) } as unknown as ExecutionContext;
  try {
    const c = await Cluster.start(t, { nodes: 2, subnet: 51 });
    await c.probeAll();
    await c.volume('dist', [[0, 'd'], [1, 'd']]);
    await c.volume('rep', [[0, 'r'], [1, 'r']], ['replica', '2']);
    const [md, mr] = [await c.mount('dist'), await c.mount('rep')];
    const dd = async (mp: string, name: string) => {
      const t0 = Date.now();
      const r = await sh(`dd if=/dev/zero of=${mp}/${name} bs=1M count=${GIB} conv=fsync 2>&1`, { timeoutMs: 1_800_000 });
      if (r.code !== 0) throw new Error(r.stdout);
      return (GIB / ((Date.now() - t0) / 1000));
    };
    const vd = await dd(md, 'big');
    const vr = await dd(mr, 'big');
    console.log(`write ${GIB} MiB: distribute ${vd.toFixed(1)} MiB/s, replica 2 ${vr.toFixed(1)} MiB/s, ratio ${(vr / vd).toFixed(2)}`);
    await sh(`rm -f ${md}/big ${mr}/big`);

    const pidOf = async (brick: string) => {
      const st = await c.mustGfs(['volume', 'status', 'rep']);
      return Number(st.split('\n').find((l) => l.startsWith(`Brick ${brick}`))!.trim().split(/\s+/).pop());
    };
    const entries = async () => {
      const info = await c.mustGfs(['volume', 'heal', 'rep', 'info']);
      return [...info.matchAll(/Number of entries: (\S+)/g)].reduce((a, m) => a + (Number(m[1]) || 0), 0);
    };
    const healTime = async (what: string, load: string) => {
      process.kill(await pidOf(c.brickSpec(1, 'r')), 'SIGKILL');
      const r = await sh(load, { timeoutMs: 1_800_000 });
      if (r.code !== 0) throw new Error(r.stderr);
      const t0 = Date.now();
      await c.mustGfs(['volume', 'start', 'rep', 'force']);
      await waitFor('heal info 0', async () => (await entries()) === 0, 3_600_000);
      console.log(`heal of ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s from restart to heal info 0`);
    };
    await healTime('1,000 small files', `mkdir -p ${mr}/small && cd ${mr}/small && for i in $(seq 1 1000); do echo file $i > f$i; done`);
    await healTime(`one ${GIB} MiB file`, `dd if=/dev/urandom of=${mr}/huge bs=1M count=${GIB} 2>/dev/null`);
  } finally {
    for (const fn of downs.reverse()) await fn();
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
