// The wire encoding of Session messages: a bulk message leaves grpc-js as the very buffer it was
// encoded in (behind its gRPC prefix, no copy), on the client and on the server side; a small one is
// prefixed by grpc-js's own copy; both decode to what was sent. Reaches into grpc-js's modules, as
// common/proto.ts does: a grpc-js that no longer takes the shortcut fails here, not silently. And
// the session outbox: what comes while a message is on its way leaves as one carrier.
import test from 'ava';
import { createRequire } from 'node:module';
import { brickService, encodeSession, SessionOutbox } from '../common/proto.js';

const grpcInternal = createRequire(createRequire(import.meta.url).resolve('@grpc/grpc-js'));
const { CompressionFilter } = grpcInternal('./compression-filter.js') as {
  CompressionFilter: new (opts: object, shared: object) => { sendMessage(m: Promise<{ message: Buffer; flags?: number }>): Promise<{ message: Buffer }> };
};
const { BaseServerInterceptingCall } = grpcInternal('./server-interceptors.js') as {
  BaseServerInterceptingCall: { prototype: { serializeMessage(this: unknown, v: unknown): Buffer } };
};

const session = brickService().service.Session;
const decodeReq = (b: Buffer) => session.requestDeserialize(b) as { id: number; write: { fd: number; data: Buffer }; batch: { id: number; write: { data: Buffer } }[] };
const decodeRes = (b: Buffer) => session.responseDeserialize(b) as { id: number; read: { data: Buffer }; batch: { id: number; read: { data: Buffer } }[] };

/** The gRPC message in a prefixed buffer: not compressed, the length, then exactly that many bytes. */
function unprefix(t: { is(a: unknown, b: unknown): void }, wire: Buffer): Buffer {
  t.is(wire[0], 0);
  t.is(wire.readUInt32BE(1), wire.length - 5);
  return wire.subarray(5);
}

test('a bulk request leaves the client as the buffer it was encoded in; a small one is copied behind its prefix', async (t) => {
  const filter = new CompressionFilter({}, {});
  const data = Buffer.alloc(1024 * 1024, 7);
  const bulk = encodeSession('req', { id: 41, write: { fd: 3, offset: 0, data } });
  const sent = (await filter.sendMessage(Promise.resolve({ message: bulk, flags: 0 }))).message;
  t.is(sent.buffer, bulk.buffer);
  t.is(sent.byteOffset, bulk.byteOffset - 5);
  const back = decodeReq(unprefix(t, sent));
  t.is(Number(back.id), 41);
  t.true(back.write.data.equals(data));
  const small = encodeSession('req', { id: 42, write: { fd: 3, offset: 0, data: Buffer.from('abc') } });
  const sentSmall = (await filter.sendMessage(Promise.resolve({ message: small, flags: 0 }))).message;
  t.is(sentSmall.length, small.length + 5);
  t.is(String(decodeReq(unprefix(t, sentSmall)).write.data), 'abc');
});

test('a bulk reply leaves the brick as the buffer it was encoded in; a small one is copied behind its prefix', (t) => {
  const call = { handler: { serialize: session.responseSerialize } };
  const data = Buffer.alloc(512 * 1024, 9);
  const bulk = encodeSession('res', { id: 7, read: { data } });
  const sent = BaseServerInterceptingCall.prototype.serializeMessage.call(call, bulk);
  t.is(sent.buffer, bulk.buffer);
  t.true(decodeRes(unprefix(t, sent)).read.data.equals(data));
  const small = encodeSession('res', { id: 8, read: { data: Buffer.from('xyz') } });
  const sentSmall = BaseServerInterceptingCall.prototype.serializeMessage.call(call, small);
  t.is(sentSmall.length, small.length + 5);
  t.is(String(decodeRes(unprefix(t, sentSmall)).read.data), 'xyz');
});

/** A stream's write as grpc-js does it: each message is out when its callback runs, later. */
function fakeStream() {
  const written: Buffer[] = [];
  const callbacks: (() => void)[] = [];
  return { written, write: (m: Buffer, cb: () => void) => { written.push(m); callbacks.push(cb); }, sent: () => callbacks.shift()!() };
}

test('the session outbox writes a message at once on an idle stream, and the small ones that come meanwhile as one carrier in their order', (t) => {
  const s = fakeStream();
  const out = new SessionOutbox('req', true, s.write);
  const req = (id: number, data: Buffer) => encodeSession('req', { id, write: { fd: 3, offset: id * 4096, data } });
  out.send(req(1, Buffer.from('first')));
  t.is(s.written.length, 1, 'an isolated request waits for nothing');
  t.is(Number(decodeReq(s.written[0]).id), 1);
  let done = 0;
  for (let id = 2; id <= 6; id++) out.send(req(id, Buffer.alloc(4096, id)), () => done++);
  t.is(s.written.length, 1, 'the stream is busy: they wait');
  s.sent();
  t.is(s.written.length, 2);
  const carrier = decodeReq(s.written[1]);
  t.is(Number(carrier.id), 0, 'a carrier has no id of its own');
  t.deepEqual(carrier.batch.map((r) => Number(r.id)), [2, 3, 4, 5, 6]);
  t.true(carrier.batch.every((r, i) => r.write.data.equals(Buffer.alloc(4096, i + 2))));
  t.is(done, 0, 'their callbacks run once the carrier is out');
  s.sent();
  t.is(done, 5);
  // A bulk message is never copied into a carrier: it follows what is queued, as the buffer it is.
  out.send(req(7, Buffer.from('x')));
  out.send(req(8, Buffer.from('y')));
  const bulk = req(9, Buffer.alloc(256 * 1024, 1));
  out.send(bulk);
  t.is(s.written.length, 5);
  t.is(Number(decodeReq(s.written[3]).id), 8, 'the one queued behind the busy write leaves first');
  t.is(s.written[4], bulk);
  // Replies are carried the same way (FopReply.batch); to an end that cannot read carriers, each goes alone.
  const r = fakeStream();
  const replies = new SessionOutbox('res', true, r.write);
  for (let id = 1; id <= 3; id++) replies.send(encodeSession('res', { id, read: { data: Buffer.from(`r${id}`) } }));
  r.sent();
  t.deepEqual(decodeRes(r.written[1]).batch.map((x) => String(x.read.data)), ['r2', 'r3']);
  const old = fakeStream();
  const plain = new SessionOutbox('res', false, old.write);
  for (let id = 1; id <= 3; id++) plain.send(encodeSession('res', { id, read: { data: Buffer.from(`r${id}`) } }));
  t.deepEqual(old.written.map((m) => Number(decodeRes(m).id)), [1, 2, 3]);
});
