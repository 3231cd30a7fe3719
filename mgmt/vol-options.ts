// The `gfs volume set` keys: each row names the translator the option belongs to, so volgen can
// place it on that translator. Extend this table as translators gain options (and move rows into
// the translators' own option tables once the client exports them).
import { parseOptionValue, OptionError, type OptionDef } from '../common/options.js';
import { invalid } from './errors.js';

export interface VolumeOptionDef extends OptionDef {
  /** The translator type that takes the option, e.g. 'protocol/client'. */
  xlator: string;
  /** The option's key on that translator. */
  xlatorKey: string;
}

const row = (key: string, xlator: string, xlatorKey: string, def: Omit<OptionDef, 'key'>): VolumeOptionDef =>
  ({ key, xlator, xlatorKey, ...def });

export const VOLUME_OPTIONS: readonly VolumeOptionDef[] = [
  row('cluster.min-free-disk', 'cluster/distribute', 'min-free-disk', { type: 'string', default: '10%', description: 'Percentage or size of disk space a brick keeps free; new files go elsewhere' }),
  row('cluster.lookup-unhashed', 'cluster/distribute', 'lookup-unhashed', { type: 'bool', default: true, description: 'Look up a missing file on every brick' }),
  row('network.ping-timeout', 'protocol/client', 'ping-timeout', { type: 'int', default: 42, min: 1, max: 1013, description: 'Seconds without an answer before a brick is taken as down' }),
  row('performance.write-behind', 'performance/write-behind', 'enable', { type: 'bool', default: true, description: 'Enable write-behind' }),
  row('performance.write-behind-window-size', 'performance/write-behind', 'window-size', { type: 'size', default: '1MB', description: 'Size of the write-behind buffer per file' }),
  row('performance.read-ahead', 'performance/read-ahead', 'enable', { type: 'bool', default: true, description: 'Enable read-ahead' }),
  row('performance.io-cache', 'performance/io-cache', 'enable', { type: 'bool', default: true, description: 'Enable the data cache' }),
  row('performance.cache-size', 'performance/io-cache', 'cache-size', { type: 'size', default: '32MB', description: 'Size of the data cache' }),
  row('performance.stat-prefetch', 'performance/md-cache', 'enable', { type: 'bool', default: true, description: 'Enable the metadata cache' }),
  row('performance.md-cache-timeout', 'performance/md-cache', 'timeout', { type: 'int', default: 1, min: 0, max: 600, description: 'Seconds metadata stays cached' }),
];

const BY_KEY = new Map(VOLUME_OPTIONS.map((d) => [d.key, d]));

export function volumeOption(key: string): VolumeOptionDef | undefined {
  return BY_KEY.get(key);
}

/** Checks KEY VALUE for `volume set`; returns the value to store (as given). */
export function checkVolumeOption(key: string, value: string): string {
  const def = BY_KEY.get(key);
  if (!def) throw invalid(`option : ${key} does not exist`);
  try {
    parseOptionValue(def, value);
  } catch (e) {
    throw invalid(e instanceof OptionError ? e.message : String(e));
  }
  return value;
}
