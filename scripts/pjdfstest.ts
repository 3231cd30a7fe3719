// Runs pjdfstest (built outside the repo, default /tmp/pjdfstest) as root on a freshly made gfs volume:
//   node dist/scripts/pjdfstest.js --type distribute|replicate|stripe [--tests chown,open/00.t] [--log FILE] [-v]
// Prints prove's summary and one line "pjdfstest TYPE: files F, assertions A, failed N"; leaves no
// mount or process behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Cluster } from '../test/harness.js';

const { values } = parseArgs({
  options: {
    type: { type: 'string', default: 'distribute' },
    tests: { type: 'string', default: '' },
    suite: { type: 'string', default: '/tmp/pjdfstest/tests' },
    log: { type: 'string', default: '' },
    subnet: { type: 'string', default: '97' },
    verbose: { type: 'boolean', short: 'v', default: false },
  },
});
const TYPES: Record<string, string[]> = { distribute: [], replicate: ['replica', '2'], stripe: ['stripe', '2'] };
const typeArgs = TYPES[values.type!];
if (!typeArgs) throw new Error(`--type must be one of ${Object.keys(TYPES).join(', ')}`);

const teardowns: (() => Promise<void>)[] = [];
const fakeT = { teardown: (fn: () => Promise<void>) => { teardowns.push(fn); } } as unknown as Parameters<typeof Cluster.start>[0];
let prove: ChildProcess | undefined;

let cleaning: Promise<void> | undefined;
/** Unmounts and stops the cluster, once: a second caller waits for the first one's work. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of teardowns.reverse()) await fn().catch(() => undefined);
  })();
  return cleaning;
}

// Ended by a signal (a timeout), it still ends prove and the tests it runs (a test stuck on the
// mount included) and stops every daemon it started.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`pjdfstest: ${sig}, cleaning up\n`);
    if (prove?.pid) {
      try { process.kill(-prove.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  });
}

async function main(): Promise<number> {
  const c = await Cluster.start(fakeT, { nodes: 2, subnet: Number(values.subnet) });
  await c.probeAll();
  await c.volume('pjd', [[0, 'b1'], [1, 'b1']], typeArgs);
  const mp = await c.mount('pjd');
  const dir = join(mp, 'pjd');
  await mkdir(dir);
  const targets = values.tests ? values.tests.split(',').map((g) => join(values.suite!, g)) : [values.suite!];
  const out = values.log ? createWriteStream(values.log) : process.stdout;
  let text = '';
  const code = await new Promise<number>((res) => {
    // A group of its own, so that a signal here can end it with every test it started.
    const p = spawn('prove', ['-r', ...(values.verbose ? ['-v'] : []), ...targets], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    prove = p;
    const take = (d: Buffer) => { text += String(d); out.write(d); };
    p.stdout.on('data', take);
    p.stderr.on('data', take);
    p.on('exit', (code) => res(code ?? 1));
  });
  const m = /Files=(\d+), Tests=(\d+)/.exec(text);
  const failed = [...text.matchAll(/Tests: \d+ Failed: (\d+)\)/g)].reduce((s, x) => s + Number(x[1]), 0);
  console.log(`pjdfstest ${values.type}: files ${m?.[1] ?? '?'}, assertions ${m?.[2] ?? '?'}, failed ${failed}`);
  return code;
}

let rc = 1;
try {
  rc = await main();
} finally {
  await cleanup();
}
process.exit(rc);
