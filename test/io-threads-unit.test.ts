// The brick's io-threads when a worker dies: its jobs in flight fail with EIO (none hangs, none is
// answered twice), the next job starts a new worker, and after close() nothing runs; and the heal
// index's removal rounds.
import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { FsError } from '../common/errors.js';
import { ENTRY_PATH_XATTR, IoThreads } from '../brickd/io-threads.js';
import { AFR_PREFIX, HealIndex } from '../brickd/heal-index.js';
import { GFID_XATTR } from '../brickd/iatt.js';
import { xget, xremove, xset } from '../brickd/xattr.js';
import { Confiner } from '../brickd/confine.js';
import { gfidToBytes } from '../common/gfid.js';
import { newGfid } from './support/mem-xlator.js';

/** The workers of io, reached into: the only way to kill one as a crash would. */
const workers = (io: IoThreads) => ((io as unknown as { slots: ({ worker: Worker } | undefined)[] }).slots).map((s) => s?.worker);

/** A file of the brick at root with a gfid and a pending replicate counter, entered in index; its
 *  index entry, and the name it would have as a spare. */
async function pendingFile(root: string, index: HealIndex, name: string) {
  const host = join(root, name);
  const gfid = newGfid();
  await writeFile(host, '');
  await xset(host, GFID_XATTR, gfidToBytes(gfid));
  await xset(host, `${AFR_PREFIX}c0`, Buffer.from([0, 0, 0, 1]));
  await index.update(host, `/${name}`, Buffer.from([0, 0, 0, 1]), gfidToBytes(gfid));
  return { host, gfid, entry: join(root, '.gfs/indices/xattrop', gfid), spare: join(root, '.gfs/indices/spare', gfid) };
}

test('a dead io-thread fails its jobs in flight with EIO; the next job gets a new worker', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'gfs-test-iothreads-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dir = join(root, 'd');
  await mkdir(dir);
  // Enough entries that a listing is still running when its worker is killed.
  for (let i = 0; i < 4000; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => writeFile(join(dir, `f${i + j}`), '')));
  const io = new IoThreads();
  t.teardown(() => io.close());
  t.is((await io.list(dir, '/d', [])).length, 4000); // starts worker 0
  const first = workers(io)[0]!;
  const inFlight = Array.from({ length: 3 }, () => io.list(dir, '/d', []).then(() => 'answered', (e: unknown) => e));
  await first.terminate();
  const outcomes = await Promise.all(inFlight);
  const failed = outcomes.filter((o): o is FsError => o instanceof FsError);
  t.true(failed.length >= 1, 'the killed worker had jobs in flight');
  for (const e of failed) {
    t.is(e.errno, 'EIO');
    t.regex(e.message, /brick io-thread exited/);
  }
  t.true(outcomes.every((o) => o === 'answered' || o instanceof FsError));
  // Served again, by a worker that is not the dead one.
  t.is((await io.list(dir, '/d', [], 'f0')).length, 3999);
  t.false(workers(io).includes(first));
  await io.close();
  const after = await io.list(dir, '/d', []).then(() => null, (e: unknown) => e);
  t.true(after instanceof FsError && after.errno === 'EIO' && /closed/.test(after.message));
});

test('the heal index: a finished entry goes in the next round, one still pending stays, and one that finishes while a round checks it goes in the round after', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'gfs-test-index-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await writeFile(join(root, 'f'), '');
  let pending = true;
  let release!: () => void;
  let hold: Promise<void> | undefined;
  const checks: number[] = [];
  const io = new IoThreads();
  t.teardown(() => io.close());
  const index = new HealIndex(root, new Confiner(root), (e) => io.writeEntry(e), async (entries) => {
    checks.push(entries.length);
    if (hold) await hold;
    return entries.map(() => !pending);
  });
  t.teardown(() => index.close());
  const host = join(root, 'f');
  const gfid = newGfid();
  const file = join(root, '.gfs/indices/xattrop', gfid);
  await index.update(host, '/f', Buffer.from([0, 0, 0, 1]), gfidToBytes(gfid));
  t.true(existsSync(file));
  hold = new Promise((res) => { release = res; });
  index.settled(host, '/f');
  const first = index.settle(); // a round (as the timer's): it checks, and waits there
  await new Promise((res) => setTimeout(res, 50));
  t.deepEqual(checks, [1]);
  index.settled(host, '/f'); // the inode settles again while it is being checked
  release();
  hold = undefined;
  await first; // still pending then: the entry stays
  pending = false;
  await index.settle();
  t.deepEqual(checks, [1, 1], 'the inode came again after the round that found it pending');
});

test('the heal index: a round that starts while another checks waits for it, and checks what settled meanwhile', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'gfs-test-index-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await writeFile(join(root, 'f'), '');
  let release!: () => void;
  const hold = new Promise<void>((res) => { release = res; });
  const answers = [false, true]; // pending at the first check, finished at the second
  const checks: number[] = [];
  const io = new IoThreads();
  t.teardown(() => io.close());
  const index = new HealIndex(root, new Confiner(root), (e) => io.writeEntry(e), async (entries) => {
    checks.push(entries.length);
    if (checks.length === 1) await hold;
    return entries.map(() => answers[checks.length - 1]);
  });
  t.teardown(() => index.close());
  const host = join(root, 'f');
  await index.update(host, '/f', Buffer.from([0, 0, 0, 1]), gfidToBytes(newGfid()));
  index.settled(host, '/f');
  const first = index.settle();
  await new Promise((res) => setTimeout(res, 50));
  index.settled(host, '/f'); // settles again while the first round checks it
  const second = index.settle(); // the timer's round, due while the first still checks
  await new Promise((res) => setTimeout(res, 50));
  t.deepEqual(checks, [1], 'the second round waits');
  release();
  await first;
  await second;
  t.deepEqual(checks, [1, 1], 'the second round checked the inode the first found pending');
});

test('the heal index: an entry forgotten by a rename elsewhere still goes once its counters are zero, and not while its path names another inode', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'gfs-test-index-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const io = new IoThreads();
  t.teardown(() => io.close());
  const index = new HealIndex(root, new Confiner(root), (e) => io.writeEntry(e), (entries) => io.unindex(entries, AFR_PREFIX));
  t.teardown(() => index.close());
  const made = (name: string) => pendingFile(root, index, name);
  const f = await made('f');
  const g = await made('g');
  t.true(existsSync(f.entry) && existsSync(g.entry));
  index.forget(); // a rename anywhere on the brick
  await xset(f.host, `${AFR_PREFIX}c0`, Buffer.alloc(4));
  index.settled(f.host, '/f', gfidToBytes(f.gfid));
  await index.settle();
  t.false(existsSync(f.entry), 'counters zero, gfid as read: removed');
  // g settles, then another inode is renamed onto its path before the round.
  await xset(g.host, `${AFR_PREFIX}c0`, Buffer.alloc(4));
  index.settled(g.host, '/g', gfidToBytes(g.gfid));
  const other = join(root, 'other');
  await writeFile(other, '');
  await xset(other, GFID_XATTR, gfidToBytes(newGfid()));
  await rename(other, g.host);
  index.forget();
  await index.settle();
  t.true(existsSync(g.entry), "the path names another inode: the entry is the listing's to judge");
});

test('the heal index: a finished entry is retired as a spare, and the next entry due is that spare renamed into place (no inode allocated); the spares outlive a restart', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'gfs-test-index-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const io = new IoThreads();
  t.teardown(() => io.close());
  const open = () => new HealIndex(root, new Confiner(root), (e) => io.writeEntry(e), (entries) => io.unindex(entries, AFR_PREFIX));
  let index = open();
  t.teardown(() => index.close());
  const made = (name: string) => pendingFile(root, index, name);
  const f = await made('f');
  t.is((await xget(f.entry, ENTRY_PATH_XATTR))?.toString(), '/f', 'the entry names its path in an xattr');
  t.is((await stat(f.entry)).size, 0, 'and holds no data');
  t.deepEqual(await index.list(), [{ gfid: f.gfid, path: '/f' }]);
  const ino = (await stat(f.entry)).ino;
  await xset(f.host, `${AFR_PREFIX}c0`, Buffer.alloc(4));
  index.settled(f.host, '/f', gfidToBytes(f.gfid));
  await index.settle();
  t.false(existsSync(f.entry), 'finished: out of the index');
  t.is((await stat(f.spare)).ino, ino, 'retired as a spare, the same inode');
  t.deepEqual(await index.list(), []);
  const g = await made('g');
  t.is((await stat(g.entry)).ino, ino, "the next entry is the spare's inode");
  t.false(existsSync(f.spare));
  t.is((await xget(g.entry, ENTRY_PATH_XATTR))?.toString(), '/g', 'naming its own path');
  t.deepEqual(await index.list(), [{ gfid: g.gfid, path: '/g' }]);
  // Retired again, then a new brick process (a restart) finds the spare and uses it.
  await xset(g.host, `${AFR_PREFIX}c0`, Buffer.alloc(4));
  index.settled(g.host, '/g', gfidToBytes(g.gfid));
  await index.settle();
  index.close();
  index = open();
  const h = await made('h');
  t.is((await stat(h.entry)).ino, ino, 'a restarted index reuses the spares it finds');
  t.deepEqual(await index.list(), [{ gfid: h.gfid, path: '/h' }]);
  // An entry from before entries named their path in an xattr: its JSON is read.
  const old = await made('old');
  await xremove(old.entry, ENTRY_PATH_XATTR);
  await writeFile(old.entry, JSON.stringify({ path: '/old' }));
  t.deepEqual((await index.list()).map((e) => e.path).sort(), ['/h', '/old']);
});
