// gfids: the UUID every inode carries on every brick that holds it. FUSE inode numbers derive from it.
import { randomUUID } from 'node:crypto';

export const ROOT_GFID = '00000000-0000-0000-0000-000000000001';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function newGfid(): string {
  return randomUUID();
}

export function isGfid(s: string): boolean {
  return UUID_RE.test(s);
}

export function gfidToBytes(gfid: string): Buffer {
  return Buffer.from(gfid.replace(/-/g, ''), 'hex');
}

export function gfidFromBytes(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The inode number FUSE sees: the root is 1; others are the gfid's last 64 bits (as GlusterFS does). */
export function gfidToIno(gfid: string): bigint {
  if (gfid === ROOT_GFID) return 1n;
  const ino = gfidToBytes(gfid).readBigUInt64BE(8);
  return ino === 0n || ino === 1n ? ino + 2n : ino;
}
