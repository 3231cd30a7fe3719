// The gRPC server on the CSI unix socket: each service's methods are plain async functions
// (request -> response); one wrapper logs the call and turns what they throw into a status.
import * as grpc from '@grpc/grpc-js';
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { loadProto } from '../common/proto.js';
import { toStatus } from './errors.js';

type Impl = Record<string, (req: any) => unknown>;

function csiPackage(): grpc.GrpcObject {
  return (loadProto('csi').csi as grpc.GrpcObject).v1 as grpc.GrpcObject;
}

export function csiService(name: 'Identity' | 'Controller' | 'Node'): grpc.ServiceClientConstructor {
  return csiPackage()[name] as grpc.ServiceClientConstructor;
}

function wrap(service: string, impl: object, log: Logger): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  const methods = csiService(service as 'Identity').service;
  for (const method of Object.keys(methods)) {
    const fn = (impl as Impl)[method];
    if (typeof fn !== 'function') continue; // grpc-js answers UNIMPLEMENTED
    out[method] = (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => {
      const started = Date.now();
      Promise.resolve().then(() => fn.call(impl, call.request)).then(
        (res) => {
          log.debug({ method, ms: Date.now() - started }, 'csi call');
          cb(null, res as object);
        },
        (e) => {
          const st = toStatus(e);
          (st.code === grpc.status.INTERNAL ? log.error.bind(log) : log.info.bind(log))({ method, code: grpc.status[st.code], err: st.details }, 'csi call failed');
          cb({ code: st.code, details: st.details });
        },
      );
    };
  }
  return out;
}

/** Listens on endpoint (unix:///path or unix:/path); a stale socket file is removed first. */
export async function serve(endpoint: string, services: Record<string, object>, log: Logger): Promise<grpc.Server> {
  const m = /^unix:(?:\/\/)?(\/.*)$/.exec(endpoint);
  if (!m) throw new Error(`--endpoint must be unix:///PATH, not '${endpoint}'`);
  await rm(m[1], { force: true });
  const server = new grpc.Server();
  for (const [name, impl] of Object.entries(services)) server.addService(csiService(name as 'Identity').service, wrap(name, impl, log));
  await new Promise<void>((res, rej) => server.bindAsync(`unix://${m[1]}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
  return server;
}
