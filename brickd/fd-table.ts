// Open files of the brick: a uint64 id (from 1) per FileHandle. An unknown id is EBADF.
import type { FileHandle } from 'node:fs/promises';
import { FsError } from '../common/errors.js';

export interface OpenFile {
  readonly id: number;
  readonly fh: FileHandle;
  readonly host: string;
  readonly path: string;
  readonly gfid: string;
  readonly flags: number;
  /** Lock owners that set locks through this fd; their locks on the file go at release. */
  readonly lockOwners: Set<string>;
}

const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_WRONLY = 1;

export function readable(f: OpenFile): boolean {
  return (f.flags & O_ACCMODE) !== O_WRONLY;
}

export function writable(f: OpenFile): boolean {
  return (f.flags & O_ACCMODE) !== O_RDONLY;
}

export class FdTable {
  private next = 1;
  private readonly open = new Map<number, OpenFile>();

  add(fh: FileHandle, host: string, path: string, gfid: string, flags: number): OpenFile {
    const f: OpenFile = { id: this.next++, fh, host, path, gfid, flags, lockOwners: new Set() };
    this.open.set(f.id, f);
    return f;
  }

  get(id: number): OpenFile {
    const f = this.open.get(Number(id));
    if (!f) throw new FsError('EBADF', `fd ${id} is not open on this brick`);
    return f;
  }

  /** The fd's file, or undefined when it is not open. */
  find(id: number): OpenFile | undefined {
    return this.open.get(Number(id));
  }

  /** Removes the fd from the table and returns it; the caller closes it. */
  take(id: number): OpenFile {
    const f = this.get(id);
    this.open.delete(f.id);
    return f;
  }

  get size(): number {
    return this.open.size;
  }

  async closeAll(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.allSettled(all.map((f) => f.fh.close()));
  }
}
