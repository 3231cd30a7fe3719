// Loads the wire contracts in proto/ at run time: the .proto files are the one source of truth.
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { createRequire } from 'node:module';
import { BULK_MIN, bulkBuffers } from './buffers.js';

// grpc-js's own modules for sendFramedAsIs (not part of its API: absent, nothing is patched).
const grpcModule = (name: string): unknown => {
  try {
    return createRequire(createRequire(import.meta.url).resolve('@grpc/grpc-js'))(name);
  } catch {
    return undefined;
  }
};
const compression = grpcModule('./compression-filter.js');
const serverCalls = grpcModule('./server-interceptors.js');

// 64-bit fields as plain numbers (what longs: Number made of them anyway), so a decoded message is
// usable as it is: no Long objects, no conversion pass.
protobuf.util.Long = null as unknown as typeof protobuf.util.Long;
protobuf.configure();

function protoDir(): string {
  // Works from the source tree (common/) and from the build output (dist/common/).
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, 'brick.proto'))) return candidate;
    dir = resolve(dir, '..');
  }
  throw new Error('cannot find the proto/ folder');
}

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
};

// Bulk data moves in large messages: raise message limits and the HTTP/2 flow-control windows.
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
  'grpc-node.flow_control_window': 8 * 1024 * 1024,
  'grpc.http2.lookahead_bytes': 8 * 1024 * 1024,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
} as grpc.ChannelOptions;

export const SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
  'grpc-node.flow_control_window': 8 * 1024 * 1024,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  // The brick pings its clients too: a client gone without a word (a cut link) is noticed, and
  // the locks it held are dropped (brickd's Session), as GlusterFS's server does on disconnect.
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
} as grpc.ServerOptions;

/** The HTTP/2 receive windows of a server, per stream and per connection. grpc-js applies
 *  'grpc-node.flow_control_window' to channels only: a server keeps HTTP/2's 64 KiB, so every
 *  1 MiB request waited for 16 window updates, and requests in flight did not overlap. */
export const SERVER_WINDOW = 8 * 1024 * 1024;

/** A grpc.Server with SERVER_OPTIONS whose HTTP/2 sessions receive with SERVER_WINDOW. Reaches into
 *  grpc-js internals (commonServerOptions, createHttp2Server); without them it is a plain server. */
export function newServer(options: grpc.ServerOptions = SERVER_OPTIONS): grpc.Server {
  const server = new grpc.Server(options);
  const inner = server as unknown as {
    commonServerOptions?: { settings?: Record<string, unknown> };
    createHttp2Server?: (creds: unknown) => { on(ev: 'session', fn: (s: { setLocalWindowSize?(n: number): void }) => void): void };
  };
  if (inner.commonServerOptions) inner.commonServerOptions.settings = { ...inner.commonServerOptions.settings, initialWindowSize: SERVER_WINDOW };
  const create = inner.createHttp2Server;
  if (typeof create === 'function') {
    inner.createHttp2Server = function (this: unknown, creds: unknown) {
      const h = create.call(this, creds);
      h.on('session', (session) => {
        try { session.setLocalWindowSize?.(SERVER_WINDOW); } catch { /* an old Node: the stream windows still help */ }
      });
      return h;
    };
  }
  return server;
}

const cache = new Map<string, grpc.GrpcObject>();

/** gRPC's prefix of every message on the wire: a compressed flag and the length. */
const PREFIX = 5;

/** Large messages encoded behind room for their gRPC prefix, filled in: grpc-js sends them as they
 *  are (sendFramedAsIs) instead of copying each into a prefixed buffer of its own. */
const framed = new WeakSet<Buffer>();

const withPrefix = (m: Buffer) => Buffer.from(m.buffer, m.byteOffset - PREFIX, m.length + PREFIX);

/** A protobufjs writer whose large outputs come from the bulk pool, prefixed (finish() allocates
 *  through the writer's class). */
class BulkWriter extends protobuf.BufferWriter {
  static alloc(size: number): Buffer {
    if (size < BULK_MIN) return Buffer.allocUnsafe(size);
    const b = bulkBuffers.take(size + PREFIX);
    b[0] = 0; // not compressed
    b.writeUInt32BE(size, 1);
    const m = b.subarray(PREFIX);
    framed.add(m);
    return m;
  }
}

/** Where a message is one of ours with its prefix in place, grpc-js sends it as it is: on the client
 *  in the compression filter (uncompressed channels only), on the server where it prefixes replies.
 *  Saves a copy of every bulk message (a MiB per WRITE per brick in the mount, per READ in a brick).
 *  Reaches into grpc-js internals; without them messages are copied as before. */
function sendFramedAsIs(): void {
  type Sent = { message: Buffer; flags?: number };
  const cf = (compression as { CompressionFilter?: { prototype: Record<string, unknown> } }).CompressionFilter?.prototype;
  const send = cf?.sendMessage as ((this: unknown, m: Promise<Sent>) => Promise<Sent>) | undefined;
  if (cf && send) {
    cf.sendMessage = async function (this: { currentCompressionAlgorithm?: string; maxSendMessageLength?: number }, message: Promise<Sent>) {
      const m = await message;
      const max = this.maxSendMessageLength ?? -1;
      if (framed.has(m.message) && this.currentCompressionAlgorithm === 'identity' && (max === -1 || m.message.length <= max)) {
        return { message: withPrefix(m.message), flags: m.flags };
      }
      return send.call(this, Promise.resolve(m));
    };
  }
  const sc = (serverCalls as { BaseServerInterceptingCall?: { prototype: Record<string, unknown> } }).BaseServerInterceptingCall?.prototype;
  const serialize = sc?.serializeMessage as ((this: unknown, v: unknown) => Buffer) | undefined;
  if (sc && serialize) {
    sc.serializeMessage = function (this: unknown, value: unknown) {
      return Buffer.isBuffer(value) && framed.has(value) ? withPrefix(value) : serialize.call(this, value);
    };
  }
}
sendFramedAsIs();

/** Encodes a plain object of the right shape directly; one that needs conversion (a number given
 *  for a string field, say) goes through fromObject as proto-loader would. A Buffer is a message
 *  encoded already (encodeSession), passed as it is. */
function encoder(t: protobuf.Type): (o: object) => Buffer {
  return (o) => {
    if (Buffer.isBuffer(o)) return o;
    try {
      return t.encode(o, new BulkWriter()).finish() as Buffer;
    } catch {
      return t.encode(t.fromObject(o as Record<string, unknown>), new BulkWriter()).finish() as Buffer;
    }
  };
}

let sessionTypes: { req: protobuf.Type; res: protobuf.Type } | undefined;

/** A Session message (FopRequest or FopReply) encoded now, for writing to its stream as it is. A
 *  large one is in a buffer of bulkBuffers (behind its gRPC prefix): its writer gives it back once
 *  the stream has sent it. */
export function encodeSession(kind: 'req' | 'res', msg: object): Buffer {
  loadProto('brick');
  return encoder(sessionTypes![kind])(msg);
}

/** A Session message at least this large leaves on its own (a bulk write or read, which is sent as
 *  it is, without a copy). */
const BATCH_MAX = 64 * 1024;

/** The Session messages of one end, written to its stream. grpc-js writes each message of a
 *  stream with a socket write of its own, once the one before it is out: N requests sent at once
 *  would cost N socket writes (on loopback each also runs the receiver's side of TCP) and N passes
 *  through both ends' stacks. So a message goes at once when the stream is idle, and the small ones
 *  that come while a write is on its way leave together when it is done, as one carrier message
 *  (FopRequest.batch or FopReply.batch, in their order), as a stream's writev would. An isolated
 *  request waits for nothing. */
export class SessionOutbox {
  private queue: Buffer[] = [];
  private cbs: (() => void)[] = [];
  private bytes = 0;
  private busy = false;
  /** kind: whose messages ('req' for a client's, 'res' for a brick's); batch: whether the other end
   *  reads carriers. */
  constructor(private readonly kind: 'req' | 'res', private readonly batch: boolean, private readonly write: (m: Buffer, cb: () => void) => void) {}

  /** m: encoded by encodeSession; cb once the stream has sent it. */
  send(m: Buffer, cb?: () => void): void {
    if (!this.batch) {
      this.write(m, cb ?? (() => {}));
      return;
    }
    if (m.length >= BATCH_MAX) { // after what is queued, on its own (the stream keeps the order)
      this.flush();
      this.out(m, cb ? [cb] : []);
      return;
    }
    this.queue.push(m);
    if (cb) this.cbs.push(cb);
    this.bytes += m.length;
    if (!this.busy || this.bytes >= BATCH_MAX) this.flush();
  }

  /** Writes what is queued now. */
  flush(): void {
    const q = this.queue;
    if (q.length === 0) return;
    const cbs = this.cbs;
    this.queue = [];
    this.cbs = [];
    this.bytes = 0;
    if (q.length === 1) {
      this.out(q[0], cbs);
      return;
    }
    // The carrier's only field, repeated: each message's tag (wire type 2), length and bytes.
    loadProto('brick');
    const tag = (sessionTypes![this.kind].fields.batch.id << 3) | 2;
    const w = protobuf.Writer.create();
    for (const m of q) w.uint32(tag).bytes(m);
    this.out(w.finish() as Buffer, cbs);
  }

  private out(m: Buffer, cbs: (() => void)[]): void {
    this.busy = true;
    this.write(m, () => {
      this.busy = false;
      for (const cb of cbs) cb();
      this.flush();
    });
  }
}

/** The Session stream carries every file operation, so its messages skip proto-loader's
 *  fromObject/toObject passes (about a tenth of a round trip's CPU on each end): a decoded message
 *  is read as it is (absent fields read their defaults, `req`/`res` name the oneof that is set). */
function fastSession(def: protoLoader.PackageDefinition): void {
  const session = (def['gfs.brick.Brick'] as protoLoader.ServiceDefinition | undefined)?.Session;
  if (!session) return;
  const root = new protobuf.Root().loadSync(join(protoDir(), 'brick.proto'), { keepCase: true });
  const req = root.lookupType('gfs.brick.FopRequest');
  const res = root.lookupType('gfs.brick.FopReply');
  sessionTypes = { req, res };
  Object.assign(session, {
    requestSerialize: encoder(req), requestDeserialize: (b: Buffer) => req.decode(b),
    responseSerialize: encoder(res), responseDeserialize: (b: Buffer) => res.decode(b),
  });
}

/** The loaded package of proto/<file>.proto, e.g. loadProto('brick').gfs.brick.Brick. */
export function loadProto(file: 'brick' | 'mgmt' | 'csi'): grpc.GrpcObject {
  let obj = cache.get(file);
  if (!obj) {
    const def = protoLoader.loadSync(join(protoDir(), `${file}.proto`), LOADER_OPTIONS);
    if (file === 'brick') fastSession(def);
    obj = grpc.loadPackageDefinition(def);
    cache.set(file, obj);
  }
  return obj;
}

export function brickService(): grpc.ServiceClientConstructor {
  return ((loadProto('brick').gfs as grpc.GrpcObject).brick as grpc.GrpcObject).Brick as grpc.ServiceClientConstructor;
}

export function mgmtService(): grpc.ServiceClientConstructor {
  return ((loadProto('mgmt').gfs as grpc.GrpcObject).mgmt as grpc.GrpcObject).Mgmt as grpc.ServiceClientConstructor;
}
