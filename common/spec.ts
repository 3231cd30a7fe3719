// The volume spec: the client graph as data (JSON). gfsd generates it from a volume definition; a
// user or a test can also write one and mount it with `gfs-mount --spec FILE`.
export type OptionValue = string | number | boolean;

export interface XlatorSpec {
  /** Translator type, e.g. 'cluster/distribute', 'protocol/client'. */
  type: string;
  /** Unique in the graph, e.g. 'volume1-client-0'. */
  name: string;
  options?: Record<string, OptionValue>;
  children?: XlatorSpec[];
}

export interface VolumeSpec {
  version: 1;
  volume: string;
  volumeId: string;
  /** The volume's credentials, presented to every brick. */
  auth: { secret: string };
  graph: XlatorSpec;
}

export class SpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpecError';
  }
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function checkXlator(x: unknown, where: string, names: Set<string>): XlatorSpec {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new SpecError(`${where}: must be an object`);
  const o = x as Record<string, unknown>;
  if (typeof o.type !== 'string' || !/^[a-z]+\/[a-z-]+$/.test(o.type)) throw new SpecError(`${where}: 'type' must be a translator type such as "cluster/distribute"`);
  if (typeof o.name !== 'string' || !NAME_RE.test(o.name)) throw new SpecError(`${where}: 'name' must be a non-empty name of letters, digits, '.', '_' or '-'`);
  if (names.has(o.name)) throw new SpecError(`${where}: the name '${o.name}' is used twice`);
  names.add(o.name);
  if (o.options !== undefined) {
    if (typeof o.options !== 'object' || o.options === null || Array.isArray(o.options)) throw new SpecError(`${where}.options: must be an object`);
    for (const [k, v] of Object.entries(o.options)) {
      if (!['string', 'number', 'boolean'].includes(typeof v)) throw new SpecError(`${where}.options.${k}: must be a string, number or boolean`);
    }
  }
  let children: XlatorSpec[] | undefined;
  if (o.children !== undefined) {
    if (!Array.isArray(o.children)) throw new SpecError(`${where}.children: must be an array`);
    children = o.children.map((c, i) => checkXlator(c, `${where}.children[${i}]`, names));
  }
  return { type: o.type, name: o.name, options: (o.options as Record<string, OptionValue>) ?? {}, children: children ?? [] };
}

/** Parses and checks a spec; throws SpecError naming the source and the field that is wrong. */
export function parseSpec(text: string, source = 'spec'): VolumeSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new SpecError(`${source}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SpecError(`${source}: must be a JSON object`);
  const o = raw as Record<string, unknown>;
  if (o.version !== 1) throw new SpecError(`${source}: 'version' must be 1`);
  if (typeof o.volume !== 'string' || !NAME_RE.test(o.volume)) throw new SpecError(`${source}: 'volume' must be a volume name`);
  if (typeof o.volumeId !== 'string' || !o.volumeId) throw new SpecError(`${source}: 'volumeId' is missing`);
  const auth = o.auth as Record<string, unknown> | undefined;
  if (typeof auth !== 'object' || auth === null || typeof auth.secret !== 'string' || !auth.secret) throw new SpecError(`${source}: 'auth.secret' is missing`);
  const graph = checkXlator(o.graph, `${source}: graph`, new Set());
  return { version: 1, volume: o.volume, volumeId: o.volumeId, auth: { secret: auth.secret }, graph };
}
