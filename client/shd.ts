#!/usr/bin/env node
// gfs-shd: the self-heal daemon (GlusterFS's glustershd) and the heal commands' helper (glfsheal).
// It fetches the volume's spec from gfsd, builds the client graph without FUSE, and works on every
// replicate translator in it:
//   daemon:   sweeps the heal index of the bricks on --node-host whenever a brick comes back, soon
//             after a sweep that found work, and every cluster.heal-timeout seconds
//   --once info | heal | full | split-brain HOW FILE [HOST:BRICK]:  one answer as JSON on stdout.
import { realpathSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { toErrno } from '../common/errors.js';
import type { Xlator } from '../common/fops.js';
import { createLogger, type Logger } from '../common/log.js';
import type { VolumeSpec, XlatorSpec } from '../common/spec.js';
import { ROOT_CTX } from '../common/types.js';
import { isReplicate, type Replicate } from './xlators/cluster/replicate/index.js';
import { buildGraph } from './xlators/registry.js';
import { fetchSpec, parseServer } from './volfile.js';

const RETRY_MS = 3000;

export interface HealInfoJson { bricks: { brick: string; connected: boolean; entries: { path: string; splitBrain: boolean }[] }[] }

function replicates(x: Xlator): Replicate[] {
  if (isReplicate(x)) return [x];
  return x.children.flatMap(replicates);
}

/** child translator name -> "host:/brick" from the spec. */
function brickNames(spec: VolumeSpec): Map<string, { brick: string; host: string }> {
  const out = new Map<string, { brick: string; host: string }>();
  const visit = (x: XlatorSpec) => {
    if (x.type === 'protocol/client') {
      const host = String(x.options?.['remote-host'] ?? '');
      out.set(x.name, { brick: `${host}:${String(x.options?.['remote-subvolume'] ?? '')}`, host });
    }
    x.children?.forEach(visit);
  };
  visit(spec.graph);
  return out;
}

async function loadGraph(server: string, volume: string, log: Logger): Promise<{ spec: VolumeSpec; top: Xlator; sets: Replicate[] }> {
  const spec = await fetchSpec([parseServer(server)], volume);
  const top = buildGraph(spec, log);
  await top.init();
  return { spec, top, sets: replicates(top) };
}

async function once(server: string, volume: string, cmd: string[], log: Logger): Promise<unknown> {
  const { spec, top, sets } = await loadGraph(server, volume, log);
  try {
    if (sets.length === 0) throw new Error(`Volume ${volume} is not of type replicate`);
    const bricks = brickNames(spec);
    switch (cmd[0]) {
      case 'info': {
        const out: HealInfoJson = { bricks: [] };
        for (const r of sets) {
          for (const b of await r.healer.info()) {
            out.bricks.push({ brick: bricks.get(b.child)?.brick ?? b.child, connected: b.connected, entries: b.entries.map((e) => ({ path: e.path, splitBrain: e.splitBrain })) });
          }
        }
        return out;
      }
      case 'heal': {
        let healed = 0;
        for (const r of sets) healed += (await r.healer.sweepIndex()).healed;
        return { healed };
      }
      case 'full': {
        let crawled = 0;
        for (const r of sets) crawled += await r.healer.crawl();
        return { crawled };
      }
      case 'split-brain': {
        const [, how, file, brick] = cmd;
        if (!how || !file) throw new Error('split-brain needs {bigger-file|latest-mtime} FILE or source-brick HOST:BRICK FILE');
        const path = file.startsWith('/') ? file : `/${file}`;
        for (const r of sets) {
          const here = await r.lookupAll(ROOT_CTX, { path });
          if (!here.some((x) => x.ok)) continue;
          let child: string | undefined;
          if (how === 'source-brick') {
            child = [...bricks].find(([name, b]) => b.brick === brick && r.childNames.includes(name))?.[0];
            if (!child) throw new Error(`${brick} is not a brick of the replica set holding ${path}`);
          }
          await r.healer.resolveSplitBrain(path, how, child);
          return { resolved: path };
        }
        throw new Error(`${path}: No such file or directory`);
      }
      default:
        throw new Error(`unknown heal command '${cmd[0]}'`);
    }
  } finally {
    await top.fini();
  }
}

async function daemon(server: string, volume: string, nodeHost: string | undefined, log: Logger): Promise<void> {
  let graph: Awaited<ReturnType<typeof loadGraph>> | undefined;
  while (!graph) {
    try {
      graph = await loadGraph(server, volume, log);
    } catch (e) {
      log.debug({ err: (e as Error).message }, 'cannot load the volume spec yet');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const { spec, sets } = graph;
  const bricks = brickNames(spec);
  log.info({ volume, sets: sets.map((s) => s.name) }, 'self-heal daemon running');
  for (const r of sets) {
    const local = r.children.map((c, i) => (!nodeHost || bricks.get(c.name)?.host === nodeHost ? i : -1)).filter((i) => i >= 0);
    let timer: NodeJS.Timeout | undefined;
    let running = false;
    let again = false;
    const sweep = async () => {
      if (running) { again = true; return; }
      running = true;
      clearTimeout(timer);
      let delay = r.opts['heal-timeout'] * 1000;
      try {
        if (r.opts['self-heal-daemon']) {
          const res = await r.healer.sweepIndex(local.filter((i) => r.up[i]));
          if (res.healed || res.failed || res.left) log.info({ set: r.name, ...res }, 'index sweep');
          // Work found: look again soon, for changes pending since (a transaction open during the sweep).
          if (res.healed || res.failed || res.left) delay = RETRY_MS;
        }
      } catch (e) {
        log.warn({ set: r.name, err: (e as Error).message, errno: toErrno(e) }, 'index sweep failed');
        delay = RETRY_MS;
      } finally {
        running = false;
        if (again) { again = false; delay = 0; }
        timer = setTimeout(() => void sweep(), delay);
      }
    };
    r.healer.onChildUpHook = () => { setTimeout(() => void sweep(), 200); };
    void sweep();
  }
  await new Promise(() => undefined); // serve until killed
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true,
    options: {
      'volfile-server': { type: 'string', default: '127.0.0.1:24007' }, volume: { type: 'string' },
      'node-host': { type: 'string' }, 'log-file': { type: 'string' }, 'log-level': { type: 'string' },
      'pid-file': { type: 'string' }, once: { type: 'boolean' },
    },
  });
  if (!values.volume) {
    process.stderr.write('usage: gfs-shd --volfile-server HOST:PORT --volume VOL [--node-host H] [--once info|heal|full|split-brain ...]\n');
    return 2;
  }
  const log = createLogger('gfs-shd', values['log-level'] ?? (values.once ? 'warn' : undefined), values['log-file']);
  if (values.once) {
    try {
      const res = await once(values['volfile-server']!, values.volume, positionals, log);
      process.stdout.write(`${JSON.stringify(res)}\n`);
      return 0;
    } catch (e) {
      process.stdout.write(`${JSON.stringify({ error: (e as Error).message })}\n`);
      return 1;
    }
  }
  if (values['pid-file']) {
    await mkdir(dirname(values['pid-file']), { recursive: true });
    await writeFile(values['pid-file'], `${process.pid}\n`);
  }
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
  await daemon(values['volfile-server']!, values.volume, values['node-host'], log);
  return 0;
}

const isMain = !!process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) main(process.argv.slice(2)).then((code) => process.exit(code));
