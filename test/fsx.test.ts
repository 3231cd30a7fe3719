// The random-operation test on every volume type: the same seeded operations on a gfs mount and on
// a local directory, compared after every step (see test/support/fsx.ts). A failure names the
// seed; FSX_SEED=N (and FSX_STEPS=M) replays it. scripts/fsx.ts runs far more steps.
import test from 'ava';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from './harness.js';
import { fsxSeed, runFsx } from './support/fsx.js';

const SUBNET = 90;
const STEPS = Number(process.env.FSX_STEPS ?? 150);

const VOLUMES: [string, string[]][] = [['distribute', []], ['replicate', ['replica', '2']], ['stripe', ['stripe', '2']]];

for (const [type, typeArgs] of VOLUMES) {
  test(`fsx: ${STEPS} random operations on a ${type} volume match a local directory`, async (t) => {
    const c = await Cluster.start(t, { nodes: 2, subnet: SUBNET });
    await c.probeAll();
    await c.volume(type, [[0, `${type}1`], [1, `${type}1`]], typeArgs);
    const mp = await c.mount(type);
    const dir = join(mp, 'fsx');
    await mkdir(dir);
    const local = await mkdtemp(join(tmpdir(), 'gfs-fsx-'));
    t.teardown(() => rm(local, { recursive: true, force: true }));
    const seed = fsxSeed();
    t.log(`seed ${seed} (replay: FSX_SEED=${seed} FSX_STEPS=${STEPS})`);
    const stats = new Map<string, number>();
    t.is(await runFsx(dir, local, { seed, steps: STEPS, stats }), STEPS);
    t.log([...stats].sort().map(([k, v]) => `${k}: ${v}`).join(', '));
    const n = (k: string) => stats.get(k) ?? 0;
    t.true(n('write ok') + n('append ok') > 0, 'the run wrote data');
    t.true(n('read ok') + n('files read at the end') > 0, 'and read it back');
  });
}
