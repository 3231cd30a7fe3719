// protocol/client: one gRPC channel to one brick. Finds the brick's port through the owning node's
// gfsd (Portmap, as GlusterFS's client handshake asks glusterd) unless the spec names it, presents
// the volume's credentials and the caller's ids on every call, and reports child-up/child-down.
import * as grpc from '@grpc/grpc-js';
import { FsError, isErrno, type Errno } from '../../../../common/errors.js';
import { PassThrough, type UpcallChange, type Xlator } from '../../../../common/fops.js';
import type { Logger } from '../../../../common/log.js';
import { parseOptions, type OptionDef } from '../../../../common/options.js';
import { bulkBuffers } from '../../../../common/buffers.js';
import { brickService, encodeSession, mgmtService, SessionOutbox, CHANNEL_OPTIONS } from '../../../../common/proto.js';
import { profileAdd, profileEnabled } from '../../../../common/profile.js';
import {
  MD, ctxToMetadata, fromGrpcError, iattFromWire, setattrToWire, type WireIatt,
} from '../../../../common/wire.js';
import {
  newFd, O_TRUNC, OPEN_IATT, OPEN_LOCKED, OPEN_XATTRS, type CreateArgs, type Ctx, type Dirent, type Fd, type Flock, type Iatt, type LockCmd, type Loc,
  type LookupReply, type SetattrArgs, type Statfs,
} from '../../../../common/types.js';
import type { WriteMark } from '../../../../common/write-mark.js';
import { PostWriteAttrs } from './post-write.js';
import type { XlatorContext } from '../../registry.js';


export const OPTIONS: readonly OptionDef[] = [
  { key: 'remote-host', type: 'string', description: 'address of the node serving the brick' },
  { key: 'remote-subvolume', type: 'string', description: 'the brick directory on that node' },
  { key: 'remote-port', type: 'int', default: 0, min: 0, max: 65535, description: 'brick port; 0 asks the node\'s gfsd (portmap)' },
  { key: 'remote-mgmt-port', type: 'int', default: 24007, min: 1, max: 65535, description: 'port of the node\'s gfsd, for portmap' },
  { key: 'call-timeout', type: 'time', default: 1800, min: 1, description: 'longest a single call may take (seconds)' },
  { key: 'reconnect-interval', type: 'time', default: 1, min: 0.1, max: 60, description: 'while the brick is unreachable, how often to try it again (seconds); child-up is sent when it answers' },
  { key: 'ping-timeout', type: 'time', default: 10, min: 1, max: 1013, description: 'a connected brick that leaves a ping unanswered this long (seconds) is taken as down: its calls fail with ENOTCONN and child-down is sent (network.ping-timeout)' },
];

interface Options {
  'remote-host': string; 'remote-subvolume': string; 'remote-port': number; 'remote-mgmt-port': number; 'call-timeout': number;
  'reconnect-interval': number; 'ping-timeout': number;
}

/** How long a closed fd waits for a request to ride on before its close goes alone (on a
 *  distributed volume the next creates often go to other bricks: at 10 ms a third of the closes
 *  of a create loop on 2x2 went alone). */
const RELEASE_DELAY_MS = 50;

/** How a request is ordered behind writes sent before it on the session (FopRequest.after_writes,
 *  after_marks_of). */
interface Order { afterWrites: boolean; marksOf?: number }

/** A Session request awaiting its reply: settle once, with the error or the reply's message. */
interface Pending {
  method: string;
  deadline: number;
  settle(err: FsError | null, res?: unknown, cancel?: boolean): void;
  /** The encoded request: a bulk buffer goes back to its pool when the brick's reply arrives
   *  (the stream has sent it by then; after a timeout or a broken stream it is left to the GC). */
  sent?: Buffer;
}

/** A Session reply as proto-loader decodes it: res names the oneof field that is set. */
interface FopReply { id: number; errno: string; message: string; pre_failed?: boolean; res?: string; batch?: FopReply[] }
/** The channel's Session stream, the requests on it not answered yet, and its writer. */
interface Session { stream: grpc.ClientDuplexStream<unknown, FopReply>; pending: Map<number, Pending>; out: SessionOutbox }

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: any) => void) => unknown;

/** The brick's own fd number for an open file, kept in Fd.ctx under this translator, and the
 * brick address generation it was opened on (an fd never follows a brick moved elsewhere). */
interface RemoteFd { id: number; gen?: number }

function toCreateArgs(a: CreateArgs) {
  return { mode: a.mode, umask: a.umask, gfid: a.gfid, xattrs: a.xattrs ?? {} };
}

function toWireFlock(l: Flock) {
  return { type: l.type, start: Number(l.start), len: Number(l.len), pid: l.pid, owner: l.owner };
}

export class ProtocolClient extends PassThrough implements Xlator {
  /** Applies ctx.pre on the brick before the operation, in the same round trip. */
  readonly preOpCompound = true;
  /** Whether the brick lets ctx.unlock's lock go after the operation (one from before it
   *  ignores the field). */
  get unlockCompound(): boolean {
    return this.features.has('unlock-after');
  }
  /** Whether the brick reads ctx.openXattrs with an open (one from before it ignores the field). */
  get openXattrsCompound(): boolean {
    return this.features.has('open-xattrs');
  }
  private readonly opts: Options;
  /** Bumped when reconfigure moves this translator to another brick. */
  private gen = 0;
  private brickPid = 0;
  /** What the brick answering does beyond the calls (PingRes.features). */
  private features = new Set<string>();
  private client?: grpc.Client;
  private connecting?: Promise<grpc.Client>;
  private up = false;
  private retry?: NodeJS.Timeout;
  private closed = false;
  private readonly log: Logger;
  /** While up: a Ping every ping-timeout / 2 seconds (GlusterFS's ping timer). */
  private heartbeat?: NodeJS.Timeout;
  private pinging = false;
  /** Calls on the wire, so a brick declared down fails them at once instead of after call-timeout. */
  private readonly inflight = new Set<(e: FsError) => void>();
  /** The Session stream on the current channel and its calls awaiting replies, by id. */
  private session?: Session;
  private nextId = 1;
  /** Fails session calls past their deadline (one timer for all, not one per call). */
  private deadlines?: NodeJS.Timeout;
  /** Brick fds closed here and not yet on the wire: they ride on the next request (its `released`
   *  field), or leave alone after RELEASE_DELAY_MS. A file's close thus costs no round trip. */
  private toRelease: number[] = [];
  private releaseTimer?: NodeJS.Timeout;
  /** A lone Release on its way (fini waits for it). */
  private releasing?: Promise<void>;
  /** The attributes writes answered with, for the stats that follow them. */
  private readonly postWrite = new PostWriteAttrs();

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
      this.log.warn({ err: fe.message }, 'brick not reachable at mount; will retry');
      this.scheduleReconnect();
    }
  }

  override async fini(): Promise<void> {
    this.sendReleases();
    await this.releasing;
    this.closed = true;
    clearTimeout(this.retry);
    clearInterval(this.heartbeat);
    this.dropChannel();
  }

  /** Closes the channel and its session; the next call connects again. */
  private dropChannel(): void {
    this.session?.stream.cancel();
    this.session = undefined;
    this.client?.close();
    this.client = undefined;
  }

  /** While the brick is unreachable, ping it every reconnect-interval; success sends child-up. */
  private scheduleReconnect(): void {
    if (this.retry || this.closed) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.call('Ping', {}, this.xctx.rootCtx, this.opts['ping-timeout'] * 1000).catch(() => this.scheduleReconnect());
    }, this.opts['reconnect-interval'] * 1000);
    this.retry.unref();
  }

  private setUp(up: boolean): void {
    if (!up) this.scheduleReconnect();
    if (up === this.up) return;
    this.up = up;
    this.setHeartbeat(up);
    this.log.info({ brick: this.brick }, up ? 'brick connected' : 'brick disconnected');
    this.parent?.notify(up ? 'child-up' : 'child-down', this);
  }

  /** GlusterFS's ping timer: a brick that is up is pinged; no answer within ping-timeout (a cut
   * link, a frozen host: nothing resets the TCP connection) takes it down. */
  private setHeartbeat(on: boolean): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    if (!on || this.closed) return;
    const timeoutMs = this.opts['ping-timeout'] * 1000;
    this.heartbeat = setInterval(() => {
      if (this.pinging) return;
      this.pinging = true;
      this.call('Ping', {}, this.xctx.rootCtx, timeoutMs)
        .catch((e: FsError) => {
          if (e.errno === 'ETIMEDOUT' || e.errno === 'ENOTCONN') this.declareDown(`no answer to ping within ${this.opts['ping-timeout']}s`);
        })
        .finally(() => { this.pinging = false; });
    }, Math.max(500, timeoutMs / 2));
    this.heartbeat.unref();
  }

  /** Drops the channel and fails every call on it with ENOTCONN; reconnecting starts. */
  private declareDown(why: string): void {
    if (!this.up) return;
    this.log.warn({ brick: this.brick, why }, 'brick timed out');
    this.dropChannel();
    const err = new FsError('ENOTCONN', `brick ${this.brick} is down: ${why}`);
    for (const fail of [...this.inflight]) fail(err);
    this.setUp(false);
  }

  /** The brick's pid, from every Ping: another one means the brick daemon restarted (maybe on the
   * same port, behind one channel) and the fds opened on the old one are gone: they fail EBADF
   * here rather than reach whatever the new daemon gave the same number. */
  private notePid(pid: number | undefined): void {
    if (!pid) return;
    const was = this.brickPid;
    this.brickPid = pid;
    if (!was || pid === was) return;
    this.gen++;
    this.toRelease = []; // fds of the daemon or brick left behind
    this.log.info({ brick: this.brick, was, now: pid }, 'brick daemon restarted; files open on it must be opened again');
    // Gone and back between two pings (the channel reconnected by itself): it may have missed
    // changes, so the parents hear child-up again (replicate sweeps its heal index then).
    if (this.up) queueMicrotask(() => this.parent?.notify('child-up', this));
  }

  /** A changed spec (replace-brick, `volume set network.ping-timeout`): the new options apply now;
   * a new brick address drops the channel, fails its calls and reconnects there. */
  reconfigure(options: Record<string, unknown>): void {
    const next = parseOptions<Options>(OPTIONS, options, `translator ${this.name}`);
    const where = (o: Options) => `${o['remote-host']}:${o['remote-mgmt-port']}:${o['remote-port']}:${o['remote-subvolume']}`;
    const moved = where(next) !== where(this.opts);
    const from = this.brick;
    Object.assign(this.opts, next);
    if (!moved) {
      if (this.up) this.setHeartbeat(true);
      return;
    }
    this.log.info({ from, to: this.brick }, 'brick moved');
    this.gen++;
    this.toRelease = []; // fds of the daemon or brick left behind
    if (this.up) this.declareDown(`brick moved to ${this.brick}`);
    else this.dropChannel();
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
        const client = new Brick(`${this.opts['remote-host']}:${port}`, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
        // Handshake: which brick process answers decides whether fds opened earlier still hold.
        try {
          const res = await new Promise<{ pid?: number; features?: string[] }>((resolve, reject) => {
            (client as unknown as Record<string, Unary>).Ping({}, ctxToMetadata(this.xctx.rootCtx, this.xctx.volumeId, this.xctx.secret),
              { deadline: Date.now() + this.opts['ping-timeout'] * 1000 }, (err, r) => (err ? reject(fromGrpcError(err, `Ping on ${this.brick}`)) : resolve(r)));
          });
          this.notePid(res.pid);
          this.features = new Set(res.features ?? []);
          if (!this.features.has('upcall')) {
            this.log.warn({ brick: this.brick }, 'brick sends no cache invalidation: metadata is cached for at most 1 s');
            queueMicrotask(() => this.parent?.notify({ type: 'upcall', changes: [], all: true, unsupported: true }, this));
          }
        } catch (e) {
          client.close();
          throw e;
        }
        this.client = client;
        return client;
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  /** One operation on the brick: Ping as a unary call (the handshake and heartbeat), everything
   * else as one message each way on the channel's Session stream. A brick that cannot be reached
   * drops the channel so the next call asks portmap again. */
  private call<T = any>(method: string, req: unknown, ctx: Ctx, timeoutMs = this.opts['call-timeout'] * 1000, order?: Order): Promise<T> {
    // Connected: no await before the request is on its way (each one is a turn of the microtask queue).
    return this.client ? this.send<T>(this.client, method, req, ctx, timeoutMs, order) : this.connectAndCall<T>(method, req, ctx, timeoutMs);
  }

  private async connectAndCall<T>(method: string, req: unknown, ctx: Ctx, timeoutMs: number): Promise<T> {
    let client: grpc.Client;
    try {
      client = await this.connect();
    } catch (e) {
      this.setUp(false);
      throw e instanceof FsError ? new FsError(e.errno === 'ENOENT' ? 'ENOTCONN' : e.errno, e.message) : e;
    }
    return this.send<T>(client, method, req, ctx, timeoutMs);
  }

  private send<T>(client: grpc.Client, method: string, req: unknown, ctx: Ctx, timeoutMs: number, order?: Order): Promise<T> {
    if (ctx.signal?.aborted) return Promise.reject(new FsError('EINTR', `${method} on ${this.brick}: interrupted`));
    return method === 'Ping' ? this.unary<T>(client, method, req, ctx, timeoutMs) : this.viaSession<T>(client, method, req, ctx, timeoutMs, order);
  }

  private unary<T>(client: grpc.Client, method: string, req: unknown, ctx: Ctx, timeoutMs: number): Promise<T> {
    const md = ctxToMetadata(ctx, this.xctx.volumeId, this.xctx.secret);
    const started = profileEnabled() ? performance.now() : 0;
    return new Promise<T>((resolve, reject) => {
      const fn = (client as unknown as Record<string, Unary>)[method];
      // An interrupted caller (FUSE INTERRUPT) cancels the call; the brick sees it cancelled.
      const onAbort = () => call.cancel();
      let settled = false;
      const fail = (e: FsError) => {
        if (settled) return;
        settled = true;
        this.inflight.delete(fail);
        ctx.signal?.removeEventListener('abort', onAbort);
        call.cancel();
        reject(e);
      };
      const call = fn.call(client, req, md, { deadline: Date.now() + timeoutMs }, (err, res) => {
        ctx.signal?.removeEventListener('abort', onAbort);
        this.inflight.delete(fail);
        if (settled) return;
        settled = true;
        if (started) profileAdd(`rpc.${method}`, performance.now() - started);
        if (!err) {
          if (method === 'Ping') {
            this.notePid((res as { pid?: number })?.pid);
            this.features = new Set((res as { features?: string[] })?.features ?? []);
          }
          this.setUp(true);
          resolve(res as T);
          return;
        }
        if (err.code === grpc.status.UNAVAILABLE) {
          this.dropChannel();
          this.setUp(false);
        }
        reject(fromGrpcError(err, `${method} on ${this.brick}`));
      }) as unknown as grpc.ClientUnaryCall;
      this.inflight.add(fail);
      ctx.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The Session stream of this channel, opened with the volume's credentials on first use. */
  private sessionOf(client: grpc.Client): Session {
    if (this.session && this.client === client) return this.session;
    const md = ctxToMetadata(this.xctx.rootCtx, this.xctx.volumeId, this.xctx.secret);
    md.set(MD.sessionBatch, '1');
    md.set(MD.upcall, '1');
    const stream = (client as unknown as { Session(md: grpc.Metadata): grpc.ClientDuplexStream<unknown, FopReply> }).Session(md);
    const s: Session = { stream, pending: new Map<number, Pending>(), out: new SessionOutbox('req', this.features.has('session-batch'), (m, cb) => stream.write(m, cb)) };
    const onReply = (r: FopReply) => {
      if (r.res === 'upcall') {
        const changes = ((r as unknown as { upcall?: { entries?: UpcallChange[] } }).upcall?.entries ?? [])
          .map((c) => ({ path: c.path, gfid: c.gfid || undefined, entry: c.entry || undefined, tree: c.tree || undefined, data: c.data || undefined }));
        this.postWrite.touched();
        this.parent?.notify({ type: 'upcall', changes }, this);
        return;
      }
      const p = s.pending.get(Number(r.id));
      if (!p) return;
      if (p.sent) bulkBuffers.give(p.sent);
      if (r.errno) {
        const errno = isErrno(r.errno) ? (r.errno as Errno) : 'EIO';
        const e = new FsError(errno, `${p.method} on ${this.brick}: ${r.message.replace(/^E[A-Z0-9]+: /, '')}`);
        p.settle(r.pre_failed ? Object.assign(e, { preFailed: true }) : e);
      } else {
        p.settle(null, r.res ? (r as unknown as Record<string, unknown>)[r.res] ?? {} : {});
      }
    };
    // A carrier's replies are taken as if each had come on its own.
    stream.on('data', (r: FopReply) => {
      if (r.batch?.length) for (const x of r.batch) onReply(x);
      else onReply(r);
    });
    // The stream ends only with the channel: a brick gone (UNAVAILABLE) or a closed channel.
    const broken = (err?: grpc.ServiceError) => {
      if (this.session === s) this.session = undefined;
      // Changes made while no session listens are never told: the caches above forget all.
      this.postWrite.touched();
      this.parent?.notify({ type: 'upcall', changes: [], all: true }, this);
      const e = err ? fromGrpcError(err, `brick ${this.brick}`) : new FsError('ENOTCONN', `brick ${this.brick}: session closed`);
      const down = !err || err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.CANCELLED;
      for (const p of [...s.pending.values()]) p.settle(down ? new FsError('ENOTCONN', e.message) : e);
      if (down && this.client === client) {
        this.dropChannel();
        this.setUp(false);
      }
    };
    stream.on('error', (e: grpc.ServiceError) => broken(e));
    stream.on('end', () => broken());
    this.session = s;
    this.deadlines ??= setInterval(() => this.expire(), 1000);
    this.deadlines.unref();
    return s;
  }

  private expire(): void {
    const now = Date.now();
    for (const p of this.session?.pending.values() ?? []) {
      if (p.deadline <= now) p.settle(new FsError('ETIMEDOUT', `${p.method} on ${this.brick}: no answer in time`), undefined, true);
    }
  }

  private viaSession<T>(client: grpc.Client, method: string, req: unknown, ctx: Ctx, timeoutMs: number, order?: Order): Promise<T> {
    const s = this.sessionOf(client);
    const id = this.nextId++;
    const started = profileEnabled() ? performance.now() : 0;
    return new Promise<T>((resolve, reject) => {
      // An interrupted caller (FUSE INTERRUPT) cancels the request; the brick aborts it.
      const onAbort = () => p.settle(new FsError('EINTR', `${method} on ${this.brick}: interrupted`), undefined, true);
      const fail = (e: FsError) => p.settle(e, undefined, true);
      const p: Pending = {
        method,
        deadline: Date.now() + timeoutMs,
        settle: (err, res, cancel = false) => {
          if (!s.pending.delete(id)) return;
          this.inflight.delete(fail);
          ctx.signal?.removeEventListener('abort', onAbort);
          if (cancel && this.session === s) s.out.send(encodeSession('req', { id, cancel: true }));
          if (started) profileAdd(`rpc.${method}`, performance.now() - started);
          if (err) reject(err);
          else resolve(res as T);
        },
      };
      s.pending.set(id, p);
      this.inflight.add(fail);
      ctx.signal?.addEventListener('abort', onAbort, { once: true });
      const pre = ctx.pre?.map((x) => ({ loc: ProtocolClient.wloc(x.loc), name: x.name, add: x.add }));
      // A counter's change is a ctime's (but a write's own come before the attributes it answers).
      if (method !== 'Write') for (const x of ctx.pre ?? []) this.postWrite.touched(x.loc.gfid);
      const lock = ctx.lock && { loc: ProtocolClient.wloc(ctx.lock.loc), cmd: 'setlk', lock: toWireFlock(ctx.lock.lock) };
      const unlock = ctx.unlock && { loc: ProtocolClient.wloc(ctx.unlock.loc), cmd: 'setlk', lock: toWireFlock(ctx.unlock.lock) };
      const released = this.takeReleases();
      try {
        p.sent = encodeSession('req', { id, caller: { uid: ctx.uid, gid: ctx.gid, groups: ctx.groups, pid: ctx.pid }, pre, lock, unlock, released, after_writes: order?.afterWrites || undefined, after_marks_of: order?.marksOf, [method.toLowerCase()]: req });
      } catch (e) {
        p.settle(new FsError('EINVAL', `${method} on ${this.brick}: cannot encode the request: ${(e as Error).message}`));
        return;
      }
      s.out.send(p.sent);
      ctx.written?.sent(s, id);
    });
  }

  private remoteFd(fd: Fd): number {
    const r = fd.ctx.get(this) as RemoteFd | undefined;
    if (!r || (r.gen ?? 0) !== this.gen) throw new FsError('EBADF', `${this.name}: fd not open on this brick`);
    return r.id;
  }

  private wrapFd(loc: Loc, flags: number, res: { fd: number; iatt: WireIatt }): Fd {
    const fd = newFd(loc, flags, res.iatt.gfid);
    fd.ctx.set(this, { id: res.fd, gen: this.gen } satisfies RemoteFd);
    if (res.iatt) fd.ctx.set(OPEN_IATT, iattFromWire(res.iatt));
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
    const after = loc.gfid ? this.postWrite.get(loc.gfid) : undefined;
    if (after) return after;
    return iattFromWire((await this.call('Stat', { loc: ProtocolClient.wloc(loc) }, ctx)).iatt);
  }

  override async fstat(ctx: Ctx, fd: Fd): Promise<Iatt> {
    const id = this.remoteFd(fd);
    const after = this.postWrite.get(fd.gfid);
    if (after) return after;
    return iattFromWire((await this.call('Fstat', { fd: id }, ctx)).iatt);
  }

  override async readdirp(ctx: Ctx, loc: Loc, xattrs: string[] = []): Promise<Dirent[]> {
    const r = await this.call('Readdirp', { loc: ProtocolClient.wloc(loc), xattrs }, ctx);
    return (r.entries as { name: string; iatt: WireIatt; xattrs: Record<string, Buffer> }[])
      .map((e) => ({ name: e.name, iatt: iattFromWire(e.iatt), xattrs: e.xattrs ?? {} }));
  }

  override async mkdir(ctx: Ctx, loc: Loc, args: CreateArgs): Promise<Iatt> {
    return iattFromWire((await this.call('Mkdir', { loc: ProtocolClient.wloc(loc), args: toCreateArgs(args) }, ctx)).iatt);
  }

  override async create(ctx: Ctx, loc: Loc, flags: number, args: CreateArgs): Promise<{ fd: Fd; iatt: Iatt; locked?: boolean }> {
    const lock = args.lock ? toWireFlock(args.lock) : undefined;
    const r = await this.call('Create', { loc: ProtocolClient.wloc(loc), flags, args: toCreateArgs(args), lock }, ctx);
    return { fd: this.wrapFd(loc, flags, r), iatt: iattFromWire(r.iatt), locked: r.locked === true };
  }

  override async open(ctx: Ctx, loc: Loc, flags: number): Promise<Fd> {
    const lock = ctx.openLock ? toWireFlock(ctx.openLock) : undefined;
    if (flags & O_TRUNC) this.postWrite.touched(loc.gfid);
    const res = await this.call('Open', { loc: ProtocolClient.wloc(loc), flags, xattrs: ctx.openXattrs ?? [], lock }, ctx);
    const fd = this.wrapFd(loc, flags, res);
    if (ctx.openXattrs) fd.ctx.set(OPEN_XATTRS, res.xattrs ?? {});
    if (res.locked === true) fd.ctx.set(OPEN_LOCKED, true);
    return fd;
  }

  override async read(ctx: Ctx, fd: Fd, offset: number, size: number): Promise<Buffer> {
    return (await this.call('Read', { fd: this.remoteFd(fd), offset, size }, ctx)).data;
  }

  override async write(ctx: Ctx, fd: Fd, offset: number, data: Buffer): Promise<number> {
    const id = this.remoteFd(fd);
    this.postWrite.sending(fd.gfid);
    try {
      const r = await this.call('Write', { fd: id, offset, data }, ctx);
      this.postWrite.answered(fd.gfid, r.iatt ? iattFromWire(r.iatt) : undefined);
      return r.written;
    } catch (e) {
      this.postWrite.answered(fd.gfid);
      throw e;
    }
  }

  override async truncate(ctx: Ctx, loc: Loc, size: number): Promise<Iatt> {
    this.postWrite.touched(loc.gfid);
    return iattFromWire((await this.call('Truncate', { loc: ProtocolClient.wloc(loc), size }, ctx)).iatt);
  }

  override async ftruncate(ctx: Ctx, fd: Fd, size: number): Promise<Iatt> {
    this.postWrite.touched(fd.gfid);
    return iattFromWire((await this.call('Ftruncate', { fd: this.remoteFd(fd), size }, ctx)).iatt);
  }

  /** The brick keeps no data back (writes reach its kernel at once) and the bridge drops locks
   *  itself, so a flush needs no round trip: only the fd is checked. */
  override async flush(_ctx: Ctx, fd: Fd): Promise<void> {
    this.remoteFd(fd);
  }

  override async fsync(ctx: Ctx, fd: Fd, datasync: boolean): Promise<void> {
    await this.call('Fsync', { fd: this.remoteFd(fd), datasync }, ctx);
  }

  override async release(_ctx: Ctx, fd: Fd): Promise<void> {
    const r = fd.ctx.get(this) as RemoteFd | undefined;
    if (!r) return;
    fd.ctx.delete(this);
    if ((r.gen ?? 0) !== this.gen) return; // opened on the brick this translator moved away from
    // Answered at once (nothing can fail that the caller could act on); the brick closes the fd
    // when the next request tells it. A lock taken later on this brick waits for the close there.
    this.toRelease.push(r.id);
    this.releaseTimer ??= setTimeout(() => this.sendReleases(), RELEASE_DELAY_MS);
    this.releaseTimer.unref?.();
  }

  /** The brick fds to close, for the request about to go out on the current generation's session. */
  private takeReleases(): number[] | undefined {
    if (this.toRelease.length === 0) return undefined;
    clearTimeout(this.releaseTimer);
    this.releaseTimer = undefined;
    const ids = this.toRelease;
    this.toRelease = [];
    return ids;
  }

  /** No request went out for a while: the closes go on their own. */
  private sendReleases(): void {
    clearTimeout(this.releaseTimer);
    this.releaseTimer = undefined;
    const first = this.toRelease[0];
    if (first === undefined || !this.up) return;
    this.toRelease.shift();
    const p: Promise<void> = this.call('Release', { fd: first }, this.xctx.rootCtx).then(
      () => undefined,
      (e) => { this.log.debug({ fd: first, err: (e as Error).message }, 'background release failed'); },
    ).finally(() => { if (this.releasing === p) this.releasing = undefined; });
    this.releasing = p;
  }

  override async unlink(ctx: Ctx, loc: Loc): Promise<void> {
    this.postWrite.touched(); // the links (and ctime) of whatever inode the name held
    await this.call('Unlink', { loc: ProtocolClient.wloc(loc) }, ctx);
  }

  override async rmdir(ctx: Ctx, loc: Loc): Promise<void> {
    this.postWrite.touched(); // the links (and ctime) of whatever inode the name held
    await this.call('Rmdir', { loc: ProtocolClient.wloc(loc) }, ctx);
  }

  override async rename(ctx: Ctx, from: Loc, to: Loc): Promise<void> {
    this.postWrite.touched();
    await this.call('Rename', { from: ProtocolClient.wloc(from), to: ProtocolClient.wloc(to) }, ctx);
  }

  override async link(ctx: Ctx, from: Loc, to: Loc): Promise<Iatt> {
    this.postWrite.touched();
    return iattFromWire((await this.call('Link', { from: ProtocolClient.wloc(from), to: ProtocolClient.wloc(to) }, ctx)).iatt);
  }

  override async symlink(ctx: Ctx, target: string, loc: Loc, args: CreateArgs): Promise<Iatt> {
    return iattFromWire((await this.call('Symlink', { target, loc: ProtocolClient.wloc(loc), args: toCreateArgs(args) }, ctx)).iatt);
  }

  override async readlink(ctx: Ctx, loc: Loc): Promise<string> {
    return (await this.call('Readlink', { loc: ProtocolClient.wloc(loc) }, ctx)).target;
  }

  override async setattr(ctx: Ctx, loc: Loc, attrs: SetattrArgs): Promise<Iatt> {
    const marks = ctx.marksOf ? [...(ctx.after ?? []), ctx.marksOf] : ctx.after;
    const afterWrites = marks?.length ? await this.followWrites(marks) : false;
    // No await since followWrites: this.session is the one it checked.
    const marksOf = ctx.marksOf && afterWrites && this.session && this.features.has('after-marks') ? ctx.marksOf.idOn(this.session) : undefined;
    if (ctx.marksOf && marksOf === undefined) {
      throw Object.assign(new FsError('EAGAIN', `setattr on ${this.brick}: cannot go behind the write carrying its marks`), { preFailed: true });
    }
    this.postWrite.touched(loc.gfid);
    return iattFromWire((await this.call('Setattr', { loc: ProtocolClient.wloc(loc), ...setattrToWire(attrs) }, ctx, undefined, { afterWrites, marksOf })).iatt);
  }

  /** Whether a request may go now with after_writes, behind these writes: once each was sent on
   *  the current session or has finished. If the brick cannot order it, or the session changed
   *  meanwhile, it waits for all of them to finish (false). No await follows a true: the
   *  request goes on that same session. */
  private async followWrites(marks: readonly WriteMark[]): Promise<boolean> {
    const s = this.features.has('after-writes') ? this.session : undefined;
    if (s) {
      const sent = await Promise.all(marks.map((m) => m.sentOn(s)));
      if (this.session === s) return sent.some(Boolean);
    }
    await Promise.all(marks.map((m) => m.finished));
    return false;
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
    this.postWrite.touched(loc.gfid);
    await this.call('Setxattr', { loc: ProtocolClient.wloc(loc), name, value, flags }, ctx);
  }

  override async listxattr(ctx: Ctx, loc: Loc): Promise<string[]> {
    return (await this.call('Listxattr', { loc: ProtocolClient.wloc(loc) }, ctx)).names;
  }

  override async removexattr(ctx: Ctx, loc: Loc, name: string): Promise<void> {
    this.postWrite.touched(loc.gfid);
    await this.call('Removexattr', { loc: ProtocolClient.wloc(loc), name }, ctx);
  }

  override async xattrop(ctx: Ctx, loc: Loc, name: string, add: Buffer): Promise<Buffer> {
    this.postWrite.touched(loc.gfid);
    return (await this.call('Xattrop', { loc: ProtocolClient.wloc(loc), name, add }, ctx)).value;
  }

  override async mknod(ctx: Ctx, loc: Loc, rdev: number, args: CreateArgs): Promise<Iatt> {
    return iattFromWire((await this.call('Mknod', { loc: ProtocolClient.wloc(loc), rdev, args: toCreateArgs(args) }, ctx)).iatt);
  }

  override async fallocate(ctx: Ctx, fd: Fd, mode: number, offset: number, len: number): Promise<void> {
    this.postWrite.touched(fd.gfid);
    await this.call('Fallocate', { fd: this.remoteFd(fd), mode, offset, len }, ctx);
  }

  override async lk(ctx: Ctx, fd: Fd, cmd: LockCmd, lock: Flock): Promise<Flock> {
    const r = await this.call('Lk', { fd: this.remoteFd(fd), cmd, lock: toWireFlock(lock) }, ctx);
    const l = r.lock;
    return { type: l.type, start: BigInt(l.start), len: BigInt(l.len), pid: l.pid, owner: l.owner };
  }

  override async inodelk(ctx: Ctx, loc: Loc, cmd: LockCmd, lock: Flock): Promise<Flock> {
    await this.call('Inodelk', { loc: ProtocolClient.wloc(loc), cmd, lock: toWireFlock(lock) }, ctx);
    return lock;
  }
}

export function create(name: string, options: Record<string, unknown>, children: Xlator[], xctx: XlatorContext): Xlator {
  if (children.length) throw new FsError('EINVAL', `translator ${name}: protocol/client takes no children`);
  return new ProtocolClient(name, options, xctx);
}
