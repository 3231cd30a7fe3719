// protocol/client: one gRPC channel to one brick. Finds the brick's port through the owning node's
// gfsd (Portmap, as GlusterFS's client handshake asks glusterd) unless the spec names it, presents
// the volume's credentials and the caller's ids on every call, and reports child-up/child-down.
import * as grpc from '@grpc/grpc-js';
import { FsError } from '../../../../common/errors.js';
import { PassThrough, type Xlator } from '../../../../common/fops.js';
import type { Logger } from '../../../../common/log.js';
import { parseOptions, type OptionDef } from '../../../../common/options.js';
import { brickService, mgmtService, CHANNEL_OPTIONS } from '../../../../common/proto.js';
import {
  ctxToMetadata, fromGrpcError, iattFromWire, setattrToWire, type WireIatt,
} from '../../../../common/wire.js';
import {
  newFd, type CreateArgs, type Ctx, type Dirent, type Fd, type Flock, type Iatt, type LockCmd, type Loc,
  type LookupReply, type SetattrArgs, type Statfs,
} from '../../../../common/types.js';
import type { XlatorContext } from '../../registry.js';


export const OPTIONS: readonly OptionDef[] = [
  { key: 'remote-host', type: 'string', description: 'address of the node serving the brick' },
  { key: 'remote-subvolume', type: 'string', description: 'the brick directory on that node' },
  { key: 'remote-port', type: 'int', default: 0, min: 0, max: 65535, description: 'brick port; 0 asks the node\'s gfsd (portmap)' },
  { key: 'remote-mgmt-port', type: 'int', default: 24007, min: 1, max: 65535, description: 'port of the node\'s gfsd, for portmap' },
  { key: 'call-timeout', type: 'time', default: 1800, min: 1, description: 'longest a single call may take (seconds)' },
];

interface Options {
  'remote-host': string; 'remote-subvolume': string; 'remote-port': number; 'remote-mgmt-port': number; 'call-timeout': number;
}

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: any) => void) => void;

/** The brick's own fd number for an open file, kept in Fd.ctx under this translator. */
interface RemoteFd { id: number }

function toCreateArgs(a: CreateArgs) {
  return { mode: a.mode, umask: a.umask, gfid: a.gfid, xattrs: a.xattrs ?? {} };
}

function toWireFlock(l: Flock) {
  return { type: l.type, start: Number(l.start), len: Number(l.len), pid: l.pid, owner: l.owner };
}

export class ProtocolClient extends PassThrough implements Xlator {
  private readonly opts: Options;
  private client?: grpc.Client;
  private connecting?: Promise<grpc.Client>;
  private up = false;
  private readonly log: Logger;

  constructor(name: string, options: Record<string, unknown>, private readonly xctx: XlatorContext) {
    super(name, 'protocol/client', []);
    this.opts = parseOptions<Options>(OPTIONS, options, `translator ${name}`);
    if (!this.opts['remote-host']) throw new FsError('EINVAL', `translator ${name}: option remote-host is required`);
    if (!this.opts['remote-subvolume']) throw new FsError('EINVAL', `translator ${name}: option remote-subvolume is required`);
    this.log = xctx.log.child({ xl: name });
  }

  get brick(): string {
    return `${this.opts['remote-host']}:${this.opts['remote-subvolume']}`;
  }

  get isUp(): boolean {
    return this.up;
  }

  override async init(): Promise<void> {
    try {
      const res = await this.call<{ volume_id: string }>('Ping', {}, this.xctx.rootCtx);
      if (res.volume_id && res.volume_id !== this.xctx.volumeId) throw new FsError('EACCES', `brick ${this.brick} serves another volume`);
      this.setUp(true);
    } catch (e) {
      const fe = e as FsError;
      if (fe.errno === 'EACCES') throw new FsError('EACCES', `brick ${this.brick} refused the volume's credentials: ${fe.message}`);
      this.log.warn({ err: fe.message }, 'brick not reachable at mount; will retry on use');
    }
  }

  override async fini(): Promise<void> {
    this.client?.close();
    this.client = undefined;
  }

  private setUp(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    this.log.info({ brick: this.brick }, up ? 'brick connected' : 'brick disconnected');
    this.parent?.notify(up ? 'child-up' : 'child-down', this);
  }

  private async portmap(): Promise<number> {
    if (this.opts['remote-port']) return this.opts['remote-port'];
    const Mgmt = mgmtService();
    const mgmt = new Mgmt(`${this.opts['remote-host']}:${this.opts['remote-mgmt-port']}`, grpc.credentials.createInsecure());
    try {
      return await new Promise<number>((resolve, reject) => {
        (mgmt as unknown as Record<string, Unary>).Portmap({ brick_path: this.opts['remote-subvolume'] }, new grpc.Metadata(),
          { deadline: Date.now() + 5000 }, (err, res) => {
            if (err) reject(fromGrpcError(err, `portmap of ${this.brick}`));
            else if (!res.port) reject(new FsError('ENOTCONN', `brick ${this.brick} is not running`));
            else resolve(res.port);
          });
      });
    } finally {
      mgmt.close();
    }
  }

  private connect(): Promise<grpc.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      try {
        const port = await this.portmap();
        const Brick = brickService();
        this.client = new Brick(`${this.opts['remote-host']}:${port}`, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
        return this.client;
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  /** One unary call. A brick that cannot be reached drops the channel so the next call asks portmap again. */
  private async call<T = any>(method: string, req: unknown, ctx: Ctx): Promise<T> {
    let client: grpc.Client;
    try {
      client = await this.connect();
    } catch (e) {
      this.setUp(false);
      throw e instanceof FsError ? new FsError(e.errno === 'ENOENT' ? 'ENOTCONN' : e.errno, e.message) : e;
    }
    const md = ctxToMetadata(ctx, this.xctx.volumeId, this.xctx.secret);
    return new Promise<T>((resolve, reject) => {
      const fn = (client as unknown as Record<string, Unary>)[method];
      fn.call(client, req, md, { deadline: Date.now() + this.opts['call-timeout'] * 1000 }, (err, res) => {
        if (!err) {
          this.setUp(true);
          resolve(res as T);
          return;
        }
        if (err.code === grpc.status.UNAVAILABLE) {
          this.client?.close();
          this.client = undefined;
          this.setUp(false);
        }
        reject(fromGrpcError(err, `${method} on ${this.brick}`));
      });
    });
  }

  private remoteFd(fd: Fd): number {
    const r = fd.ctx.get(this) as RemoteFd | undefined;
    if (!r) throw new FsError('EBADF', `${this.name}: fd not open on this brick`);
    return r.id;
  }

  private wrapFd(loc: Loc, flags: number, res: { fd: number; iatt: WireIatt }): Fd {
    const fd = newFd(loc, flags, res.iatt.gfid);
    fd.ctx.set(this, { id: res.fd } satisfies RemoteFd);
    return fd;
  }

  private static wloc(loc: Loc) {
    return { path: loc.path, gfid: loc.gfid ?? '' };
  }

  override async lookup(ctx: Ctx, loc: Loc, xattrs: string[] = []): Promise<LookupReply> {
    const r = await this.call('Lookup', { loc: ProtocolClient.wloc(loc), xattrs }, ctx);
    return { iatt: iattFromWire(r.iatt), xattrs: r.xattrs ?? {} };
  }

  override async stat(ctx: Ctx, loc: Loc): Promise<Iatt> {
    return iattFromWire((await this.call('Stat', { loc: ProtocolClient.wloc(loc) }, ctx)).iatt);
  }

  override async fstat(ctx: Ctx, fd: Fd): Promise<Iatt> {
    return iattFromWire((await this.call('Fstat', { fd: this.remoteFd(fd) }, ctx)).iatt);
  }

  override async readdirp(ctx: Ctx, loc: Loc, xattrs: string[] = []): Promise<Dirent[]> {
    const r = await this.call('Readdirp', { loc: ProtocolClient.wloc(loc), xattrs }, ctx);
    return (r.entries as { name: string; iatt: WireIatt; xattrs: Record<string, Buffer> }[])
      .map((e) => ({ name: e.name, iatt: iattFromWire(e.iatt), xattrs: e.xattrs ?? {} }));
  }

  override async mkdir(ctx: Ctx, loc: Loc, args: CreateArgs): Promise<Iatt> {
    return iattFromWire((await this.call('Mkdir', { loc: ProtocolClient.wloc(loc), args: toCreateArgs(args) }, ctx)).iatt);
  }

  override async create(ctx: Ctx, loc: Loc, flags: number, args: CreateArgs): Promise<{ fd: Fd; iatt: Iatt }> {
    const r = await this.call('Create', { loc: ProtocolClient.wloc(loc), flags, args: toCreateArgs(args) }, ctx);
    return { fd: this.wrapFd(loc, flags, r), iatt: iattFromWire(r.iatt) };
  }

  override async open(ctx: Ctx, loc: Loc, flags: number): Promise<Fd> {
    return this.wrapFd(loc, flags, await this.call('Open', { loc: ProtocolClient.wloc(loc), flags }, ctx));
  }

  override async read(ctx: Ctx, fd: Fd, offset: number, size: number): Promise<Buffer> {
    return (await this.call('Read', { fd: this.remoteFd(fd), offset, size }, ctx)).data;
  }

  override async write(ctx: Ctx, fd: Fd, offset: number, data: Buffer): Promise<number> {
    return (await this.call('Write', { fd: this.remoteFd(fd), offset, data }, ctx)).written;
  }

  override async truncate(ctx: Ctx, loc: Loc, size: number): Promise<Iatt> {
    return iattFromWire((await this.call('Truncate', { loc: ProtocolClient.wloc(loc), size }, ctx)).iatt);
  }

  override async ftruncate(ctx: Ctx, fd: Fd, size: number): Promise<Iatt> {
    return iattFromWire((await this.call('Ftruncate', { fd: this.remoteFd(fd), size }, ctx)).iatt);
  }

  override async flush(ctx: Ctx, fd: Fd): Promise<void> {
    await this.call('Flush', { fd: this.remoteFd(fd) }, ctx);
  }

  override async fsync(ctx: Ctx, fd: Fd, datasync: boolean): Promise<void> {
    await this.call('Fsync', { fd: this.remoteFd(fd), datasync }, ctx);
  }

  override async release(ctx: Ctx, fd: Fd): Promise<void> {
    const r = fd.ctx.get(this) as RemoteFd | undefined;
    if (!r) return;
    fd.ctx.delete(this);
    await this.call('Release', { fd: r.id }, ctx);
  }

  override async unlink(ctx: Ctx, loc: Loc): Promise<void> {
    await this.call('Unlink', { loc: ProtocolClient.wloc(loc) }, ctx);
  }

  override async rmdir(ctx: Ctx, loc: Loc): Promise<void> {
    await this.call('Rmdir', { loc: ProtocolClient.wloc(loc) }, ctx);
  }

  override async rename(ctx: Ctx, from: Loc, to: Loc): Promise<void> {
    await this.call('Rename', { from: ProtocolClient.wloc(from), to: ProtocolClient.wloc(to) }, ctx);
  }

  override async link(ctx: Ctx, from: Loc, to: Loc): Promise<Iatt> {
    return iattFromWire((await this.call('Link', { from: ProtocolClient.wloc(from), to: ProtocolClient.wloc(to) }, ctx)).iatt);
  }

  override async symlink(ctx: Ctx, target: string, loc: Loc, args: CreateArgs): Promise<Iatt> {
    return iattFromWire((await this.call('Symlink', { target, loc: ProtocolClient.wloc(loc), args: toCreateArgs(args) }, ctx)).iatt);
  }

  override async readlink(ctx: Ctx, loc: Loc): Promise<string> {
    return (await this.call('Readlink', { loc: ProtocolClient.wloc(loc) }, ctx)).target;
  }

  override async setattr(ctx: Ctx, loc: Loc, attrs: SetattrArgs): Promise<Iatt> {
    return iattFromWire((await this.call('Setattr', { loc: ProtocolClient.wloc(loc), ...setattrToWire(attrs) }, ctx)).iatt);
  }

  override async statfs(ctx: Ctx, loc: Loc): Promise<Statfs> {
    const r = await this.call('Statfs', { loc: ProtocolClient.wloc(loc) }, ctx);
    return {
      bsize: r.bsize, frsize: r.frsize, blocks: BigInt(r.blocks), bfree: BigInt(r.bfree), bavail: BigInt(r.bavail),
      files: BigInt(r.files), ffree: BigInt(r.ffree), namemax: r.namemax,
    };
  }

  override async getxattr(ctx: Ctx, loc: Loc, name: string): Promise<Buffer> {
    return (await this.call('Getxattr', { loc: ProtocolClient.wloc(loc), name }, ctx)).value;
  }

  override async setxattr(ctx: Ctx, loc: Loc, name: string, value: Buffer, flags: number): Promise<void> {
    await this.call('Setxattr', { loc: ProtocolClient.wloc(loc), name, value, flags }, ctx);
  }

  override async listxattr(ctx: Ctx, loc: Loc): Promise<string[]> {
    return (await this.call('Listxattr', { loc: ProtocolClient.wloc(loc) }, ctx)).names;
  }

  override async removexattr(ctx: Ctx, loc: Loc, name: string): Promise<void> {
    await this.call('Removexattr', { loc: ProtocolClient.wloc(loc), name }, ctx);
  }

  override async xattrop(ctx: Ctx, loc: Loc, name: string, add: Buffer): Promise<Buffer> {
    return (await this.call('Xattrop', { loc: ProtocolClient.wloc(loc), name, add }, ctx)).value;
  }

  override async lk(ctx: Ctx, fd: Fd, cmd: LockCmd, lock: Flock): Promise<Flock> {
    const r = await this.call('Lk', { fd: this.remoteFd(fd), cmd, lock: toWireFlock(lock) }, ctx);
    const l = r.lock;
    return { type: l.type, start: BigInt(l.start), len: BigInt(l.len), pid: l.pid, owner: l.owner };
  }
}

export function create(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext): Xlator {
  if (children.length) throw new FsError('EINVAL', `translator ${name}: protocol/client takes no children`);
  return new ProtocolClient(name, options, xctx);
}
