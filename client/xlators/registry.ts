// The translator types a volume spec may name, and the building of a spec's graph. The only place
// that knows every translator; translators never import each other.
import { FsError } from '../../common/errors.js';
import type { Xlator } from '../../common/fops.js';
import type { Logger } from '../../common/log.js';
import type { VolumeSpec, XlatorSpec } from '../../common/spec.js';
import { SpecError } from '../../common/spec.js';
import type { Ctx } from '../../common/types.js';
import * as protocolClient from './protocol/client/index.js';
import * as distribute from './cluster/distribute/index.js';
import * as replicate from './cluster/replicate/index.js';
import * as stripe from './cluster/stripe/index.js';
import * as mdCache from './performance/md-cache/index.js';
import * as nlCache from './performance/nl-cache/index.js';
import * as ioCache from './performance/io-cache/index.js';
import * as readAhead from './performance/read-ahead/index.js';
import * as setattrBehind from './performance/setattr-behind/index.js';
import * as writeBehind from './performance/write-behind/index.js';

/** What every translator of one graph shares. */
export interface XlatorContext {
  log: Logger;
  volume: string;
  volumeId: string;
  secret: string;
  rootCtx: Ctx;
}

type Factory = (name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext) => Xlator;

const FACTORIES: Record<string, Factory> = {
  'protocol/client': protocolClient.create,
  'cluster/distribute': distribute.create,
  'cluster/replicate': replicate.create,
  'cluster/stripe': stripe.create,
  'performance/md-cache': mdCache.create,
  'performance/nl-cache': nlCache.create,
  'performance/io-cache': ioCache.create,
  'performance/read-ahead': readAhead.create,
  'performance/setattr-behind': setattrBehind.create,
  'performance/write-behind': writeBehind.create,
};

export function knownTypes(): string[] {
  return Object.keys(FACTORIES);
}

function build(node: XlatorSpec, xctx: XlatorContext): Xlator {
  const factory = FACTORIES[node.type];
  if (!factory) throw new SpecError(`translator ${node.name}: unknown type '${node.type}' (known: ${knownTypes().join(', ')})`);
  const children = (node.children ?? []).map((c) => build(c, xctx));
  try {
    return factory(node.name, node.options ?? {}, children, xctx);
  } catch (e) {
    if (e instanceof FsError || (e as Error).name === 'OptionError') throw new SpecError((e as Error).message.replace(/^EINVAL: /, ''));
    throw e;
  }
}

/** Builds the translator tree of a spec; throws SpecError on an unknown type or a bad option. */
export function buildGraph(spec: VolumeSpec, log: Logger): Xlator {
  const rootCtx: Ctx = { uid: 0, gid: 0, groups: [], pid: process.pid };
  return build(spec.graph, { log, volume: spec.volume, volumeId: spec.volumeId, secret: spec.auth.secret, rootCtx });
}
