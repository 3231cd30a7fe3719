// The kernel bridge's codec and inode table without a kernel: struct layouts against linux/fuse.h
// offsets, dirent packing, and paths through renames, hard links and forgets.
import test from 'ava';
import { ATTR_SIZE, DirentPacker, ENTRY_OUT_SIZE, Reader, attrOut, entryOut, initOut, readInHeader } from '../client/bridge/kernel/abi.js';
import { InodeTable } from '../client/bridge/kernel/inodes.js';
import type { Iatt } from '../common/types.js';

const iatt = (gfid: string, over: Partial<Iatt> = {}): Iatt => ({
  gfid, ino: 42n, mode: 0o100644, nlink: 1, uid: 65534, gid: 100, rdev: 0, size: 1234n, blocks: 8n, blksize: 4096,
  atime: 1234567890123456789n, mtime: -1500000000n, ctime: 5n, ...over,
});

test('fuse_attr, entry_out and attr_out sit at the offsets of linux/fuse.h', (t) => {
  t.is(ATTR_SIZE, 88);
  t.is(ENTRY_OUT_SIZE, 128);
  const e = entryOut(7n, iatt('g'), { entry: 1.5, attr: 2 });
  t.is(e.readBigUInt64LE(0), 7n);
  t.is(e.readBigUInt64LE(16), 1n);
  t.is(e.readUInt32LE(32), 500_000_000);
  t.is(e.readBigUInt64LE(24), 2n);
  const a = 40;
  t.is(e.readBigUInt64LE(a), 42n);
  t.is(e.readBigUInt64LE(a + 8), 1234n);
  t.is(e.readBigInt64LE(a + 24), 1234567890n);
  t.is(e.readUInt32LE(a + 48), 123456789);
  t.is(e.readBigInt64LE(a + 32), -2n, 'negative times: floor seconds');
  t.is(e.readUInt32LE(a + 52), 500_000_000);
  t.is(e.readUInt32LE(a + 60), 0o100644);
  t.is(e.readUInt32LE(a + 68), 65534);
  t.is(e.readUInt32LE(a + 72), 100);
  t.is(attrOut(iatt('g'), 1).length, 104);
  const init = initOut({ minor: 31, maxReadahead: 1 << 20, flags: 0x400000, maxBackground: 64, congestionThreshold: 48, maxWrite: 1 << 20, timeGran: 1, maxPages: 256 });
  t.is(init.length, 64);
  t.is(init.readUInt32LE(20), 1 << 20);
  t.is(init.readUInt16LE(28), 256);
});

test('the request header and NUL-terminated names decode', (t) => {
  const b = Buffer.alloc(40 + 8);
  b.writeUInt32LE(48, 0);
  b.writeUInt32LE(1, 4);
  b.writeBigUInt64LE(99n, 8);
  b.writeBigUInt64LE(1n, 16);
  b.writeUInt32LE(65534, 24);
  b.writeUInt32LE(65533, 28);
  b.writeUInt32LE(4242, 32);
  b.write('a\0bc\0', 40);
  const h = readInHeader(b);
  t.deepEqual([h.len, h.opcode, h.unique, h.nodeid, h.uid, h.gid, h.pid], [48, 1, 99n, 1n, 65534, 65533, 4242]);
  const r = new Reader(b.subarray(40));
  t.is(r.str(), 'a');
  t.is(r.str(), 'bc');
});

test('dirents are 8-byte aligned and never overflow the size the kernel asked for', (t) => {
  const p = new DirentPacker(100, false);
  t.true(p.add('abc', 5n, 1, 0o040755));
  t.is(p.result().length, 32);
  t.is(p.result().readUInt32LE(20), 4, 'DT_DIR');
  t.true(p.add('x'.repeat(40), 6n, 2, 0o100644));
  t.false(p.fits('more'));
  t.false(p.add('more', 7n, 3, 0o100644));
  t.is(p.result().length, 32 + 64);
  const plus = new DirentPacker(4096, true);
  t.true(plus.add('f', 9n, 3, 0o100644, { nodeid: 12n, attr: iatt('g'), valid: { entry: 1, attr: 1 } }));
  t.is(plus.result().length, 128 + 32);
  t.is(plus.result().readBigUInt64LE(0), 12n);
});

test('inode paths follow renames; hard links survive the unlink of the name in use; forget drops', (t) => {
  const it = new InodeTable();
  const d = it.link(1n, 'd', iatt('gd', { mode: 0o040755 }));
  const f = it.link(d.nodeid, 'f', iatt('gf'));
  t.is(it.path(f.nodeid), '/d/f');
  it.renamed(1n, 'd', 1n, 'e');
  t.is(it.path(f.nodeid), '/e/f', 'children follow a renamed directory');
  const again = it.link(1n, 'hl', iatt('gf'));
  t.is(again.nodeid, f.nodeid, 'a hard link is the same inode');
  t.is(it.path(f.nodeid), '/hl');
  it.unlinked(1n, 'hl');
  t.is(it.path(f.nodeid), '/e/f', 'the other name takes over');
  it.forget(f.nodeid, 2n);
  t.throws(() => it.get(f.nodeid), { message: /ESTALE/ });
  t.is(it.child(d.nodeid, 'f'), undefined);
});
