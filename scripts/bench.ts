// scripts/bench: the workloads of the performance issue on the local disk, a minimal fuse-native
// passthrough (the ceiling for a Node FUSE client) and gfs volumes with all bricks on 127.0.0.1,
// medians over repeated runs, each gfs figure as a ratio to the passthrough and to the local disk;
// where GlusterFS is installed, also on real GlusterFS volumes of the same shapes (scripts/gluster.ts),
// each gfs figure then also as a ratio to the GlusterFS volume of its shape.
// Usage: npm run bench -- [--quick] [--runs N] [--size MiB] [--targets a,b] [--workloads a,b]
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Cluster } from '../test/harness.js';
import { Gluster, GLUSTER_INSTALL, GLUSTER_VOLUMES } from './gluster.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' }, runs: { type: 'string' }, size: { type: 'string' },
    targets: { type: 'string' }, workloads: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    profile: { type: 'boolean' },
  },
});
if (values.help) {
  console.log('usage: npm run bench -- [--quick] [--profile] [--runs N] [--size MiB] [--targets local,passthrough,dist2,rep2,stripe2,dist-rep2x2,gluster-dist2,gluster-rep2,gluster-dist-rep2x2] [--workloads seqwrite,seqread,randwrite,randread,create,ls,delete,untar,dbench]');
  console.log('  gluster-*  the same workloads on a real GlusterFS volume of that shape (bricks and mount on this host;');
  console.log('             not in the default targets). Needs root and Debian\'s GlusterFS:');
  console.log(`               ${GLUSTER_INSTALL}`);
  console.log('             A running glusterd is used; otherwise the bench starts one (brick ports from 59152) and stops');
  console.log('             it, leaving no mounts or GlusterFS processes behind.');
  console.log('             Each gfs column then also shows its speed relative to gluster-<its shape> (gl): above 1, gfs is faster.');
  console.log('  --profile  after each workload on a gfs volume, print the FUSE requests and brick calls it took, by total time');
  process.exit(0);
}
const quick = !!values.quick;
const RUNS = Number(values.runs ?? (quick ? 1 : 3));
const SIZE_MIB = Number(values.size ?? (quick ? 256 : 1024));
const FIO_SECONDS = quick ? 5 : 10;
const DBENCH_SECONDS = quick ? 5 : 20;
const FILES = quick ? 1000 : 5000;
const PROFILE = !!values.profile;
// The mount daemons (and the bricks) started below inherit this: they count where the time goes.
if (PROFILE) process.env.GFS_PROFILE = '1';

function sh(cmd: string, timeoutMs = 900_000): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    execFile('bash', ['-c', cmd], { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }));
  });
}

async function must(cmd: string): Promise<string> {
  const r = await sh(cmd);
  if (r.code !== 0) throw new Error(`${cmd}: ${r.out.trim().slice(-500)}`);
  return r.out;
}

const dropCaches = () => must('sync; echo 3 > /proc/sys/vm/drop_caches');

/** fn's wall time, from a clean start: the dirty pages and inodes an earlier step (often another
 *  target's) left are written back first, or the kernel's flusher writes them during this one. */
async function timed(fn: () => Promise<unknown>): Promise<number> {
  await must('sync');
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** `frees`: it removes many files (see FREED_WINDOW_MS). */
interface Workload { name: string; label: string; unit: string; higherIsBetter: boolean; frees?: boolean; run(dir: string, scratch: string): Promise<number> }

/** After a workload that removed many files, the next one waits this long. ext4 without a journal
 *  (this host's root file system) makes every inode allocation step over each inode freed in the
 *  last 30 s (35 while its table block is dirty), reading its table block: measured with perf, 12%
 *  of all CPU samples during a create that followed the removal of 20,000 files went to that scan
 *  (recently_deleted, find_get_block_common). Without the wait, whichever target's untar comes first after the last
 *  target's delete pays for the 10,000-20,000 inodes every target just freed. */
const FREED_WINDOW_MS = 36_000;

const fioIops = async (args: string, key: 'read' | 'write') => {
  await must('sync'); // a clean start, as timed()'s
  const out = await must(`fio --output-format=json ${args}`);
  return Math.round(JSON.parse(out.slice(out.indexOf('{'))).jobs[0][key].iops);
};

const WORKLOADS: Workload[] = [
  { name: 'seqwrite', label: `seq write ${SIZE_MIB} MiB, 1 MiB blocks, fsync`, unit: 'MiB/s', higherIsBetter: true,
    run: async (d) => {
      // First an untimed write of the same file, which the timed one truncates and writes again. On
      // a VM whose host takes freed guest memory back (free page reporting), memory touched for the
      // first time since costs the host a fault per page: measured here, a fresh volume's first
      // GiB took 4.4 s (the brick 2.9 s of system time copying into new page-cache pages) and the
      // next 1.7 s. That cost fell on whichever target happened to write first.
      const write = `dd if=/dev/zero of=${d}/seq bs=1M count=${SIZE_MIB} conv=fsync status=none`;
      await must(`[ -f ${d}/seq ] || ${write}`);
      return SIZE_MIB / (await timed(() => must(write)));
    } },
  { name: 'seqread', label: `seq read ${SIZE_MIB} MiB, cold cache`, unit: 'MiB/s', higherIsBetter: true,
    run: async (d) => {
      await must(`[ -f ${d}/seq ] || dd if=/dev/zero of=${d}/seq bs=1M count=${SIZE_MIB} conv=fsync status=none`);
      await dropCaches();
      return SIZE_MIB / (await timed(() => must(`dd if=${d}/seq of=/dev/null bs=1M status=none`)));
    } },
  { name: 'randwrite', label: '4 KiB random write, 256 MiB file', unit: 'IOPS', higherIsBetter: true,
    run: async (d) => {
      await must(`[ -f ${d}/rand ] || dd if=/dev/zero of=${d}/rand bs=1M count=256 status=none`);
      return fioIops(`--name=rw --filename=${d}/rand --size=256M --bs=4k --rw=randwrite --ioengine=psync --runtime=${FIO_SECONDS} --time_based`, 'write');
    } },
  { name: 'randread', label: '4 KiB random read, cold', unit: 'IOPS', higherIsBetter: true,
    run: async (d) => {
      await must(`[ -f ${d}/rand ] || dd if=/dev/zero of=${d}/rand bs=1M count=256 status=none`);
      await dropCaches();
      return fioIops(`--name=rr --filename=${d}/rand --size=256M --bs=4k --rw=randread --ioengine=psync --runtime=${FIO_SECONDS} --time_based`, 'read');
    } },
  { name: 'create', label: `create ${FILES} empty files in one dir`, unit: 's', higherIsBetter: false,
    run: async (d) => {
      await must(`rm -rf ${d}/many && mkdir ${d}/many`); // a repeated run starts from an empty directory, untimed
      return timed(() => must(`cd ${d}/many && for i in $(seq ${FILES}); do : > f$i; done`));
    } },
  { name: 'ls', label: `ls -l of those ${FILES}, cold`, unit: 's', higherIsBetter: false,
    run: async (d) => {
      await must(`[ -d ${d}/many ] || (mkdir ${d}/many && cd ${d}/many && for i in $(seq ${FILES}); do : > f$i; done)`);
      await dropCaches();
      return timed(() => must(`ls -l ${d}/many > /dev/null`));
    } },
  { name: 'delete', label: 'delete them', unit: 's', higherIsBetter: false, frees: true,
    run: async (d) => {
      await must(`[ -d ${d}/many ] || (mkdir ${d}/many && cd ${d}/many && for i in $(seq ${FILES}); do : > f$i; done)`);
      return timed(() => must(`rm -rf ${d}/many`));
    } },
  { name: 'untar', label: `untar ${FILES} files, ${Math.round((FILES * 14) / 1024)} MiB`, unit: 's', higherIsBetter: false,
    run: async (d, scratch) => {
      const tar = join(scratch, `tree-${FILES}.tar`);
      await must(`[ -f ${tar} ] || (mkdir -p ${scratch}/tree && cd ${scratch}/tree && for i in $(seq ${FILES}); do mkdir -p d$((i % 50)); head -c 14336 /dev/urandom > d$((i % 50))/f$i; done && tar cf ${tar} -C ${scratch} tree)`);
      await must(`rm -rf ${d}/untar && mkdir ${d}/untar`);
      return timed(() => must(`tar xf ${tar} -C ${d}/untar`));
    } },
  { name: 'dbench', label: `dbench ${DBENCH_SECONDS} s, 4 clients`, unit: 'MB/s', higherIsBetter: true,
    run: async (d) => {
      await must(`rm -rf ${d}/dbench && mkdir ${d}/dbench && sync`); // a clean start, as timed()'s
      const out = await must(`dbench -D ${d}/dbench -t ${DBENCH_SECONDS} 4 2>&1`);
      const m = /Throughput ([\d.]+) MB\/sec/.exec(out);
      if (!m) throw new Error(`dbench printed no throughput: ${out.slice(-300)}`);
      return Number(m[1]);
    } },
];

interface Target { name: string; gfs: boolean; dir: string; stop(): Promise<void>; profile?: () => Promise<string> }

type ProfileRows = Record<string, { count: number; totalMs: number }>;

/** Asks a daemon for its profile (SIGUSR1) and reads the rows it logged. */
async function daemonProfile(pid: string, logFile: string): Promise<ProfileRows> {
  await sh(`kill -USR1 ${pid}`);
  await new Promise((r) => setTimeout(r, 300));
  const line = (await sh(`grep '"msg":"profile"' ${logFile} | tail -1`)).out.trim();
  return line ? (JSON.parse(line).profile as ProfileRows) : {};
}

/** CPU seconds (user + system) process pid used since the last call for it (since it started, the first time). */
const cpuSeen = new Map<string, number>();
async function cpuSince(pid: string): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from the 3rd on (the name may hold spaces)
  const now = (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  const was = cpuSeen.get(pid) ?? 0;
  cpuSeen.set(pid, now);
  return now - was;
}

/** The profile of the mount daemon serving mp (FUSE requests, brick calls as it waited for them)
 *  and of the volume's brick daemons (time spent in each operation there), summed over bricks. */
async function mountProfile(mp: string, logFile: string, volume: string): Promise<string> {
  const pid = (await sh(`pgrep -f -- '[c]lient/main.js .* ${mp} ' | head -1`)).out.trim();
  if (!pid) return '  (no mount daemon found)';
  const rows = Object.entries(await daemonProfile(pid, logFile)).slice(0, 12);
  const bricks: ProfileRows = {};
  const brickPids = (await sh(`pgrep -f -- '[b]rickd/main.js .*/${volume}-b[0-9]+ '`)).out.split('\n').filter(Boolean);
  // Where the machine's cores went: on a small VM the client and the bricks share them.
  const cpu = [`  cpu: mount daemon ${(await cpuSince(pid)).toFixed(1)} s`];
  for (const b of brickPids) cpu.push(`brick ${b} ${(await cpuSince(b)).toFixed(1)} s`);
  for (const b of brickPids) {
    const argv = (await readFile(`/proc/${b}/cmdline`, 'utf8').catch(() => '')).split('\0');
    const log = argv[argv.indexOf('--log-file') + 1];
    if (!argv.includes('--log-file') || !log) continue;
    for (const [k, r] of Object.entries(await daemonProfile(b, log))) {
      const sum = (bricks[k] ??= { count: 0, totalMs: 0 });
      sum.count += r.count;
      sum.totalMs += r.totalMs;
    }
  }
  rows.push(...Object.entries(bricks).sort((a, b) => b[1].totalMs - a[1].totalMs).slice(0, 6));
  return [...rows.map(([k, r]) => `  ${k.padEnd(20)} ${String(r.count).padStart(8)} calls ${r.totalMs.toFixed(0).padStart(8)} ms  ${String(Math.round((r.totalMs * 1000) / Math.max(1, r.count))).padStart(7)} us avg`), cpu.join(', ')].join('\n');
}

const cleanups: (() => Promise<void>)[] = [];
const fakeT = { teardown: (fn: () => Promise<void>) => cleanups.push(fn) } as unknown as Parameters<typeof Cluster.start>[0];

async function passthrough(root: string): Promise<Target> {
  const src = join(root, 'pt-src');
  const mnt = join(root, 'pt-mnt');
  await mkdir(src, { recursive: true });
  await mkdir(mnt, { recursive: true });
  const child: ChildProcess = fork(join(HERE, 'passthrough.js'), [src, mnt], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((res, rej) => {
    child.once('message', () => res());
    child.once('exit', (c) => rej(new Error(`passthrough exited ${c}`)));
  });
  return { name: 'passthrough', gfs: false, dir: mnt, stop: async () => { await sh(`fusermount -u ${mnt}`); child.kill('SIGTERM'); } };
}

const VOLUMES: Record<string, { bricks: number; args: string[] }> = {
  dist2: { bricks: 2, args: [] },
  rep2: { bricks: 2, args: ['replica', '2'] },
  stripe2: { bricks: 2, args: ['stripe', '2'] },
  'dist-rep2x2': { bricks: 4, args: ['replica', '2'] },
};

async function gfsVolume(cluster: Cluster, name: string): Promise<Target | string> {
  const v = VOLUMES[name];
  const r = await cluster.gfs(['volume', 'create', name, ...v.args, ...Array.from({ length: v.bricks }, (_, i) => cluster.brickSpec(0, `${name}-b${i}`)), 'force']);
  if (r.code !== 0) return r.stderr.trim();
  await cluster.mustGfs(['volume', 'start', name]);
  const mp = await cluster.mount(name);
  return { name, gfs: true, dir: mp, stop: () => cluster.unmount(mp), profile: () => mountProfile(mp, join(cluster.root, `mount-${name}.log`), name) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function fmt(v: number | undefined, unit: string): string {
  if (v === undefined || Number.isNaN(v)) return 'n/a';
  if (unit === 's') return v.toFixed(2);
  return v >= 100 ? String(Math.round(v)) : v.toFixed(1);
}

async function main(): Promise<void> {
  await must('command -v fio >/dev/null && command -v dbench >/dev/null || (apt-get install -y -qq fio dbench >/dev/null)');
  const root = await mkdtemp(join(tmpdir(), 'gfs-test-bench-'));
  const scratch = join(root, 'scratch');
  await mkdir(scratch, { recursive: true });
  const wanted = (values.targets ?? 'local,passthrough,dist2,rep2,stripe2,dist-rep2x2').split(',');
  const workloads = WORKLOADS.filter((w) => !values.workloads || values.workloads.split(',').includes(w.name));
  const results = new Map<string, Map<string, number>>();
  const skipped: string[] = [];
  let cluster: Cluster | undefined;
  let gluster: Gluster | string | undefined;
  // Interrupted, still unmount and stop what was started (GlusterFS daemons outlive the bench otherwise).
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`bench: ${sig}, cleaning up\n`);
      void (async () => {
        for (const c of [...cleanups].reverse()) await c().catch(() => {});
        await rm(root, { recursive: true, force: true }).catch(() => {});
        process.exit(130);
      })();
    });
  }
  try {
    const targets: Target[] = [];
    for (const name of wanted) {
      let target: Target | string;
      if (name === 'local') {
        const dir = join(root, 'local');
        await mkdir(dir);
        target = { name, gfs: false, dir, stop: async () => {} };
      } else if (name === 'passthrough') {
        target = await passthrough(root);
      } else if (VOLUMES[name]) {
        cluster ??= await Cluster.start(fakeT, { nodes: 1, subnet: Number(process.env.GFS_BENCH_SUBNET ?? 99) });
        target = await gfsVolume(cluster, name);
      } else if (GLUSTER_VOLUMES[name]) {
        if (gluster === undefined) {
          gluster = await Gluster.start(join(root, 'gluster'));
          const g = gluster;
          if (typeof g !== 'string') cleanups.push(() => g.stop());
        }
        const g = gluster;
        target = typeof g === 'string' ? g : await g.volume(name).then((m) => (typeof m === 'string' ? m : { name, gfs: false, ...m }));
      } else {
        throw new Error(`unknown target ${name}`);
      }
      if (typeof target === 'string') {
        skipped.push(`${name}: ${target}`);
        continue;
      }
      const t = target;
      cleanups.push(async () => { await sh(`rm -rf ${t.dir}/*`); await t.stop(); });
      targets.push(t);
      results.set(t.name, new Map());
    }
    // Profiles (and CPU times) count from here, not from the daemons' start.
    if (PROFILE) for (const t of targets) await t.profile?.();
    // Every target is up at once and each run of a workload goes round all of them in turn: the
    // host's load drifts by minutes (a GlusterFS column moved 3x between two whole runs), and a
    // ratio compares figures taken seconds apart, not one target's minutes with another's.
    for (const w of workloads) {
      const xs = new Map<string, number[]>(targets.map((t) => [t.name, []]));
      for (let i = 0; i < RUNS; i++) {
        for (const t of targets) {
          try {
            xs.get(t.name)!.push(await w.run(t.dir, scratch));
          } catch (e) {
            process.stderr.write(`bench: ${t.name} ${w.name}: ${(e as Error).message}\n`);
          }
        }
      }
      for (const t of targets) {
        const got = xs.get(t.name)!;
        if (got.length) results.get(t.name)!.set(w.name, median(got));
        process.stderr.write(`bench: ${t.name} ${w.name}: ${got.map((x) => fmt(x, w.unit)).join(' ')} ${w.unit}\n`);
        if (PROFILE && t.profile) process.stderr.write(`bench: ${t.name} ${w.name} profile (FUSE requests, brick round trips):\n${await t.profile()}\n`);
      }
      if (w.frees && w !== workloads[workloads.length - 1]) {
        process.stderr.write(`bench: waiting ${FREED_WINDOW_MS / 1000} s for the inodes ${w.name} freed to age (ext4 skips recently freed ones slowly)\n`);
        await new Promise((r) => setTimeout(r, FREED_WINDOW_MS));
      }
    }
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await rm(root, { recursive: true, force: true }).catch(() => {});
  }
  print(workloads, results, skipped);
}

function print(workloads: Workload[], results: Map<string, Map<string, number>>, skipped: string[]): void {
  // A GlusterFS column goes next to the gfs column of its shape.
  const names = [...results.keys()].filter((n) => !GLUSTER_VOLUMES[n] || !results.has(n.slice('gluster-'.length)));
  for (const n of results.keys()) if (GLUSTER_VOLUMES[n] && results.has(n.slice('gluster-'.length))) names.splice(names.indexOf(n.slice('gluster-'.length)) + 1, 0, n);
  const lines: string[][] = [['workload', ...names]];
  for (const w of workloads) {
    const base = results.get('passthrough')?.get(w.name);
    const local = results.get('local')?.get(w.name);
    const ratio = (v: number, b: number | undefined) => (b ? (w.higherIsBetter ? v / b : b / v).toFixed(2) : '-');
    lines.push([`${w.label} (${w.unit})`, ...names.map((n) => {
      const v = results.get(n)?.get(w.name);
      if (v === undefined) return 'n/a';
      if (n === 'local' || n === 'passthrough') return fmt(v, w.unit);
      const gl = results.get(`gluster-${n}`)?.get(w.name);
      return `${fmt(v, w.unit)} (${ratio(v, base)} pt, ${ratio(v, local)} local${gl === undefined ? '' : `, ${ratio(v, gl)} gl`})`;
    })]);
  }
  const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const gl = names.some((n) => GLUSTER_VOLUMES[n]) ? ' and, for a gfs volume, the GlusterFS volume of the same shape (gl, gluster-<shape>)' : '';
  console.log(`\nmedians of ${RUNS} run(s); ratios are speed relative to the passthrough (pt), the local disk${gl}: above 1 is faster\n`);
  for (const l of lines) console.log(`| ${l.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`);
  for (const s of skipped) console.log(`skipped ${s}`);
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
