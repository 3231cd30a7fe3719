// Directory requests: OPENDIR, READDIR, READDIRPLUS, RELEASEDIR, FSYNCDIR. A listing is read once
// per pass (at offset 0) and handed out in offset order; entry i has offset i + 1.
import { FsError } from '../../../common/errors.js';
import { gfidToIno } from '../../../common/gfid.js';
import { S_IFDIR, type Dirent } from '../../../common/types.js';
import { DirentPacker, OP, openOut } from './abi.js';
import { loc } from './ops-entry.js';
import type { OpDef, OpenDir, Request, Session } from './session.js';

async function opendir(s: Session, req: Request) {
  const fh = s.newFh();
  s.dirs.set(fh, { nodeid: req.h.nodeid });
  return openOut(fh, 0);
}

async function listing(s: Session, req: Request, d: OpenDir, offset: number): Promise<Dirent[]> {
  if (!d.entries || offset === 0) d.entries = await s.top.readdirp(req.ctx, loc(s, d.nodeid));
  return d.entries;
}

function dirHandler(plus: boolean) {
  return async (s: Session, req: Request) => {
    const fh = req.body.u64();
    const offset = req.body.n64();
    const size = req.body.u32();
    const d = s.dirs.get(fh);
    if (!d) throw new FsError('EBADF', `no open directory ${fh}`);
    const entries = await listing(s, req, d, offset);
    const packer = new DirentPacker(size, plus);
    const self = s.inodes.get(d.nodeid);
    // Offsets 1 and 2 are '.' and '..'; the kernel counts no lookup for them (nodeid 0 entries).
    const dots: [string, number][] = [['.', 1], ['..', 2]];
    for (const [name, off] of dots) {
      if (offset >= off) continue;
      const parent = self.parent ? s.inodes.tryGet(self.parent) : undefined;
      const ino = name === '.' ? gfidToIno(self.gfid) : parent ? gfidToIno(parent.gfid) : 1n;
      if (!packer.add(name, ino, off, S_IFDIR)) return packer.result();
    }
    for (let i = Math.max(0, offset - 2); i < entries.length; i++) {
      const e = entries[i];
      const off = i + 3;
      if (!plus) {
        if (!packer.add(e.name, e.iatt.ino, off, e.iatt.mode)) break;
        continue;
      }
      const known = s.inodes.child(d.nodeid, e.name);
      if (known && known.gfid !== e.iatt.gfid) s.invalEntry(d.nodeid, e.name);
      // The kernel counts a lookup for each record it gets: link only what fits.
      if (!packer.fits(e.name)) break;
      const n = s.inodes.link(d.nodeid, e.name, e.iatt);
      s.saw(n, e.iatt);
      packer.add(e.name, e.iatt.ino, off, e.iatt.mode, { nodeid: n.nodeid, attr: e.iatt, valid: s.opts.valid });
    }
    return packer.result();
  };
}

async function releasedir(s: Session, req: Request) {
  s.dirs.delete(req.body.u64());
}

async function fsyncdir() {
  // Directory changes are synchronous on the bricks.
}

export const DIR_OPS: [number, OpDef][] = [
  [OP.OPENDIR, { name: 'OPENDIR', handler: opendir }],
  [OP.READDIR, { name: 'READDIR', handler: dirHandler(false) }],
  [OP.READDIRPLUS, { name: 'READDIRPLUS', handler: dirHandler(true) }],
  [OP.RELEASEDIR, { name: 'RELEASEDIR', handler: releasedir }],
  [OP.FSYNCDIR, { name: 'FSYNCDIR', handler: fsyncdir }],
];
