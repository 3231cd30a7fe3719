// The random-operation test at length: node dist/scripts/fsx.js [--type distribute|replicate|stripe]
// [--steps N] [--seed N] (or FSX_SEED / FSX_STEPS). Makes a 2-brick volume, runs the seeded ops on
// its mount and on a local directory, prints the seed first and on any mismatch, and cleans up.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Cluster } from '../test/harness.js';
import { fsxSeed, runFsx } from '../test/support/fsx.js';

const { values } = parseArgs({
  options: {
    type: { type: 'string', default: 'distribute' },
    steps: { type: 'string', default: process.env.FSX_STEPS ?? '5000' },
    seed: { type: 'string', default: '' },
    subnet: { type: 'string', default: '98' },
  },
});
const TYPES: Record<string, string[]> = { distribute: [], replicate: ['replica', '2'], stripe: ['stripe', '2'] };
const typeArgs = TYPES[values.type!];
if (!typeArgs) throw new Error(`--type must be one of ${Object.keys(TYPES).join(', ')}`);
const seed = values.seed ? Number(values.seed) >>> 0 : fsxSeed();
const steps = Number(values.steps);

const teardowns: (() => Promise<unknown>)[] = [];
const fakeT = { teardown: (fn: () => Promise<unknown>) => { teardowns.push(fn); } } as unknown as Parameters<typeof Cluster.start>[0];
let rc = 1;
try {
  console.log(`fsx ${values.type}: seed ${seed}, ${steps} steps (replay: FSX_SEED=${seed})`);
  const c = await Cluster.start(fakeT, { nodes: 2, subnet: Number(values.subnet) });
  await c.probeAll();
  await c.volume('fsx', [[0, 'b1'], [1, 'b1']], typeArgs);
  const mp = await c.mount('fsx');
  await mkdir(join(mp, 'fsx'));
  const local = await mkdtemp(join(tmpdir(), 'gfs-fsx-'));
  teardowns.push(() => rm(local, { recursive: true, force: true }));
  await runFsx(join(mp, 'fsx'), local, { seed, steps, progress: (n) => { if (n % 1000 === 0) console.log(`  ${n} steps`); } });
  console.log(`fsx ${values.type}: ${steps} steps, no mismatch (seed ${seed})`);
  rc = 0;
} catch (e) {
  console.error(`fsx ${values.type}: FAILED with seed ${seed}: ${(e as Error).message}`);
} finally {
  for (const fn of teardowns.reverse()) await fn().catch(() => undefined);
}
process.exit(rc);
