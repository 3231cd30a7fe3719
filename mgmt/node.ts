// One gfsd's view of itself: identity, store, bricks, the pool members, a lock that serialises
// changing commands, and a way to run a step on any member (locally for itself, by rpc otherwise).
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/log.js';
import { BrickManager } from './bricks.js';
import { ShdManager } from './shd.js';
import { isUnreachable, MgmtError } from './errors.js';
import { callMgmt, PEER_TIMEOUT_MS } from './peer-client.js';
import { Store } from './store.js';
import { memberAddress, type Member, type VolumeDef } from './types.js';

export const LONG_TIMEOUT_MS = 90_000;

export class Node {
  readonly store: Store;
  readonly bricks: BrickManager;
  /** The self-heal daemons of this node's replicated volumes. */
  readonly shd: ShdManager;
  readonly self: Member;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(workdir: string, hostname: string, port: number, readonly log: Logger, logLevel: string) {
    this.store = new Store(workdir);
    this.self = { uuid: this.store.uuid, hostname, port };
    this.bricks = new BrickManager(this.store, hostname, log, logLevel);
    this.shd = new ShdManager(this.store, hostname, port, log, logLevel);
  }

  /** Runs changing commands one at a time. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Every member of the pool, this node first. */
  members(): Member[] {
    return [this.self, ...this.store.listPeers()];
  }

  member(uuid: string): Member | undefined {
    return uuid === this.self.uuid ? this.self : this.store.getPeer(uuid);
  }

  memberByHost(host: string): Member | undefined {
    return this.members().find((m) => m.hostname === host);
  }

  isSelf(m: Member): boolean {
    return m.uuid === this.self.uuid;
  }

  /** Runs a step on a member: the local function for this node, the rpc for a peer. */
  async on<Res>(m: Member, local: () => Promise<Res> | Res, method: string, req: object, timeoutMs = PEER_TIMEOUT_MS): Promise<Res> {
    if (this.isSelf(m)) return local();
    return callMgmt<Res>(memberAddress(m), method, req, timeoutMs);
  }

  /** True when the peer answers as itself. */
  async reachable(m: Member, timeoutMs = 2_000): Promise<boolean> {
    if (this.isSelf(m)) return true;
    try {
      const info = await callMgmt<{ self: Member }>(memberAddress(m), 'NodeHello', {}, timeoutMs);
      return info.self?.uuid === m.uuid;
    } catch {
      return false;
    }
  }

  /** Runs a step on several members at once; throws the first failure, phrased as gluster does. */
  async onAll<Res>(targets: Member[], phase: 'Staging' | 'Commit', step: (m: Member) => Promise<Res>): Promise<Map<string, Res>> {
    const results = await Promise.allSettled(targets.map(step));
    const ok = new Map<string, Res>();
    let failure: MgmtError | undefined;
    results.forEach((r, i) => {
      const m = targets[i];
      if (r.status === 'fulfilled') ok.set(m.uuid, r.value);
      else if (!failure) failure = this.phaseError(m, phase, r.reason);
    });
    if (failure) throw Object.assign(failure, { partial: ok });
    return ok;
  }

  phaseError(m: Member, phase: string, err: unknown): MgmtError {
    const e = err instanceof MgmtError ? err : new MgmtError(grpc.status.INTERNAL, String((err as Error)?.message ?? err));
    if (this.isSelf(m)) return e;
    if (isUnreachable(e)) return new MgmtError(e.code, `${phase} failed on ${m.hostname}. Peer is not connected`);
    return new MgmtError(e.code, `${phase} failed on ${m.hostname}. Error: ${e.message}`);
  }

  /** The members owning bricks of a volume, each once, in brick order. */
  owners(v: VolumeDef): Member[] {
    const seen = new Map<string, Member>();
    for (const b of v.bricks) {
      const m = this.member(b.nodeUuid) ?? { uuid: b.nodeUuid, hostname: b.host, port: 0 };
      if (!seen.has(m.uuid)) seen.set(m.uuid, m);
    }
    return [...seen.values()];
  }

  localPaths(v: VolumeDef, uuid = this.self.uuid): string[] {
    return v.bricks.filter((b) => b.nodeUuid === uuid).map((b) => b.path);
  }

  /** Stores a definition here and on every reachable peer (best effort: a peer that is down
   * gets it when it is probed again). */
  async publish(v: VolumeDef): Promise<void> {
    this.store.putVolume(v);
    await Promise.allSettled(this.store.listPeers().map((p) =>
      callMgmt(memberAddress(p), 'SyncVolume', { volume_json: JSON.stringify(v) }).catch((e) => {
        this.log.warn({ peer: p.hostname, volume: v.name, err: (e as Error).message }, 'could not sync volume to peer');
        throw e;
      })));
  }

  async unpublish(name: string): Promise<void> {
    this.store.removeVolume(name);
    await Promise.allSettled(this.store.listPeers().map((p) =>
      callMgmt(memberAddress(p), 'SyncVolume', { delete_name: name })));
  }
}
