// Extended attributes of brick files, never following a final symlink (@napi-rs/xattr uses the
// l*xattr calls). Its failures carry "(os error N)" in the message; they become FsErrors here.
import * as x from '@napi-rs/xattr';
import { FsError, errnoName } from '../common/errors.js';

function wrap(err: unknown, what: string, path: string): FsError {
  const msg = (err as Error)?.message ?? String(err);
  const m = /\(os error (\d+)\)/.exec(msg);
  const errno = m ? errnoName(Number(m[1])) : 'EIO';
  return new FsError(errno, `${what} ${path}: ${msg}`, { cause: err });
}

/** The value, or null when the name is absent. (A missing file also reads as null: lstat first.) */
export async function xget(path: string, name: string): Promise<Buffer | null> {
  try {
    return await x.getAttribute(path, name);
  } catch (err) {
    throw wrap(err, `getxattr ${name}`, path);
  }
}

/** xget on the calling thread (for a worker thread: never on the event loop). */
export function xgetSync(path: string, name: string): Buffer | null {
  try {
    return x.getAttributeSync(path, name);
  } catch (err) {
    throw wrap(err, `getxattr ${name}`, path);
  }
}

/** xset on the calling thread (for a worker thread: never on the event loop). */
export function xsetSync(path: string, name: string, value: Buffer): void {
  try {
    x.setAttributeSync(path, name, value);
  } catch (err) {
    throw wrap(err, `setxattr ${name}`, path);
  }
}

export async function xset(path: string, name: string, value: Buffer): Promise<void> {
  try {
    await x.setAttribute(path, name, value);
  } catch (err) {
    throw wrap(err, `setxattr ${name}`, path);
  }
}

export async function xlist(path: string): Promise<string[]> {
  try {
    return await x.listAttributes(path);
  } catch (err) {
    throw wrap(err, 'listxattr', path);
  }
}

/** xlist on the calling thread (for a worker thread: never on the event loop). */
export function xlistSync(path: string): string[] {
  try {
    return x.listAttributesSync(path);
  } catch (err) {
    throw wrap(err, 'listxattr', path);
  }
}

export async function xremove(path: string, name: string): Promise<void> {
  try {
    await x.removeAttribute(path, name);
  } catch (err) {
    throw wrap(err, `removexattr ${name}`, path);
  }
}
