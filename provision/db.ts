// The provisioner's embedded database (lmdb, one file): clusters, nodes, devices, bricks, volumes
// and pending operations, as JSON values under "<kind>/<id>" keys. Every change that touches more
// than one record is one transaction, so a crash leaves either all of it or none.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { open, type RootDatabase } from 'lmdb';

export type EntryState = 'online' | 'offline' | 'failed';

export interface ClusterRec { id: string; nodes: string[]; volumes: string[]; block: boolean; file: boolean }
export interface NodeRec {
  id: string; cluster: string; zone: number; hostnames: { manage: string[]; storage: string[] };
  tags?: Record<string, string>; state: EntryState; devices: string[];
}
/** Sizes in KiB, as Heketi keeps them. */
export interface DeviceRec {
  id: string; node: string; name: string; tags?: Record<string, string>; state: EntryState;
  storage: { total: number; free: number; used: number }; bricks: string[];
}
export interface BrickRec {
  id: string; device: string; node: string; volume: string; size: number;
  /** The brick directory on the node; "" until carved. */
  path: string;
  /** The pending operation that made it, until that operation finishes. */
  pending?: string;
}
export type Durability =
  | { type: 'none'; replicate: { replica?: number }; disperse: Record<string, never> }
  | { type: 'replicate'; replicate: { replica: number }; disperse: Record<string, never> };
export interface VolumeRec {
  id: string; name: string; cluster: string; size: number; durability: Durability; gid: number;
  glustervolumeoptions: string[]; snapshot: { enable: boolean; factor: number };
  bricks: string[]; pending?: string;
}
export type OpType = 'create-volume' | 'delete-volume' | 'expand-volume';
export interface PendingOp {
  id: string; type: OpType; volume: string;
  /** Bricks this operation adds (create, expand) or removes (delete). */
  bricks: string[];
  /** For expand: the volume's size before. */
  oldSize?: number;
  started: string; lastError?: string;
}

type Kind = 'cluster' | 'node' | 'device' | 'brick' | 'volume' | 'op';
type RecOf<K extends Kind> = K extends 'cluster' ? ClusterRec : K extends 'node' ? NodeRec : K extends 'device' ? DeviceRec
  : K extends 'brick' ? BrickRec : K extends 'volume' ? VolumeRec : PendingOp;

export class Db {
  private readonly db: RootDatabase<unknown, string>;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.db = open<unknown, string>({ path, compression: false });
  }

  get<K extends Kind>(kind: K, id: string): RecOf<K> | undefined {
    return this.db.get(`${kind}/${id}`) as RecOf<K> | undefined;
  }

  must<K extends Kind>(kind: K, id: string): RecOf<K> {
    const v = this.get(kind, id);
    if (!v) throw new Error(`db: ${kind} ${id} is missing`);
    return v;
  }

  list<K extends Kind>(kind: K): RecOf<K>[] {
    const out: RecOf<K>[] = [];
    for (const { value } of this.db.getRange({ start: `${kind}/`, end: `${kind}0` })) out.push(value as RecOf<K>);
    return out;
  }

  /** Only inside transaction(). */
  put<K extends Kind>(kind: K, rec: RecOf<K> & { id: string }): void {
    this.db.putSync(`${kind}/${rec.id}`, rec);
  }

  /** Only inside transaction(). */
  remove(kind: Kind, id: string): void {
    this.db.removeSync(`${kind}/${id}`);
  }

  /** Runs fn in one synchronous write transaction, durable when it returns. */
  transaction<T>(fn: () => T): T {
    return this.db.transactionSync(fn);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
