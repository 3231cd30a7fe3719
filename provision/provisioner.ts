// The provisioner's state: the db, the executor, the queue, the limits, one lock that runs changing
// operations one at a time, and the test hook that stops an operation at a named step.
import type { Logger } from '../common/log.js';
import type { ProvisionerConfig } from './config.js';
import type { Db, NodeRec, VolumeRec } from './db.js';
import type { Executor } from './executor.js';
import { AsyncQueue } from './queue.js';
import { isUnreachable } from '../mgmt/errors.js';
import { parseHostPort } from '../mgmt/types.js';

export class Provisioner {
  readonly queue = new AsyncQueue();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly db: Db, readonly ex: Executor, readonly cfg: ProvisionerConfig, readonly log: Logger) {}

  /** Runs changing operations one at a time. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Starts an exclusive operation in the background; returns its /queue url. */
  async(what: string, fn: () => Promise<string | void>): string {
    return this.queue.start(() => this.exclusive(fn), (e) => this.log.warn({ op: what, err: (e as Error).message }, 'operation failed'));
  }

  /** GFS_PROVISIONER_PAUSE_AT=step stops here forever (for crash tests: the test then kills -9). */
  async step(name: string): Promise<void> {
    if (process.env.GFS_PROVISIONER_PAUSE_AT !== name) return;
    this.log.warn({ step: name }, 'paused (GFS_PROVISIONER_PAUSE_AT)');
    process.stderr.write(`gfs-provisioner: paused at ${name}\n`);
    await new Promise(() => {});
  }

  storageAddress(node: NodeRec): string {
    return node.hostnames.storage[0];
  }

  gfsdPort(node: NodeRec): number {
    return parseHostPort(node.hostnames.manage[0], this.cfg.glusterfs.gfsd_port).port;
  }

  /** Online nodes of a cluster, those holding the volume's bricks first. */
  clusterNodes(clusterId: string, v?: VolumeRec): NodeRec[] {
    const c = this.db.get('cluster', clusterId);
    const first = new Set((v?.bricks ?? []).map((id) => this.db.get('brick', id)?.node));
    return (c?.nodes ?? []).map((id) => this.db.get('node', id)).filter((n): n is NodeRec => !!n && n.state === 'online')
      .sort((a, b) => Number(first.has(b.id)) - Number(first.has(a.id)));
  }

  /** Runs fn against the first node of the cluster that answers. */
  async onCluster<T>(clusterId: string, fn: (n: NodeRec) => Promise<T>, v?: VolumeRec): Promise<T> {
    const nodes = this.clusterNodes(clusterId, v);
    if (!nodes.length) throw new Error(`cluster ${clusterId} has no online node`);
    let last: unknown;
    for (const n of nodes) {
      try {
        return await fn(n);
      } catch (e) {
        last = e;
        if (!isUnreachable(e)) throw e;
      }
    }
    throw last;
  }
}
