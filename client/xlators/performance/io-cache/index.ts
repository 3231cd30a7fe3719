// performance/io-cache: a bounded (cache-size bytes), timed (cache-timeout) lru-cache of data read,
// keyed by file, its generation and the range read. Any change this client makes to a file
// (write, truncate, allocation, setattr) starts a new generation, so nothing cached before it
// is served again; other clients' writes show as a brick tells of them (upcall), else after at most
// cache-timeout seconds.
import { LRUCache } from 'lru-cache';
import { FsError } from '../../../../common/errors.js';
import { PassThrough, type Xlator, type XlatorEvent } from '../../../../common/fops.js';
import { parseOptions, type OptionDef } from '../../../../common/options.js';
import { O_TRUNC, type Ctx, type Fd, type Iatt, type Loc, type SetattrArgs } from '../../../../common/types.js';
import type { XlatorContext } from '../../registry.js';

export const OPTIONS: readonly OptionDef[] = [
  { key: 'enable', type: 'bool', default: true, description: 'cache data read' },
  { key: 'cache-size', type: 'size', default: 32 * 1024 * 1024, min: 1024 * 1024, max: 64 * 1024 ** 3, description: 'bytes of data cached at most' },
  { key: 'cache-timeout', type: 'time', default: 1, min: 0, max: 60, description: 'seconds cached data stays valid' },
  { key: 'max-file-size', type: 'size', default: 4 * 1024 * 1024, min: 0, description: 'reads larger than this are not cached' },
];

interface Options { enable: boolean; 'cache-size': number; 'cache-timeout': number; 'max-file-size': number }

export class IoCache extends PassThrough implements Xlator {
  readonly opts: Options;
  private readonly data: LRUCache<string, Buffer>;
  /** Generation per gfid; a change bumps it. Absent is `floor`, which moves past every generation
   *  handed out whenever one is evicted, so an evicted generation is never reused. */
  private readonly gens = new LRUCache<string, number>({ max: 100_000, dispose: (_v, _k, why) => { if (why === 'evict') this.floor = this.clock++; } });
  private clock = 1;
  private floor = 0;
  hits = 0;

  constructor(name: string, options: Record<string, unknown>, children: Xlator[], _xctx?: XlatorContext) {
    super(name, 'performance/io-cache', children);
    if (children.length !== 1) throw new FsError('EINVAL', `translator ${name}: io-cache takes exactly one child`);
    this.opts = parseOptions<Options>(OPTIONS, options, `translator ${name}`);
    this.data = new LRUCache({
      maxSize: this.opts['cache-size'], sizeCalculation: (b) => Math.max(1, b.length),
      ttl: Math.max(1, this.opts['cache-timeout'] * 1000),
    });
  }

  private get child(): Xlator { return this.children[0]; }

  private gen(gfid: string): number {
    return this.gens.get(gfid) ?? this.floor;
  }

  private bump(gfid: string | undefined): void {
    if (gfid) this.gens.set(gfid, this.clock++);
    else this.data.clear(); // a change by path of an unknown file: drop everything
  }

  override async read(ctx: Ctx, fd: Fd, offset: number, size: number): Promise<Buffer> {
    if (!this.opts.enable || this.opts['cache-timeout'] === 0 || size > this.opts['max-file-size']) return this.child.read(ctx, fd, offset, size);
    const gen = this.gen(fd.gfid);
    const key = `${fd.gfid}:${gen}:${offset}:${size}`;
    const hit = this.data.get(key);
    if (hit) {
      this.hits++;
      return Buffer.from(hit);
    }
    const got = await this.child.read(ctx, fd, offset, size);
    // Kept as it is, no copy: nothing above writes into a buffer a read returned.
    if (this.gen(fd.gfid) === gen) this.data.set(key, got);
    return got;
  }

  private async changing<T>(gfid: string | undefined, run: () => Promise<T>): Promise<T> {
    this.bump(gfid);
    try {
      return await run();
    } finally {
      this.bump(gfid);
    }
  }

  override write(ctx: Ctx, fd: Fd, offset: number, data: Buffer) { return this.changing(fd.gfid, () => this.child.write(ctx, fd, offset, data)); }
  override ftruncate(ctx: Ctx, fd: Fd, size: number): Promise<Iatt> { return this.changing(fd.gfid, () => this.child.ftruncate(ctx, fd, size)); }
  override fallocate(ctx: Ctx, fd: Fd, mode: number, offset: number, len: number) { return this.changing(fd.gfid, () => this.child.fallocate(ctx, fd, mode, offset, len)); }
  override truncate(ctx: Ctx, loc: Loc, size: number): Promise<Iatt> { return this.changing(loc.gfid, () => this.child.truncate(ctx, loc, size)); }
  override setattr(ctx: Ctx, loc: Loc, attrs: SetattrArgs): Promise<Iatt> {
    if (attrs.size === undefined) return this.child.setattr(ctx, loc, attrs);
    return this.changing(loc.gfid, () => this.child.setattr(ctx, loc, attrs));
  }
  override open(ctx: Ctx, loc: Loc, flags: number): Promise<Fd> {
    if (!(flags & O_TRUNC)) return this.child.open(ctx, loc, flags);
    return this.changing(loc.gfid, () => this.child.open(ctx, loc, flags)).then((fd) => { this.bump(fd.gfid); return fd; });
  }
}

export function create(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext): Xlator {
  return new IoCache(name, options, children, xctx);
}
