// Keeps a mounted graph in step with its volume's spec: every volfile-check-interval seconds the
// mount asks its volfile servers (the one it mounted from, then each backup-volfile-server, so a
// management server that went away is no loss) and applies what changed in place: a protocol/client
// translator whose brick moved (replace-brick) or whose options changed reconnects with the new
// ones. Changes of the graph's shape are logged: they need a remount.
import type { Xlator } from '../common/fops.js';
import type { Logger } from '../common/log.js';
import type { VolumeSpec, XlatorSpec } from '../common/spec.js';
import { fetchSpec } from './volfile.js';

interface Reconfigurable { reconfigure(options: Record<string, unknown>): void }

const canReconfigure = (x: unknown): x is Reconfigurable => typeof (x as Reconfigurable)?.reconfigure === 'function';

function byName<T extends { name: string; children?: readonly T[] }>(root: T, out = new Map<string, T>()): Map<string, T> {
  out.set(root.name, root);
  for (const c of root.children ?? []) byName(c, out);
  return out;
}

const shape = (x: XlatorSpec): string => `${x.type}:${x.name}(${(x.children ?? []).map(shape).join(',')})`;

/** Applies `next` to the live graph; returns how many translators took new options. */
export function applySpec(top: Xlator, prev: VolumeSpec, next: VolumeSpec, log: Logger): number {
  if (shape(prev.graph) !== shape(next.graph)) log.warn('the volume\'s graph changed shape; remount to use it');
  const live = byName<Xlator>(top);
  const old = byName(prev.graph);
  let changed = 0;
  for (const [name, spec] of byName(next.graph)) {
    const before = old.get(name);
    if (!before || JSON.stringify(before.options ?? {}) === JSON.stringify(spec.options ?? {})) continue;
    const x = live.get(name);
    if (canReconfigure(x)) {
      x.reconfigure(spec.options ?? {});
      changed++;
    } else {
      log.warn({ xl: name }, 'options changed on a translator that cannot take them live; remount to use them');
    }
  }
  return changed;
}

/** Polls the servers until stop() is called. */
export function watchSpec(servers: { host: string; port: number }[], first: VolumeSpec, top: Xlator, log: Logger, intervalS: number): { stop(): void } {
  let current = first;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = async () => {
    try {
      const next = await fetchSpec(servers, first.volume);
      if (JSON.stringify(next.graph) !== JSON.stringify(current.graph)) {
        const n = applySpec(top, current, next, log);
        log.info({ reconfigured: n }, 'volume spec changed');
        current = next;
      }
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'cannot fetch the volume spec from any volfile server');
    }
    if (!stopped) timer = setTimeout(tick, intervalS * 1000).unref();
  };
  timer = setTimeout(tick, intervalS * 1000).unref();
  return { stop() { stopped = true; clearTimeout(timer); } };
}
