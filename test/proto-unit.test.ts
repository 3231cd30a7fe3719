// The wire encoding of Session messages: a bulk message leaves grpc-js as the very buffer it was
// encoded in (behind its gRPC prefix, no copy), on the client and on the server side; a small one is
// prefixed by grpc-js's own copy; both decode to what was sent. Reaches into grpc-js's modules, as
// common/proto.ts does: a grpc-js that no longer takes the shortcut fails here, not silently.
import test from 'ava';
import { createRequire } from 'node:module';
import { brickService, encodeSession } from '../common/proto.js';

const grpcInternal = createRequire(createRequire(import.meta.url).resolve('@grpc/grpc-js'));
const { CompressionFilter } = grpcInternal('./compression-filter.js') as {
  CompressionFilter: new (opts: object, shared: object) => { sendMessage(m: Promise<{ message: Buffer; flags?: number }>): Promise<{ message: Buffer }> };
};
const { BaseServerInterceptingCall } = grpcInternal('./server-interceptors.js') as {
  BaseServerInterceptingCall: { prototype: { serializeMessage(this: unknown, v: unknown): Buffer } };
};

const session = brickService().service.Session;
const decodeReq = (b: Buffer) => session.requestDeserialize(b) as { id: number; write: { fd: number; data: Buffer } };
const decodeRes = (b: Buffer) => session.responseDeserialize(b) as { id: number; read: { data: Buffer } };

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
