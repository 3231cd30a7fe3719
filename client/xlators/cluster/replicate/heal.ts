// The heal of one path (data, metadata, entries, and what an entry heal creates), heals started
// from lookups in the background (bounded), the index sweep of the self-heal daemon, the heal info
// answer and the resolution of split-brain.
import { mapBounded } from '../../../../common/concurrency.js';
import { FsError } from '../../../../common/errors.js';
import { ROOT_CTX, isDir, isReg, type Iatt } from '../../../../common/types.js';
import { healData, type HealOutcome, type SourceChoice } from './heal-data.js';
import { healEntry } from './heal-entry.js';
import { listIndex } from './heal-index.js';
import { healMetadata } from './heal-metadata.js';
import type { Replicate } from './index.js';
import { choose, CLI_POLICIES, type Policy } from './split-brain.js';

export interface HealResult { path: string; outcomes: HealOutcome[]; splitBrain: boolean; busy: boolean }

export interface HealInfoEntry { path: string; gfid: string; splitBrain: boolean }
export interface HealInfoBrick { child: string; connected: boolean; entries: HealInfoEntry[] }

const MAX_DEPTH = 4096;

export class Healer {
  private readonly queued = new Set<string>();
  private running = 0;
  /** Called when a child comes back (the self-heal daemon sweeps then). */
  onChildUpHook?: (i: number) => void;

  constructor(private readonly r: Replicate) {}

  onChildUp(i: number): void {
    this.onChildUpHook?.(i);
  }

  /** Heals path in the background if the client may (options, bounded count); never throws. */
  background(path: string): void {
    const o = this.r.opts;
    if (!o['data-self-heal'] && !o['metadata-self-heal'] && !o['entry-self-heal']) return;
    if (this.queued.has(path) || this.running >= o['background-self-heal-count']) return;
    this.queued.add(path);
    this.running++;
    void this.healPath(path, { client: true })
      .catch((e) => this.r.log.warn({ path, err: (e as Error).message }, 'background heal failed'))
      .finally(() => { this.running--; this.queued.delete(path); });
  }

  /** Heals one path and, for directories, the entries it created on stale copies. */
  async healPath(path: string, o: { full?: boolean; client?: boolean; choice?: SourceChoice } = {}): Promise<HealResult> {
    const result: HealResult = { path, outcomes: [], splitBrain: false, busy: false };
    const todo = [path];
    const seen = new Set<string>();
    const opt = this.r.opts;
    const choice: SourceChoice = o.choice ?? { policy: opt['favorite-child-policy'] };
    // In waves: a directory before the entries its heal created, those of one wave at once.
    const one = async (p: string): Promise<string[]> => {
      const look = await this.r.lookupAll(ROOT_CTX, { path: p });
      const found = this.r.stateOf(look);
      if (!found) { result.outcomes.push('gone'); return []; }
      const { iatt } = found;
      const add = (x: HealOutcome) => {
        result.outcomes.push(x);
        if (x === 'split-brain') result.splitBrain = true;
        if (x === 'busy') result.busy = true;
      };
      let next: string[] = [];
      if (isDir(iatt.mode)) {
        if (!o.client || opt['entry-self-heal']) {
          const e = await healEntry(this.r, p, o.full);
          add(e.outcome);
          next = e.next;
        }
      } else if (isReg(iatt.mode) && (!o.client || opt['data-self-heal']) && !this.r.txns.busy(iatt.gfid)) {
        add(await healData(this.r, p, choice));
      }
      if (!o.client || opt['metadata-self-heal']) add(await healMetadata(this.r, p, choice, o.full));
      this.r.inodes.delete(iatt.gfid);
      return next;
    };
    const width = o.client ? 1 : opt['shd-max-threads'];
    while (todo.length && seen.size < MAX_DEPTH * 64) {
      const wave = todo.splice(0).filter((p) => !seen.has(p) && seen.add(p));
      const more = await mapBounded(wave, width, one);
      todo.push(...more.flat());
    }
    return result;
  }

  /** One pass over the heal index of the given children (all up ones by default). */
  async sweepIndex(children: number[] = this.r.upChildren()): Promise<{ healed: number; failed: number; left: number }> {
    let healed = 0;
    let failed = 0;
    let left = 0;
    const paths = new Set<string>();
    for (const i of children) for (const e of (await listIndex(this.r, i)) ?? []) paths.add(e.path);
    // Shallow paths first, one depth at a time, so entries exist before their data heals; the
    // paths of one depth are independent and heal shd-max-threads at a time.
    const byDepth = new Map<number, string[]>();
    for (const p of paths) {
      const d = p === '/' ? 0 : p.split('/').length;
      byDepth.set(d, [...(byDepth.get(d) ?? []), p]);
    }
    for (const d of [...byDepth.keys()].sort((a, b) => a - b)) {
      await mapBounded(byDepth.get(d)!, this.r.opts['shd-max-threads'], async (p) => {
        try {
          const res = await this.healPath(p);
          if (res.busy || res.splitBrain) left++;
          else healed++;
        } catch (e) {
          failed++;
          this.r.log.warn({ path: p, err: (e as Error).message }, 'index heal failed');
        }
      });
    }
    return { healed, failed, left };
  }

  /** `heal full`: every directory and file of the set, from the root. */
  async crawl(dir = '/'): Promise<number> {
    let n = 0;
    const stack = [dir];
    while (stack.length) {
      const d = stack.pop()!;
      await this.healPath(d, { full: true });
      n++;
      const lists = await this.r.onAll((c) => c.readdirp(ROOT_CTX, { path: d }), this.r.upChildren().filter((i) => i !== this.r.arbiter));
      const names = new Map<string, Iatt>();
      for (const l of lists) if (l.ok) for (const e of l.value) names.set(e.name, e.iatt);
      const files: string[] = [];
      for (const [name, iatt] of names) {
        const p = d === '/' ? `/${name}` : `${d}/${name}`;
        if (isDir(iatt.mode)) stack.push(p);
        else files.push(p);
      }
      // The files of one directory are independent: shd-max-threads of them at once.
      await mapBounded(files, this.r.opts['shd-max-threads'], (p) => this.healPath(p, { full: true }));
      n += files.length;
    }
    return n;
  }

  /** The heal info of every child: its index entries and which are in split-brain. */
  async info(): Promise<HealInfoBrick[]> {
    const out: HealInfoBrick[] = [];
    for (const [i, c] of this.r.children.entries()) {
      const list = await listIndex(this.r, i);
      if (!list) { out.push({ child: c.name, connected: false, entries: [] }); continue; }
      const entries: HealInfoEntry[] = [];
      for (const e of list) {
        const found = this.r.stateOf(await this.r.lookupAll(ROOT_CTX, { path: e.path }));
        const st = found?.state;
        if (found && !(st?.data?.pending || st?.metadata?.pending || st?.entry?.pending)) continue; // cleared meanwhile
        entries.push({ path: e.path, gfid: e.gfid, splitBrain: !!(st?.data?.splitBrain || st?.metadata?.splitBrain || st?.entry?.splitBrain) });
      }
      out.push({ child: c.name, connected: true, entries });
    }
    return out;
  }

  /** `heal VOL split-brain bigger-file|latest-mtime F` and `source-brick H:B F`. */
  async resolveSplitBrain(path: string, how: string, childName?: string): Promise<void> {
    const look = await this.r.lookupAll(ROOT_CTX, { path });
    const found = this.r.stateOf(look);
    if (!found) throw new FsError('ENOENT', `${path}: not found on any brick`);
    const st = found.state;
    const inSplit = st.data?.splitBrain || st.metadata?.splitBrain || st.entry?.splitBrain;
    if (!inSplit) throw new FsError('EINVAL', `${path}: not in split-brain`);
    let source: number | undefined;
    if (how === 'source-brick') {
      source = this.r.children.findIndex((c) => c.name === childName);
      if (source < 0) throw new FsError('EINVAL', `${childName} is not a brick of ${path}'s replica set`);
    } else {
      const policy = (CLI_POLICIES[how] ?? how) as Policy;
      const copies = look.filter((x) => x.ok && x.i !== this.r.arbiter).map((x) => ({ i: x.i, iatt: (x as { value: { iatt: Iatt } }).value.iatt }));
      source = choose(policy, copies);
      if (source === undefined) throw new FsError('EINVAL', `${path}: the copies tie on ${how}; use source-brick`);
    }
    const res = await this.healPath(path, { choice: { source } });
    if (res.busy) throw new FsError('EAGAIN', `${path}: being written; try again`);
    this.r.log.info({ path, how, source: this.r.children[source].name }, 'split-brain resolved');
  }
}
