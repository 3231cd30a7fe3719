// Compares the two FUSE bridges on one distributed volume (2 bricks, real gfsd and brick daemons on
// loopback): dd of a large file in 1 MiB blocks, written and read, with the local disk as the
// baseline measured in the same run, and optionally pjdfstest through each bridge.
//
//   node dist/scripts/bridge-bench.js [--size-mib 1024] [--pjdfstest /tmp/pjdfstest] [--bridges kernel,fuse-native]
//
// Prints MiB/s per bridge and the ratio to the local disk, the READ/WRITE request sizes the kernel
// sent (kernel bridge: counted by the daemon, logged when the device closes), and pjdfstest's summary.
import { parseArgs } from 'node:util';
import { readFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Cluster, sh, waitFor } from '../test/harness.js';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    pjdfstest: { type: 'string' },
    bridges: { type: 'string', default: 'kernel,fuse-native' },
    subnet: { type: 'string', default: '45' },
  },
});

const sizeMib = Number(values['size-mib']);
const teardowns: (() => Promise<void>)[] = [];
const fakeT = { teardown: (fn: () => Promise<void>) => { teardowns.push(fn); } } as unknown as Parameters<typeof Cluster.start>[0];

async function dd(label: string, dir: string): Promise<{ write: number; read: number }> {
  const f = join(dir, `dd-${label}`);
  const w = await sh(`dd if=/dev/zero of=${f} bs=1M count=${sizeMib} conv=fsync 2>&1`, { timeoutMs: 3_600_000 });
  const r = await sh(`dd if=${f} of=/dev/null bs=1M 2>&1`, { timeoutMs: 3_600_000 });
  const rate = (out: string) => {
    const m = /(\d+) bytes .* copied, ([\d.]+) s/.exec(out);
    return m ? Number(m[1]) / 1048576 / Number(m[2]) : NaN;
  };
  await rm(f, { force: true });
  return { write: rate(w.stdout), read: rate(r.stdout) };
}

async function main(): Promise<void> {
  const c = await Cluster.start(fakeT, { nodes: 1, subnet: Number(values.subnet) });
  try {
    await c.volume('bench', [[0, 'b1'], [0, 'b2']]);
    const local = join(c.root, 'local');
    await mkdir(local, { recursive: true });
    const base = await dd('local', local);
    console.log(`local disk: write ${base.write.toFixed(1)} MiB/s, read ${base.read.toFixed(1)} MiB/s`);
    for (const bridge of String(values.bridges).split(',')) {
      const mp = await c.mountpoint(`bench-${bridge}`);
      const logFile = join(c.root, `mount-${bridge}.log`);
      await c.mount('bench', mp, ['-o', `bridge=${bridge}`, '--log-file', logFile]);
      const r = await dd(bridge, mp);
      console.log(`${bridge}: write ${r.write.toFixed(1)} MiB/s (${(r.write / base.write).toFixed(2)} x local), read ${r.read.toFixed(1)} MiB/s (${(r.read / base.read).toFixed(2)} x local)`);
      if (values.pjdfstest) {
        const dir = join(mp, 'pjd');
        await mkdir(dir);
        const out = join(c.root, `pjdfstest-${bridge}.log`);
        await sh(`cd ${dir} && prove -r ${values.pjdfstest}/tests > ${out} 2>&1`, { timeoutMs: 7_200_000 });
        const text = await readFile(out, 'utf8');
        const summary = text.split('\n').filter((l) => /^Files=|^Result:|Failed \d+\/\d+ subtests|^Tests: /.test(l) || /Wstat|Failed:/.test(l));
        console.log(`${bridge} pjdfstest:\n${summary.join('\n')}`);
        const groups = new Map<string, number>();
        for (const m of text.matchAll(/^\/\S*tests\/(\w+)\/\S+\s+\(Wstat: \d+.*Tests: \d+ Failed: (\d+)\)/gm)) groups.set(m[1], (groups.get(m[1]) ?? 0) + Number(m[2]));
        console.log(`${bridge} failures by group: ${JSON.stringify(Object.fromEntries(groups))}`);
        await sh(`cp ${out} /tmp/pjdfstest-${bridge}.log`);
        await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      }
      await c.unmount(mp);
      if (bridge === 'kernel') {
        await waitFor('the request sizes in the log', async () => (await readFile(logFile, 'utf8')).includes('requestSizes'), 10_000).catch(() => undefined);
        const line = (await readFile(logFile, 'utf8')).split('\n').find((l) => l.includes('requestSizes'));
        if (line) console.log(`kernel request sizes (size: count): ${JSON.stringify(JSON.parse(line).requestSizes)}`);
      }
    }
  } finally {
    for (const fn of teardowns) await fn();
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
