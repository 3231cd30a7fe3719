// A seeded random-operation test in the spirit of fsx: one generator of mixed file system
// operations applied in lock step to a gfs mount and to a local directory (the reference), with
// results (value or errno), file data, sizes, modes, link counts and directory listings compared
// after every step. A mismatch throws an error that names the seed and the step, so
// FSX_SEED=N replays the run exactly. Only asynchronous calls: the mount is served by another process.
import { constants } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FsxOptions {
  seed: number;
  steps: number;
  /** Largest file offset written or truncated to; spans several 128 KiB stripe blocks. */
  maxSize?: number;
  /** Called every `every` steps with the step number (progress for the script). */
  progress?: (step: number) => void;
  /** Filled with counts of "op outcome" (e.g. "write ok", "rmdir ENOTEMPTY"): how much each op did. */
  stats?: Map<string, number>;
}

export class FsxMismatch extends Error {}

const DIRS = ['', 'd0', 'd1', 'd0/d2'];
const FILES = ['f0', 'f1', 'f2', 'f3', 'f4'];
const SUBDIRS = ['d0', 'd1', 'd2'];
const MODES = [0o644, 0o600, 0o755, 0o444, 0o640, 0o700];

type Op = { name: string; args: unknown[]; run: (root: string) => Promise<unknown> };

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    const v = await p;
    return `ok ${v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v)}`;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!code) throw e;
    return code;
  }
}

function sha(buf: Buffer): string {
  // FNV-1a over the bytes plus the length: cheap, enough to tell contents apart.
  let h = 0x811c9dc5;
  for (let i = 0; i < buf.length; i++) h = Math.imul(h ^ buf[i], 0x01000193) >>> 0;
  return `${buf.length}:${h.toString(16)}`;
}

/** What a tree looks like: every entry with type, mode, size, link count and, for the files in
 *  dataOf (all of them: 'all'), a digest of their bytes. */
async function snapshot(root: string, dataOf: Set<string> | 'all'): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    const names = (await fs.readdir(join(root, rel))).sort();
    out.push(`${rel || '.'}/ [${names.join(' ')}]`);
    for (const n of names) {
      const p = rel ? `${rel}/${n}` : n;
      const st = await fs.lstat(join(root, p));
      const type = st.isDirectory() ? 'd' : st.isFile() ? 'f' : 'o';
      let line = `${p} ${type} ${(st.mode & 0o7777).toString(8)} n${st.nlink}`;
      if (type === 'f') {
        line += ` s${st.size}`;
        if (dataOf === 'all' || dataOf.has(p)) line += ` ${sha(await fs.readFile(join(root, p)))}`;
      }
      out.push(line);
      if (type === 'd') await walk(p);
    }
  };
  await walk('');
  return out;
}

export async function runFsx(mount: string, local: string, opts: FsxOptions): Promise<number> {
  const rnd = prng(opts.seed);
  const maxSize = opts.maxSize ?? 400_000;
  const int = (n: number) => Math.floor(rnd() * n);
  const pick = <T>(a: readonly T[]): T => a[int(a.length)];
  // Mostly file names for file operations and directory names for mkdir/rmdir, now and then the
  // other kind (EISDIR, ENOTDIR, EEXIST); directories mostly near the top, so they exist often.
  const path = (dir = false) => {
    const d = pick(rnd() < 0.4 ? DIRS.slice(0, 1) : DIRS);
    const n = rnd() < 0.9 === dir ? pick(SUBDIRS) : pick(FILES);
    return d ? `${d}/${n}` : n;
  };
  const bytes = (n: number) => { const b = Buffer.allocUnsafe(n); for (let i = 0; i < n; i++) b[i] = int(256); return b; };
  const size = () => (rnd() < 0.3 ? int(4096) : int(maxSize));

  const withFile = async (root: string, p: string, flags: number, fn: (fh: fs.FileHandle) => Promise<unknown>) => {
    const fh = await fs.open(join(root, p), flags);
    try { return await fn(fh); } finally { await fh.close(); }
  };

  const gen = (): Op => {
    const r = int(100);
    const p = path(r >= 70 && r < 82);
    if (r < 18) {
      const mode = pick(MODES);
      const flags = constants.O_CREAT | constants.O_WRONLY | (rnd() < 0.3 ? constants.O_EXCL : 0) | (rnd() < 0.3 ? constants.O_TRUNC : 0);
      return { name: 'create', args: [p, flags, mode], run: (root) => fs.open(join(root, p), flags, mode).then((fh) => fh.close()) };
    }
    if (r < 38) {
      const off = size();
      const len = 1 + int(rnd() < 0.5 ? 4096 : 200_000);
      const data = bytes(len);
      const append = rnd() < 0.15;
      const flags = constants.O_WRONLY | (append ? constants.O_APPEND : 0) | (rnd() < 0.5 ? constants.O_CREAT : 0);
      return { name: append ? 'append' : 'write', args: [p, off, len], run: (root) => withFile(root, p, flags, async (fh) => (await fh.write(data, 0, len, append ? null : off)).bytesWritten) };
    }
    if (r < 44) {
      const n = size();
      return { name: 'truncate', args: [p, n], run: (root) => fs.truncate(join(root, p), n) };
    }
    if (r < 54) {
      const off = size();
      const len = 1 + int(150_000);
      return {
        name: 'read', args: [p, off, len],
        run: (root) => withFile(root, p, constants.O_RDONLY, async (fh) => {
          const b = Buffer.alloc(len);
          const { bytesRead } = await fh.read(b, 0, len, off);
          return sha(b.subarray(0, bytesRead));
        }),
      };
    }
    if (r < 60) { const q = path(); return { name: 'rename', args: [p, q], run: (root) => fs.rename(join(root, p), join(root, q)) }; }
    if (r < 65) { const q = path(); return { name: 'link', args: [p, q], run: (root) => fs.link(join(root, p), join(root, q)) }; }
    if (r < 70) return { name: 'unlink', args: [p], run: (root) => fs.unlink(join(root, p)) };
    if (r < 78) { const m = pick([0o755, 0o700, 0o775]); return { name: 'mkdir', args: [p, m], run: (root) => fs.mkdir(join(root, p), m) }; }
    if (r < 82) return { name: 'rmdir', args: [p], run: (root) => fs.rmdir(join(root, p)) };
    if (r < 88) { const m = pick(MODES); return { name: 'chmod', args: [p, m], run: (root) => fs.chmod(join(root, p), m) }; }
    if (r < 94) {
      const at = 1_000_000_000 + int(1_000_000_000);
      const mt = 1_000_000_000 + int(1_000_000_000);
      return {
        name: 'utimens', args: [p, at, mt],
        run: async (root) => { await fs.utimes(join(root, p), at, mt); const st = await fs.lstat(join(root, p)); return [st.atimeMs, st.mtimeMs]; },
      };
    }
    return { name: 'fsync', args: [p], run: (root) => withFile(root, p, constants.O_RDONLY, (fh) => fh.sync()) };
  };

  const history: string[] = [];
  const fail = (step: number, what: string) => {
    throw new FsxMismatch(`fsx mismatch at step ${step} (replay with FSX_SEED=${opts.seed} FSX_STEPS=${opts.steps}): ${what}\nlast ops:\n  ${history.slice(-12).join('\n  ')}`);
  };
  const compare = async (step: number, after: string, dataOf: Set<string> | 'all') => {
    const [sa, sb] = [await snapshot(mount, dataOf), await snapshot(local, dataOf)];
    let i = 0;
    while (i < Math.max(sa.length, sb.length) && sa[i] === sb[i]) i++;
    if (i < Math.max(sa.length, sb.length)) fail(step, `after ${after}: trees differ at line ${i}: gfs '${sa[i] ?? '(none)'}', local '${sb[i] ?? '(none)'}'`);
  };
  // The top-level files start with data, so reads and writes find files from the first step
  // (a run of ENOENTs alone would test little).
  for (const f of FILES) {
    const data = bytes(int(maxSize / 4));
    for (const root of [mount, local]) await fs.writeFile(join(root, f), data);
  }
  await compare(0, 'the first files', 'all');
  for (let step = 1; step <= opts.steps; step++) {
    const op = gen();
    const [a, b] = [await outcome(op.run(mount)), await outcome(op.run(local))];
    history.push(`${step} ${op.name}(${op.args.map((x) => (typeof x === 'number' && x > 7 && op.name === 'create' ? x.toString(8) : String(x))).join(', ')}) -> ${b}`);
    const key = `${op.name} ${b.split(' ')[0]}`;
    opts.stats?.set(key, (opts.stats.get(key) ?? 0) + 1);
    if (a !== b) fail(step, `${op.name}(${op.args.join(', ')}): gfs ${a}, local ${b}`);
    await compare(step, op.name, new Set<string>(op.args.filter((x): x is string => typeof x === 'string')));
    if (opts.progress && step % 100 === 0) opts.progress(step);
  }
  // Every file's bytes at the end, through the mount.
  await compare(opts.steps, 'the last step, every file read whole', 'all');
  opts.stats?.set('files read at the end', (await snapshot(local, new Set())).filter((l) => / f /.test(l)).length);
  return opts.steps;
}

/** The seed of this run: FSX_SEED when given, else a fresh one (printed by the callers). */
export function fsxSeed(): number {
  const env = process.env.FSX_SEED;
  return env !== undefined && env !== '' ? Number(env) >>> 0 : Math.floor(Math.random() * 2 ** 32);
}
