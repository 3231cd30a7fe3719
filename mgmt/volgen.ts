// Volume layouts (how gluster validates `replica N [arbiter 1]` / `stripe N` and names the type)
// and spec generation: a volume definition becomes the client graph, a VolumeSpec.
// GRAPH_BUILDERS is the one table of which volume types volgen supports.
import type { OptionValue, VolumeSpec, XlatorSpec } from '../common/spec.js';
import { parseOptionValue } from '../common/options.js';
import { invalid } from './errors.js';
import { volumeOption } from './vol-options.js';
import { DEFAULT_MGMT_PORT, type Member, type VolumeDef } from './types.js';

export type VolumeType =
  | 'Distribute' | 'Replicate' | 'Distributed-Replicate' | 'Stripe' | 'Distributed-Stripe'
  | 'Striped-Replicate' | 'Distributed-Striped-Replicate';

export interface Layout { stripe: number; replica: number; arbiter: number }

/** The type gluster shows for a layout and a brick count. */
export function volumeType(l: Layout, count: number): VolumeType {
  const group = l.stripe * l.replica;
  const distributed = count > group;
  if (l.stripe > 1 && l.replica > 1) return distributed ? 'Distributed-Striped-Replicate' : 'Striped-Replicate';
  if (l.replica > 1) return distributed ? 'Distributed-Replicate' : 'Replicate';
  if (l.stripe > 1) return distributed ? 'Distributed-Stripe' : 'Stripe';
  return 'Distribute';
}

/** "2", "1 x 2 = 2", "2 x 2 = 4", "1 x (2 + 1) = 3", as gluster's "Number of Bricks:". */
export function brickCountText(l: Layout, count: number): string {
  const group = l.stripe * l.replica;
  if (group === 1) return String(count);
  const inner = l.arbiter ? `(${group - l.arbiter} + ${l.arbiter})` : l.stripe > 1 && l.replica > 1 ? `${l.stripe} x ${l.replica}` : String(group);
  return `${count / group} x ${inner} = ${count}`;
}

/** Validates the counts of `volume create` as gluster's CLI does; throws the message to print. */
export function checkLayout(req: { stripe?: number; replica?: number; arbiter?: number }, count: number): Layout {
  const stripe = req.stripe || 1;
  const replica = req.replica || 1;
  const arbiter = req.arbiter || 0;
  if (req.stripe !== undefined && req.stripe !== 0 && stripe < 2) throw invalid('stripe count should be greater than 1');
  if (req.replica !== undefined && req.replica !== 0 && replica < 2) throw invalid('replica count should be greater than 1');
  if (arbiter) {
    if (arbiter !== 1 || replica !== 3) throw invalid('For arbiter configuration, replica count must be 3 and arbiter count must be 1. The 3rd brick of the replica will be the arbiter');
  }
  if (count === 0) throw invalid('no bricks given');
  const group = stripe * replica;
  if (count < group) throw invalid(`number of bricks provided (${count}) is not valid. need at least ${group}`);
  if (count % group !== 0) {
    const what = stripe > 1 && replica > 1 ? 'stripe x replica' : replica > 1 ? 'replica' : 'stripe';
    throw invalid(`number of bricks is not a multiple of ${what} count`);
  }
  return { stripe, replica, arbiter };
}

export interface VolgenContext {
  /** The pool member owning each brick (for remote-mgmt-port). */
  member(uuid: string): Member | undefined;
}

type GraphBuilder = (v: VolumeDef, ctx: VolgenContext) => XlatorSpec;

function clientXlators(v: VolumeDef, ctx: VolgenContext): XlatorSpec[] {
  return v.bricks.map((b, i) => {
    const options: Record<string, OptionValue> = { 'remote-host': b.host, 'remote-subvolume': b.path };
    const port = ctx.member(b.nodeUuid)?.port;
    if (port !== undefined && port !== DEFAULT_MGMT_PORT) options['remote-mgmt-port'] = port;
    return { type: 'protocol/client', name: `${v.name}-client-${i}`, options, children: [] };
  });
}

const distribute: GraphBuilder = (v, ctx) => ({
  type: 'cluster/distribute', name: `${v.name}-dht`, options: {}, children: clientXlators(v, ctx),
});

/** Stripe groups of `stripe` consecutive bricks, in brick order (as gluster groups them). */
function stripeGroups(v: VolumeDef, ctx: VolgenContext): XlatorSpec[] {
  const clients = clientXlators(v, ctx);
  const groups: XlatorSpec[] = [];
  for (let g = 0; g * v.stripe < clients.length; g++) {
    groups.push({ type: 'cluster/stripe', name: `${v.name}-stripe-${g}`, options: {}, children: clients.slice(g * v.stripe, (g + 1) * v.stripe) });
  }
  return groups;
}

const stripe: GraphBuilder = (v, ctx) => stripeGroups(v, ctx)[0];

const distributedStripe: GraphBuilder = (v, ctx) => ({
  type: 'cluster/distribute', name: `${v.name}-dht`, options: {}, children: stripeGroups(v, ctx),
});

/** Replica sets of `replica` consecutive bricks, in brick order (as gluster groups them); an
 * arbiter volume's third brick of each set is the arbiter. */
function replicaGroups(v: VolumeDef, ctx: VolgenContext): XlatorSpec[] {
  const clients = clientXlators(v, ctx);
  const groups: XlatorSpec[] = [];
  for (let g = 0; g * v.replica < clients.length; g++) {
    const options: Record<string, OptionValue> = v.arbiter ? { 'arbiter-count': v.arbiter } : {};
    groups.push({ type: 'cluster/replicate', name: `${v.name}-replicate-${g}`, options, children: clients.slice(g * v.replica, (g + 1) * v.replica) });
  }
  return groups;
}

const replicate: GraphBuilder = (v, ctx) => replicaGroups(v, ctx)[0];

const distributedReplicate: GraphBuilder = (v, ctx) => ({
  type: 'cluster/distribute', name: `${v.name}-dht`, options: {}, children: replicaGroups(v, ctx),
});

/** Which volume types volgen can build; a type missing here cannot be created yet. */
const GRAPH_BUILDERS: Partial<Record<VolumeType, GraphBuilder>> = {
  Distribute: distribute,
  Replicate: replicate,
  'Distributed-Replicate': distributedReplicate,
  Stripe: stripe,
  'Distributed-Stripe': distributedStripe,
};

export function isSupported(type: VolumeType): boolean {
  return GRAPH_BUILDERS[type] !== undefined;
}

export function unsupportedMessage(type: VolumeType): string {
  return `${type.toLowerCase()} volumes are not supported yet`;
}

/** Puts each `volume set` option on every translator of the type it belongs to. Options of
 * translators the graph leaves out (a performance translator switched off) stay in the definition only. */
function placeOptions(graph: XlatorSpec, options: Record<string, string>): void {
  const visit = (x: XlatorSpec) => {
    for (const [key, raw] of Object.entries(options)) {
      const def = volumeOption(key);
      if (def && (def.xlator === x.type || def.also?.includes(x.type))) (x.options ??= {})[def.xlatorKey] = parseOptionValue(def, raw);
    }
    x.children?.forEach(visit);
  };
  visit(graph);
}

/** The performance translators, top first (GlusterFS's order), each with the `volume set` key
 *  that switches it off. They sit above the cluster translators. */
const PERFORMANCE_STACK: readonly { type: string; suffix: string; key: string }[] = [
  { type: 'performance/md-cache', suffix: 'md-cache', key: 'performance.stat-prefetch' },
  { type: 'performance/nl-cache', suffix: 'nl-cache', key: 'performance.nl-cache' },
  { type: 'performance/io-cache', suffix: 'io-cache', key: 'performance.io-cache' },
  { type: 'performance/read-ahead', suffix: 'read-ahead', key: 'performance.read-ahead' },
  { type: 'performance/setattr-behind', suffix: 'setattr-behind', key: 'performance.setattr-behind' },
  { type: 'performance/write-behind', suffix: 'write-behind', key: 'performance.write-behind' },
];

function withPerformance(v: VolumeDef, cluster: XlatorSpec): XlatorSpec {
  let graph = cluster;
  for (const p of [...PERFORMANCE_STACK].reverse()) {
    const def = volumeOption(p.key);
    const raw = v.options?.[p.key];
    if (def && raw !== undefined && parseOptionValue(def, raw) === false) continue;
    graph = { type: p.type, name: `${v.name}-${p.suffix}`, options: {}, children: [graph] };
  }
  return graph;
}

/** The cluster translator under the performance stack of a generated graph. */
export function clusterOf(graph: XlatorSpec): XlatorSpec {
  let x = graph;
  while (x.type.startsWith('performance/') && x.children?.length) x = x.children[0];
  return x;
}

export function generateSpec(v: VolumeDef, ctx: VolgenContext): VolumeSpec {
  const type = volumeType(v, v.bricks.length);
  const build = GRAPH_BUILDERS[type];
  if (!build) throw invalid(unsupportedMessage(type));
  const graph = withPerformance(v, build(v, ctx));
  placeOptions(graph, v.options);
  return { version: 1, volume: v.name, volumeId: v.id, auth: { secret: v.secret }, graph };
}
