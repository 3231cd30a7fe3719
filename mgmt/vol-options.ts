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
  /** Other translator types that take it under the same key. */
  also?: string[];
}

const row = (key: string, xlator: string, xlatorKey: string, def: Omit<OptionDef, 'key'>): VolumeOptionDef =>
  ({ key, xlator, xlatorKey, ...def });

export const VOLUME_OPTIONS: readonly VolumeOptionDef[] = [
  row('cluster.min-free-disk', 'cluster/distribute', 'min-free-disk', { type: 'string', default: '10%', description: 'Percentage or size of disk space a brick keeps free; new files go elsewhere' }),
  row('cluster.lookup-unhashed', 'cluster/distribute', 'lookup-unhashed', { type: 'bool', default: true, description: 'Look up a missing file on every brick' }),
  row('cluster.stripe-block-size', 'cluster/stripe', 'block-size', { type: 'size', default: '128KB', min: 16 * 1024, max: 1024 ** 3, description: 'Size of the chunks new files of a striped volume are cut into; files keep the size they were made with' }),
  row('cluster.quorum-type', 'cluster/replicate', 'quorum-type', { type: 'enum', values: ['none', 'auto', 'fixed'], description: 'Client quorum of a replica set: none, auto (a majority; the default for replica 3), fixed (cluster.quorum-count); writes below quorum fail with EROFS' }),
  row('cluster.quorum-count', 'cluster/replicate', 'quorum-count', { type: 'int', default: 1, min: 1, max: 16, description: 'Bricks of a replica set that must be up for writes when cluster.quorum-type is fixed' }),
  row('cluster.favorite-child-policy', 'cluster/replicate', 'favorite-child-policy', { type: 'enum', values: ['none', 'size', 'mtime', 'ctime', 'majority'], default: 'none', description: 'Resolve split-brain automatically, keeping the bigger, newer (mtime or ctime) or majority copy' }),
  row('cluster.self-heal-daemon', 'cluster/replicate', 'self-heal-daemon', { type: 'bool', default: true, description: 'Heal replica sets in the background with the self-heal daemon' }),
  row('cluster.data-self-heal', 'cluster/replicate', 'data-self-heal', { type: 'bool', default: true, description: 'Clients heal file data found stale on lookup' }),
  row('cluster.metadata-self-heal', 'cluster/replicate', 'metadata-self-heal', { type: 'bool', default: true, description: 'Clients heal metadata found stale on lookup' }),
  row('cluster.entry-self-heal', 'cluster/replicate', 'entry-self-heal', { type: 'bool', default: true, description: 'Clients heal directory entries found stale on lookup' }),
  row('cluster.background-self-heal-count', 'cluster/replicate', 'background-self-heal-count', { type: 'int', default: 8, min: 0, max: 256, description: 'Heals a client runs at once in the background' }),
  row('cluster.post-op-delay-secs', 'cluster/replicate', 'post-op-delay-secs', { type: 'int', default: 1, min: 0, max: 60, description: 'Seconds a data transaction stays open after the last write' }),
  row('cluster.shd-max-threads', 'cluster/replicate', 'shd-max-threads', { type: 'int', default: 8, min: 1, max: 64, description: 'Heals the self-heal daemon runs at once per replica set (gluster: 1)' }),
  row('cluster.heal-timeout', 'cluster/replicate', 'heal-timeout', { type: 'int', default: 60, min: 1, max: 86400, description: 'Seconds between the self-heal daemon\'s sweeps of the heal index' }),
  row('network.ping-timeout', 'protocol/client', 'ping-timeout', { type: 'int', default: 10, min: 1, max: 1013, description: 'Seconds a connected brick may leave a ping unanswered before clients take it as down (gluster: 42)' }),
  row('performance.write-behind', 'performance/write-behind', 'enable', { type: 'bool', default: true, description: 'Enable write-behind (off leaves the translator out of the graph)' }),
  row('performance.write-behind-window-size', 'performance/write-behind', 'window-size', { type: 'size', default: '4MB', min: 64 * 1024, max: 1024 ** 3, description: 'Size of the write-behind buffer per file' }),
  row('performance.aggregate-size', 'performance/write-behind', 'aggregate-size', { type: 'size', default: '128KB', min: 4096, max: 16 * 1024 * 1024, description: 'Contiguous small writes are sent as one write of up to this size' }),
  row('performance.setattr-behind', 'performance/setattr-behind', 'enable', { type: 'bool', default: true, description: 'Hold chown, chmod and utimes of a file open on this client until its close (one setattr then, after its data; a failure is reported by the close); off leaves the translator out of the graph' }),
  row('performance.read-ahead', 'performance/read-ahead', 'enable', { type: 'bool', default: true, description: 'Enable read-ahead (off leaves the translator out of the graph)' }),
  row('performance.read-ahead-page-count', 'performance/read-ahead', 'page-count', { type: 'int', default: 4, min: 1, max: 16, description: 'Pages read ahead of a sequential reader' }),
  row('performance.io-cache', 'performance/io-cache', 'enable', { type: 'bool', default: true, description: 'Enable the data cache (off leaves the translator out of the graph)' }),
  row('performance.cache-size', 'performance/io-cache', 'cache-size', { type: 'size', default: '32MB', min: 1024 * 1024, description: 'Size of the data cache' }),
  row('performance.cache-refresh-timeout', 'performance/io-cache', 'cache-timeout', { type: 'int', default: 1, min: 0, max: 60, description: 'Seconds cached data stays valid' }),
  row('performance.stat-prefetch', 'performance/md-cache', 'enable', { type: 'bool', default: true, description: 'Enable the metadata cache (off leaves the translator out of the graph)' }),
  row('performance.md-cache-timeout', 'performance/md-cache', 'timeout', { type: 'int', default: 600, min: 0, max: 600, description: 'Seconds metadata stays cached while the bricks tell clients of each other\'s changes (performance.cache-invalidation); without that 1 s unless set' }),
  row('performance.md-cache-listings', 'performance/md-cache', 'listings', { type: 'bool', default: true, description: 'Answer a directory listing from the metadata cache while its names and every entry\'s attributes are cached (own creates, unlinks and renames keep it current; upcalls drop it)' }),
  { ...row('performance.cache-invalidation', 'performance/md-cache', 'cache-invalidation', { type: 'bool', default: true, description: 'Bricks tell each client what other clients changed of what it looked at, and md-cache and nl-cache drop it at once (GlusterFS: features.cache-invalidation with performance.cache-invalidation); off: metadata cached 1 s, directory lists 5 s' }), also: ['performance/nl-cache'] },
  row('performance.nl-cache', 'performance/nl-cache', 'enable', { type: 'bool', default: true, description: 'Enable the negative-lookup cache: a lookup of a name missing from a directory whose names this client knows (it made or listed it) fails without a brick round trip (off leaves the translator out of the graph)' }),
  row('performance.nl-cache-timeout', 'performance/nl-cache', 'timeout', { type: 'int', default: 600, min: 0, max: 600, description: 'Seconds a directory\'s known names stay trusted while the bricks tell of other clients\' changes (performance.cache-invalidation); without that 5 s unless set' }),
  row('performance.nl-cache-limit', 'performance/nl-cache', 'limit', { type: 'int', default: 100000, min: 16, max: 10000000, description: 'Most names the negative-lookup cache keeps, over all directories; a directory with more is not tracked' }),
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
