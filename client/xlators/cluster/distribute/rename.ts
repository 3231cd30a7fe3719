// Renames and hard links of files without moving data: the data stays on its child; when the new
// name hashes to another child, a linkto file there points at the data (GlusterFS's dht_rename).
import { toErrno } from '../../../../common/errors.js';
import { ROOT_CTX, type Ctx, type Iatt, type Loc } from '../../../../common/types.js';
import type { Distribute, Located } from './index.js';

async function quietly(p: Promise<unknown>): Promise<void> {
  await p.catch(() => {});
}

async function locateOrNull(dht: Distribute, ctx: Ctx, loc: Loc): Promise<Located | null> {
  try {
    return await dht.locate(ctx, loc);
  } catch (e) {
    if (toErrno(e) === 'ENOENT') return null;
    throw e;
  }
}

export async function renameFile(dht: Distribute, ctx: Ctx, from: Loc, to: Loc, src: Extract<Located, { dir: false }>): Promise<void> {
  const S = src.subvol;
  dht.forget(to.path);
  const dst = await locateOrNull(dht, ctx, to);
  const HS = await dht.hashedFor(ctx, from.path);
  const HD = await dht.hashedFor(ctx, to.path);
  // The rename on the data's child also replaces a target there, or fails as POSIX says (EISDIR...).
  await dht.children[S].rename(ctx, from, to);
  // The old target's data on another child is replaced: remove it.
  if (dst && !dst.dir && dst.subvol !== S) await quietly(dht.children[dst.subvol].unlink(ROOT_CTX, to));
  // The new name's hashed child must lead to the data.
  if (HD !== S) {
    await quietly(dht.children[HD].unlink(ROOT_CTX, to)); // an old linkto or replaced data
    await dht.createLinkto(to, HD, S, src.iatt.gfid);
  }
  // The old name's linkto, if there was one, is gone with the old name.
  if (HS !== S) await quietly(dht.children[HS].unlink(ROOT_CTX, from));
  dht.forget(from.path);
  dht.remember(to.path, { dir: false, subvol: S, iatt: src.iatt });
}

export async function linkFile(dht: Distribute, ctx: Ctx, from: Loc, to: Loc): Promise<Iatt> {
  return dht.onFile(ctx, from, async (c, S) => {
    const iatt = await c.link(ctx, from, to);
    const HD = await dht.hashedFor(ctx, to.path);
    if (HD !== S) {
      try {
        await dht.createLinkto(to, HD, S, iatt.gfid);
      } catch (e) {
        await quietly(c.unlink(ROOT_CTX, to));
        throw e;
      }
    }
    dht.remember(to.path, { dir: false, subvol: S, iatt });
    return iatt;
  });
}
