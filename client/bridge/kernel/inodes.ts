// The inode table of one mount: the kernel's nodeids, each with its gfid, its lookup count and its
// place (parent nodeid + name). Paths for our Loc are built from the parent pointers, so a rename
// moves one entry and everything below it follows. The kernel bounds the table: it FORGETs.
import { FsError } from '../../../common/errors.js';
import { ROOT_GFID } from '../../../common/gfid.js';
import type { Iatt } from '../../../common/types.js';
import { FUSE_ROOT_ID } from './abi.js';

export interface Inode {
  readonly nodeid: bigint;
  readonly gfid: string;
  parent: bigint;
  name: string;
  /** Every name of the inode we know (hard links): "parent/name" keys; parent/name is one of them. */
  aliases: Set<string>;
  nlookup: bigint;
  /** mtime and size last handed to the kernel, to notice changes made elsewhere. */
  seen?: string;
  /** The mode last handed to the kernel (set-id bits to clear on an unprivileged write). */
  mode?: number;
  /** Set by our own writes: the next change of mtime/size is ours, not another client's. */
  wroteLocally: boolean;
}

const key = (parent: bigint, name: string) => `${parent}/${name}`;

export class InodeTable {
  private readonly byId = new Map<bigint, Inode>();
  private readonly byGfid = new Map<string, Inode>();
  private readonly dentries = new Map<string, Inode>();
  private next = FUSE_ROOT_ID + 1n;

  constructor() {
    const root: Inode = { nodeid: FUSE_ROOT_ID, gfid: ROOT_GFID, parent: 0n, name: '', aliases: new Set(), nlookup: 1n, wroteLocally: false };
    this.byId.set(root.nodeid, root);
    this.byGfid.set(root.gfid, root);
  }

  get size(): number {
    return this.byId.size;
  }

  get(nodeid: bigint): Inode {
    const n = this.byId.get(nodeid);
    if (!n) throw new FsError('ESTALE', `no inode ${nodeid}`);
    return n;
  }

  tryGet(nodeid: bigint): Inode | undefined {
    return this.byId.get(nodeid);
  }

  /** The node at parent/name as far as we know it. */
  child(parent: bigint, name: string): Inode | undefined {
    return this.dentries.get(key(parent, name));
  }

  path(nodeid: bigint): string {
    if (nodeid === FUSE_ROOT_ID) return '/';
    const parts: string[] = [];
    let n = this.get(nodeid);
    for (let guard = 0; n.nodeid !== FUSE_ROOT_ID; guard++) {
      if (guard > 1_000_000) throw new FsError('ELOOP', `inode ${nodeid} has a parent loop`);
      parts.push(n.name);
      n = this.get(n.parent);
    }
    return `/${parts.reverse().join('/')}`;
  }

  childPath(parent: bigint, name: string): string {
    const p = this.path(parent);
    return p === '/' ? `/${name}` : `${p}/${name}`;
  }

  /** Counts one kernel lookup of parent/name resolving to iatt; returns its node (new or known). */
  link(parent: bigint, name: string, iatt: Iatt): Inode {
    const old = this.dentries.get(key(parent, name));
    let n = this.byGfid.get(iatt.gfid);
    if (!n) {
      n = { nodeid: this.next++, gfid: iatt.gfid, parent, name, aliases: new Set(), nlookup: 0n, wroteLocally: false };
      this.byId.set(n.nodeid, n);
      this.byGfid.set(n.gfid, n);
    } else if (n.nodeid !== FUSE_ROOT_ID) {
      n.parent = parent;
      n.name = name;
    }
    if (old && old !== n) this.drop(key(parent, name));
    this.dentries.set(key(parent, name), n);
    if (n.nodeid !== FUSE_ROOT_ID) n.aliases.add(key(parent, name));
    n.nlookup += 1n;
    return n;
  }

  /** The kernel dropped `count` lookups of nodeid; the node goes with the last one. */
  forget(nodeid: bigint, count: bigint): void {
    const n = this.byId.get(nodeid);
    if (!n || n.nodeid === FUSE_ROOT_ID) return;
    n.nlookup -= count;
    if (n.nlookup > 0n) return;
    this.byId.delete(nodeid);
    if (this.byGfid.get(n.gfid) === n) this.byGfid.delete(n.gfid);
    for (const k of n.aliases) if (this.dentries.get(k) === n) this.dentries.delete(k);
  }

  /** Removes the dentry k; its inode moves to another of its names, if it has one. */
  private drop(k: string): Inode | undefined {
    const n = this.dentries.get(k);
    this.dentries.delete(k);
    if (!n) return undefined;
    n.aliases.delete(k);
    if (key(n.parent, n.name) === k) {
      const other = n.aliases.values().next().value as string | undefined;
      if (other !== undefined) {
        const i = other.indexOf('/');
        n.parent = BigInt(other.slice(0, i));
        n.name = other.slice(i + 1);
      }
    }
    return n;
  }

  /** parent/name is gone (unlink, rmdir). */
  unlinked(parent: bigint, name: string): void {
    this.drop(key(parent, name));
  }

  renamed(oldParent: bigint, oldName: string, newParent: bigint, newName: string): void {
    const n = this.drop(key(oldParent, oldName));
    this.drop(key(newParent, newName));
    if (!n) return;
    n.parent = newParent;
    n.name = newName;
    n.aliases.add(key(newParent, newName));
    this.dentries.set(key(newParent, newName), n);
  }

  /** Two names swapped (RENAME_EXCHANGE). */
  exchanged(aParent: bigint, aName: string, bParent: bigint, bName: string): void {
    const a = this.drop(key(aParent, aName));
    const b = this.drop(key(bParent, bName));
    if (a) { a.parent = bParent; a.name = bName; a.aliases.add(key(bParent, bName)); this.dentries.set(key(bParent, bName), a); }
    if (b) { b.parent = aParent; b.name = aName; b.aliases.add(key(aParent, aName)); this.dentries.set(key(aParent, aName), b); }
  }
}
