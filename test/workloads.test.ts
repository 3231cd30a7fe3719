// Real workloads on a mounted distributed volume: git, tar, SQLite (WAL and rollback journal),
// rsync, concurrent writers and flock/fcntl locks between processes. Every tool runs as a child
// process, so no call into the mount comes from a process that serves it.
import test from 'ava';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, sh } from './harness.js';

const SUBNET = 91;

let cluster: Cluster | undefined;
let mp = '';
let local = '';
const teardowns: (() => Promise<unknown>)[] = [];

test.before(async () => {
  const fakeT = { teardown: (fn: () => Promise<unknown>) => { teardowns.push(fn); } } as unknown as Parameters<typeof Cluster.start>[0];
  cluster = await Cluster.start(fakeT, { nodes: 2, subnet: SUBNET });
  await cluster.probeAll();
  await cluster.volume('work', [[0, 'b1'], [1, 'b1']]);
  mp = await cluster.mount('work');
  local = await mkdtemp(join(tmpdir(), 'gfs-work-'));
});

test.after.always(async () => {
  for (const fn of teardowns.reverse()) await fn().catch(() => undefined);
  if (local) await rm(local, { recursive: true, force: true });
});

/** Runs a bash script; fails the test with its output when it exits non-zero. */
async function must(t: { fail: (m: string) => void }, script: string, timeoutMs = 300_000): Promise<string> {
  const r = await sh(`set -euo pipefail\n${script}`, { timeoutMs });
  if (r.code !== 0) {
    t.fail(`script failed (${r.code}):\n${script}\n--- stdout\n${r.stdout.slice(-3000)}\n--- stderr\n${r.stderr.slice(-3000)}`);
    throw new Error('script failed');
  }
  return r.stdout;
}

/** A tree of `files` small files in 20 directories, with a few symlinks, modes and an empty dir. */
const makeTree = (dir: string, files: number) => `
mkdir -p ${dir}/empty
for d in $(seq 0 19); do mkdir -p ${dir}/d$d/sub; done
for i in $(seq 1 ${files}); do d=$((i % 20)); printf 'file %s\\n%0*d\\n' $i $((i % 300)) $i > ${dir}/d$d/f$i; done
chmod 600 ${dir}/d1/f1; chmod 755 ${dir}/d2/f2; ln -s ../d1/f21 ${dir}/d2/link21; ln ${dir}/d3/f3 ${dir}/d3/hard3
head -c 300000 /dev/urandom > ${dir}/d4/big; touch -d @1000000000 ${dir}/d5/f5`;

test.serial('git: init, commit 200 files, status, gc, clone onto the same mount', async (t) => {
  const repo = join(mp, 'git', 'repo');
  const out = await must(t, `
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com HOME=${local}
git config --global --add safe.directory '*'
mkdir -p ${repo} && cd ${repo} && git init -q -b main .
for i in $(seq 1 200); do mkdir -p dir$((i % 10)); echo "content $i" > dir$((i % 10))/file$i.txt; done
git add -A && git commit -q -m 'two hundred files'
echo "status:[$(git status --porcelain)]"
echo change >> dir1/file1.txt && git commit -qam second
git gc -q && git fsck --full 2>&1 | grep -v '^Checking' || true
git clone -q ${repo} ${join(mp, 'git', 'clone')}
cd ${join(mp, 'git', 'clone')} && echo "files:$(git ls-files | wc -l) log:$(git log --format=%s | tr '\\n' ,)"
echo "head:$(git rev-parse HEAD) orig:$(git -C ${repo} rev-parse HEAD)"
echo "clone-status:[$(git status --porcelain)]"
git fsck --full 2>&1 | grep -v '^Checking' || true`);
  t.regex(out, /status:\[\]/);
  t.regex(out, /files:200 log:second,two hundred files,/);
  const m = /head:(\w+) orig:(\w+)/.exec(out);
  t.truthy(m);
  t.is(m![1], m![2]);
  t.regex(out, /clone-status:\[\]/);
  t.notRegex(out, /error|missing|corrupt/i);
});

test.serial('tar: extract a 2,000-file tree onto the mount, re-create it, compare', async (t) => {
  const src = join(local, 'tar-src');
  const out = await must(t, `${makeTree(src, 2000)}
tar -C ${src} -cf ${local}/src.tar .
mkdir -p ${mp}/tar && tar -C ${mp}/tar -xpf ${local}/src.tar
diff -r --no-dereference ${src} ${mp}/tar && echo same-on-mount
tar -C ${mp}/tar --compare -f ${local}/src.tar && echo times-modes-owners-same
tar -C ${mp}/tar -cf ${local}/again.tar .
mkdir -p ${local}/tar-back && tar -C ${local}/tar-back -xpf ${local}/again.tar
diff -r --no-dereference ${src} ${local}/tar-back && echo same-after-recreate
echo "count:$(find ${mp}/tar -type f | wc -l)"
stat -c '%a %h %Y' ${mp}/tar/d1/f1 ${mp}/tar/d3/f3 ${mp}/tar/d5/f5`);
  t.regex(out, /same-on-mount/);
  t.regex(out, /times-modes-owners-same/); // tar --compare: mtime, mode, owner, size and bytes of every entry
  t.regex(out, /same-after-recreate/);
  t.regex(out, /count:2002/); // 2,000 files, the hard link and big (d2's link is a symlink)
  t.regex(out, /600 1 \d+\n644 2 \d+\n644 1 1000000000/);
});

for (const mode of ['wal', 'delete']) {
  test.serial(`sqlite: 10,000 inserts in ${mode === 'wal' ? 'WAL' : 'rollback-journal'} mode, integrity_check ok`, async (t) => {
    const db = join(mp, `sqlite-${mode}`, 'test.db');
    // 100 transactions of 100 inserts each, so the journal is written and reset many times.
    const sql = [`PRAGMA journal_mode=${mode};`, 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, n INTEGER);', 'CREATE INDEX tv ON t(v);'];
    for (let tx = 0; tx < 100; tx++) {
      sql.push('BEGIN;');
      for (let i = 0; i < 100; i++) sql.push(`INSERT INTO t (v, n) VALUES ('${(tx * 100 + i).toString(36).repeat(1 + (i % 7))}', ${tx * 100 + i});`);
      sql.push('COMMIT;');
    }
    sql.push('DELETE FROM t WHERE n % 10 = 3;', "UPDATE t SET v = v || 'x' WHERE n % 10 = 4;");
    const out = await must(t, `mkdir -p ${join(mp, `sqlite-${mode}`)}
sqlite3 ${db} < ${await writeLocal(`sql-${mode}.sql`, sql.join('\n'))} > /dev/null
sqlite3 ${db} 'PRAGMA journal_mode; PRAGMA integrity_check; SELECT count(*), sum(n) FROM t;'`);
    const lines = out.trim().split('\n');
    t.is(lines[0], mode);
    t.is(lines[1], 'ok');
    // 10,000 rows less the 1,000 with n % 10 = 3; the sum of 0..9999 less theirs.
    const deleted = Array.from({ length: 1000 }, (_, k) => k * 10 + 3).reduce((a, b) => a + b, 0);
    t.is(lines[2], `9000|${(9999 * 10000) / 2 - deleted}`);
  });
}

async function writeLocal(name: string, text: string): Promise<string> {
  const { writeFile } = await import('node:fs/promises');
  const p = join(local, name);
  await writeFile(p, text);
  return p;
}

test.serial('rsync -a: a tree in and out again, identical', async (t) => {
  const src = join(local, 'rsync-src');
  const out = await must(t, `${makeTree(src, 200)}
rsync -a -H ${src}/ ${mp}/rsync/
rsync -a -H ${mp}/rsync/ ${local}/rsync-back/
diff -r --no-dereference ${src} ${local}/rsync-back && echo same
echo "again:[$(rsync -a -H -i ${src}/ ${mp}/rsync/)]"
echo "checksum:[$(rsync -a -H -c -n -i ${src}/ ${mp}/rsync/)]"
stat -c '%a %h %Y' ${local}/rsync-back/d1/f1 ${local}/rsync-back/d3/f3 ${local}/rsync-back/d5/f5`);
  t.regex(out, /same/);
  t.regex(out, /again:\[\]/); // nothing to do: sizes, times and modes all came back
  t.regex(out, /checksum:\[\]/);
  t.regex(out, /600 1 \d+\n644 2 \d+\n644 1 1000000000/);
});

test.serial('two processes write distinct files at once; both come out whole', async (t) => {
  await mkdir(join(local, 'cw'), { recursive: true });
  const out = await must(t, `mkdir -p ${mp}/cw
for p in a b; do head -c 6000000 /dev/urandom > ${local}/cw/$p; done
( dd if=${local}/cw/a of=${mp}/cw/a bs=65536 status=none conv=fsync ) & pa=$!
( dd if=${local}/cw/b of=${mp}/cw/b bs=4096 status=none ) & pb=$!
wait $pa; wait $pb
cmp ${local}/cw/a ${mp}/cw/a && cmp ${local}/cw/b ${mp}/cw/b && echo whole`);
  t.regex(out, /whole/);
});

test.serial('flock: a second process fails with -n and blocks without it, as on ext4', async (t) => {
  const f = join(mp, 'locks', 'flock');
  const out = await must(t, `mkdir -p ${mp}/locks ${local}/fl && touch ${f}
flock ${f} -c 'touch ${local}/fl/held; while [ ! -e ${local}/fl/release ]; do sleep 0.05; done' & holder=$!
while [ ! -e ${local}/fl/held ]; do sleep 0.05; done
flock -n ${f} true && echo second-got-it || echo second-refused
flock ${f} -c 'touch ${local}/fl/second' & waiter=$!
sleep 0.3; [ -e ${local}/fl/second ] && echo waiter-early || echo waiter-blocked
touch ${local}/fl/release; wait $holder; wait $waiter
[ -e ${local}/fl/second ] && echo waiter-done
flock -n ${f} true && echo free-again`);
  t.regex(out, /second-refused/);
  t.regex(out, /waiter-blocked/);
  t.regex(out, /waiter-done/);
  t.regex(out, /free-again/);
});

test.serial('fcntl locks: a conflicting lock fails with F_SETLK, waits with F_SETLKW, ranges apart do not conflict', async (t) => {
  const f = join(mp, 'locks', 'fcntl');
  const py = (body: string) => `python3 -c "import fcntl, os, sys, time
f = open('${f}', 'r+')
${body}"`;
  const out = await must(t, `mkdir -p ${mp}/locks ${local}/fc && printf '%0100d' 0 > ${f}
${py(`fcntl.lockf(f, fcntl.LOCK_EX, 50, 0)
open('${local}/fc/held', 'w').close()
while not os.path.exists('${local}/fc/release'): time.sleep(0.05)`)} & holder=$!
while [ ! -e ${local}/fc/held ]; do sleep 0.05; done
${py(`try:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 20); print('second-got-it')
except OSError as e: print('second-refused', e.errno in (11, 13))
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 50, 50); print('other-range-ok')`)}
${py(`fcntl.lockf(f, fcntl.LOCK_SH, 10, 0); open('${local}/fc/second', 'w').close()`)} & waiter=$!
sleep 0.3; [ -e ${local}/fc/second ] && echo waiter-early || echo waiter-blocked
touch ${local}/fc/release; wait $holder; wait $waiter
[ -e ${local}/fc/second ] && echo waiter-done`);
  t.regex(out, /second-refused True/);
  t.regex(out, /other-range-ok/);
  t.regex(out, /waiter-blocked/);
  t.regex(out, /waiter-done/);
});
