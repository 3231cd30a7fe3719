// npm run lab: a local pool of gfsd "nodes" on 127.0.0.1, 127.0.0.2, ..., a distributed volume
// over one brick per node, mounted and usable until Ctrl-C; then it unmounts and stops all it started.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = { gfs: join(REPO, 'dist/mgmt/cli.js'), gfsd: join(REPO, 'dist/mgmt/gfsd.js'), mount: join(REPO, 'dist/client/main.js') };

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '2' },
    volume: { type: 'string', default: 'volume1' },
    mount: { type: 'string', default: '/mnt/gfs/volume1' },
    workdir: { type: 'string', default: '/var/lib/gfs-lab' },
    port: { type: 'string', default: '24007' },
    netns: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(`usage: npm run lab -- [--nodes N] [--volume NAME] [--mount DIR] [--workdir DIR] [--port P]
Starts N gfsd nodes on 127.0.0.1..N, a distributed volume with one brick per node, mounts it,
and keeps running until Ctrl-C (then unmounts and stops everything it started).
--netns: each node is a network namespace of its own (10.77.0.11.., veths into a bridge namespace),
with its own gfsd and bricks; a client namespace mounts a distributed-replicated volume
(default 4 nodes, workdir /var/lib/gfs-lab-netns). See README "The netns lab".`);
  process.exit(0);
}
const nodes = Number(values.nodes);
const port = Number(values.port);
const hosts = Array.from({ length: nodes }, (_, i) => `127.0.0.${i + 1}`);
const procs: ChildProcess[] = [];

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    const c = execFile(cmd, args, { timeout: 120_000 }, (err, stdout, stderr) => res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }));
    c.stdin?.end();
  });
}

const gfs = (...args: string[]) => run(process.execPath, [BIN.gfs, '--remote-host', `${hosts[0]}:${port}`, '--mode=script', ...args]);

async function must(p: Promise<{ code: number; out: string }>, what: string): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} failed: ${r.out.trim()}`);
  return r.out;
}

function listening(host: string): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ host, port }, () => { s.destroy(); res(true); });
    s.on('error', () => res(false));
  });
}

async function up(): Promise<void> {
  for (const [i, host] of hosts.entries()) {
    if (await listening(host)) throw new Error(`something already listens on ${host}:${port} (another lab or gfsd?)`);
    const workdir = join(values.workdir!, `node${i + 1}`);
    await mkdir(workdir, { recursive: true });
    const p = spawn(process.execPath, [BIN.gfsd, '--listen', `${host}:${port}`, '--workdir', workdir, '--log-file', join(workdir, 'gfsd.log')], { stdio: 'inherit' });
    procs.push(p);
    for (let k = 0; k < 100 && !(await listening(host)); k++) await new Promise((r) => setTimeout(r, 100));
  }
  for (const host of hosts.slice(1)) await must(gfs('peer', 'probe', `${host}:${port}`), `peer probe ${host}`);
  const vol = values.volume!;
  const exists = (await gfs('volume', 'info', vol)).code === 0;
  if (!exists) {
    const bricks = hosts.map((h, i) => `${h}:${join(values.workdir!, 'bricks', `node${i + 1}`, 'brick1')}`);
    await must(gfs('volume', 'create', vol, ...bricks, 'force'), 'volume create');
  }
  const info = await must(gfs('volume', 'info', vol), 'volume info');
  if (!/Status: Started/.test(info)) await must(gfs('volume', 'start', vol), 'volume start');
  await mkdir(values.mount!, { recursive: true });
  await must(run(process.execPath, [BIN.mount, `${hosts[0]}:${port}:${vol}`, values.mount!]), 'gfs-mount');
  console.log(await must(gfs('volume', 'info', vol), 'volume info'));
  console.log(`\nVolume ${vol} is mounted on ${values.mount}. Try:
  cd ${values.mount} && touch testfile{1..6} && ls ${join(values.workdir!, 'bricks')}/*/brick1
  gfs --remote-host ${hosts[0]}:${port} volume status ${vol}
Ctrl-C unmounts and stops everything this lab started (the volume and its data are kept in ${values.workdir}).`);
}

let stopping = false;
async function down(code: number): Promise<never> {
  if (stopping) process.exit(code);
  stopping = true;
  console.log('\nlab: unmounting and stopping');
  await run('fusermount', ['-u', values.mount!]).then((r) => (r.code ? run('umount', ['-l', values.mount!]) : r));
  await gfs('volume', 'stop', values.volume!);
  for (const p of procs) p.kill('SIGTERM');
  process.exit(code);
}

if (values.netns) {
  const { labMain } = await import('./netns-lab.js');
  const given = (k: string) => process.argv.some((a) => a === `--${k}` || a.startsWith(`--${k}=`));
  await labMain({ nodes: given('nodes') ? nodes : 4, volume: values.volume!, mount: values.mount!, workdir: given('workdir') ? values.workdir! : '/var/lib/gfs-lab-netns' });
} else {
  process.on('SIGINT', () => void down(0));
  process.on('SIGTERM', () => void down(0));
  up().catch(async (e) => {
    console.error(`lab: ${(e as Error).message}`);
    await down(1);
  });
}
