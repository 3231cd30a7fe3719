// performance/setattr-behind against the in-memory translator: what reaches the child, when, and
// what the caller is told.
import test from 'ava';
import { FsError } from '../common/errors.js';
import { PassThrough, type Xlator } from '../common/fops.js';
import { newGfid } from '../common/gfid.js';
import { ROOT_CTX, S_IFREG, type Ctx, type Loc, type SetattrArgs } from '../common/types.js';
import { SetattrBehind } from '../client/xlators/performance/setattr-behind/index.js';
import { WriteBehind } from '../client/xlators/performance/write-behind/index.js';
import { MemXlator } from './support/mem-xlator.js';

const c = ROOT_CTX;
const args = () => ({ mode: 0o600, umask: 0, gfid: newGfid() });

/** Records every setattr and write the child sees, in order. */
class Recorder extends PassThrough {
  readonly seen: string[] = [];
  failSetattr?: FsError;
  constructor(child: Xlator) { super('rec', 'test/recorder', [child]); }
  override async setattr(ctx: Ctx, loc: Loc, attrs: SetattrArgs) {
    this.seen.push(`setattr ${loc.path} ${Object.keys(attrs).sort().join(',')}`);
    if (this.failSetattr) throw this.failSetattr;
    return this.children[0].setattr(ctx, loc, attrs);
  }
  override async write(ctx: Ctx, fd: Parameters<Xlator['write']>[1], offset: number, data: Buffer) {
    this.seen.push(`write ${fd.loc.path} ${offset}+${data.length}`);
    return this.children[0].write(ctx, fd, offset, data);
  }
}

function stack() {
  const mem = new MemXlator('mem');
  const rec = new Recorder(mem);
  const sb = new SetattrBehind('sb', {}, [new WriteBehind('wb', {}, [rec])]);
  return { mem, rec, sb };
}

test('tar\'s sequence: utimes, chown and chmod of an open file reach the child as one setattr after the data, at close', async (t) => {
  const { mem, rec, sb } = stack();
  const { fd } = await sb.create(c, { path: '/f' }, 1, args());
  await sb.write(c, fd, 0, Buffer.alloc(8704, 1));
  await sb.write(c, fd, 8704, Buffer.alloc(5632, 2));
  const a1 = await sb.setattr(c, { path: '/f', gfid: fd.gfid }, { mtime: 1_700_000_000_000_000_000n });
  t.is(a1.mtime, 1_700_000_000_000_000_000n);
  t.is(a1.size, 14336n, 'the answer counts the data written behind');
  const a2 = await sb.setattr(c, { path: '/f', gfid: fd.gfid }, { uid: 1000, gid: 1000 });
  const a3 = await sb.setattr(c, { path: '/f', gfid: fd.gfid }, { mode: 0o4755 });
  t.deepEqual([a2.uid, a2.gid], [1000, 1000]);
  t.is(a3.mode, S_IFREG | 0o4755);
  t.is(a3.mtime, 1_700_000_000_000_000_000n);
  t.false(rec.seen.some((s) => s.startsWith('setattr')), 'nothing sent before close');
  t.is(sb.heldCount, 1);
  await sb.flush(c, fd);
  t.deepEqual(rec.seen.filter((s) => s.startsWith('setattr')), ['setattr /f gid,mode,mtime,uid']);
  t.true(rec.seen.indexOf('setattr /f gid,mode,mtime,uid') > rec.seen.findIndex((s) => s.startsWith('write')), 'data first, then the attributes');
  await sb.release(c, fd);
  const st = await mem.stat(c, { path: '/f' });
  t.deepEqual([st.uid, st.gid, st.mode, st.mtime, st.size], [1000, 1000, S_IFREG | 0o4755, 1_700_000_000_000_000_000n, 14336n]);
});

test('a held change is sent before anything that could observe it, and a file not open passes straight through', async (t) => {
  const { rec, sb } = stack();
  const { fd } = await sb.create(c, { path: '/g' }, 1, args());
  await sb.setattr(c, { path: '/g', gfid: fd.gfid }, { mode: 0o640 });
  t.is(rec.seen.length, 0);
  t.is((await sb.stat(c, { path: '/g', gfid: fd.gfid })).mode, S_IFREG | 0o640);
  t.deepEqual(rec.seen, ['setattr /g mode']);
  await sb.release(c, fd);
  await sb.setattr(c, { path: '/g' }, { mode: 0o600 });
  t.deepEqual(rec.seen, ['setattr /g mode', 'setattr /g mode'], 'closed file: at once');
  // A size change is never held.
  const o = await sb.open(c, { path: '/g' }, 1);
  await sb.setattr(c, { path: '/g', gfid: o.gfid }, { size: 0n });
  t.is(rec.seen.length, 3);
  await sb.release(c, o);
});

test('a failure of the held setattr is reported by the close', async (t) => {
  const { rec, sb } = stack();
  const { fd } = await sb.create(c, { path: '/h' }, 1, args());
  await sb.setattr(c, { path: '/h', gfid: fd.gfid }, { uid: 5 });
  rec.failSetattr = new FsError('EROFS', 'read-only brick');
  await t.throwsAsync(sb.flush(c, fd), { message: /EROFS/ });
  rec.failSetattr = undefined;
  await sb.flush(c, fd);
  await sb.release(c, fd);
  t.is(sb.heldCount, 0);
});

test('performance.setattr-behind off passes every setattr through', async (t) => {
  const mem = new MemXlator('mem');
  const rec = new Recorder(mem);
  const sb = new SetattrBehind('sb', { enable: false }, [rec]);
  const { fd } = await sb.create(c, { path: '/k' }, 1, args());
  await sb.setattr(c, { path: '/k', gfid: fd.gfid }, { mode: 0o700 });
  t.deepEqual(rec.seen, ['setattr /k mode']);
  await sb.release(c, fd);
});
