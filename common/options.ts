// One options table per translator: key, type, default, bounds, description. parseOptions() serves
// init and reconfigure, and `gfs volume set` keys are looked up in the same tables.
export type OptionType = 'string' | 'int' | 'bool' | 'size' | 'time' | 'enum';

export interface OptionDef {
  key: string;
  type: OptionType;
  default?: string | number | boolean;
  min?: number;
  max?: number;
  values?: readonly string[];
  description: string;
}

export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, KB: 1024, KIB: 1024, M: 1024 ** 2, MB: 1024 ** 2, MIB: 1024 ** 2, G: 1024 ** 3, GB: 1024 ** 3, GIB: 1024 ** 3 };

export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? SIZE_UNITS[m[2].toUpperCase()] : undefined;
  if (!m || unit === undefined) throw new OptionError(`'${text}' is not a size (use e.g. 128KB, 4MB)`);
  return Math.round(Number(m[1]) * unit);
}

const TIME_UNITS: Record<string, number> = { '': 1, s: 1, ms: 0.001, m: 60, min: 60, h: 3600 };

/** Seconds. */
export function parseTime(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/.exec(text);
  const unit = m ? TIME_UNITS[m[2]] : undefined;
  if (!m || unit === undefined) throw new OptionError(`'${text}' is not a time (use e.g. 10, 10s, 500ms)`);
  return Number(m[1]) * unit;
}

function parseBool(text: string): boolean {
  const t = text.toLowerCase();
  if (['on', 'yes', 'true', 'enable', '1'].includes(t)) return true;
  if (['off', 'no', 'false', 'disable', '0'].includes(t)) return false;
  throw new OptionError(`'${text}' is not a boolean (use on or off)`);
}

export function parseOptionValue(def: OptionDef, raw: unknown): string | number | boolean {
  const text = String(raw);
  let v: string | number | boolean;
  switch (def.type) {
    case 'string': v = text; break;
    case 'bool': v = typeof raw === 'boolean' ? raw : parseBool(text); break;
    case 'int':
      if (!/^-?\d+$/.test(text.trim())) throw new OptionError(`option ${def.key}: '${text}' is not an integer`);
      v = Number(text); break;
    case 'size': v = typeof raw === 'number' ? raw : parseSize(text); break;
    case 'time': v = typeof raw === 'number' ? raw : parseTime(text); break;
    case 'enum':
      if (!def.values?.includes(text)) throw new OptionError(`option ${def.key}: '${text}' is not one of ${def.values?.join(', ')}`);
      v = text; break;
  }
  if (typeof v === 'number') {
    if (def.min !== undefined && v < def.min) throw new OptionError(`option ${def.key}: ${text} is below the minimum ${def.min}`);
    if (def.max !== undefined && v > def.max) throw new OptionError(`option ${def.key}: ${text} is above the maximum ${def.max}`);
  }
  return v;
}

/** Validates raw options against a table and fills defaults. Unknown keys are an error. */
export function parseOptions<T = Record<string, string | number | boolean>>(
  table: readonly OptionDef[],
  raw: Record<string, unknown> = {},
  where = 'options',
): T {
  const out: Record<string, string | number | boolean> = {};
  const known = new Map(table.map((d) => [d.key, d]));
  for (const key of Object.keys(raw)) {
    if (!known.has(key)) throw new OptionError(`${where}: unknown option '${key}' (known: ${[...known.keys()].join(', ')})`);
  }
  for (const def of table) {
    const value = raw[def.key];
    if (value === undefined || value === null) {
      if (def.default !== undefined) out[def.key] = def.default;
      continue;
    }
    out[def.key] = parseOptionValue(def, value);
  }
  return out as T;
}
