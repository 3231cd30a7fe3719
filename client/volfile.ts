// Getting a volume's spec: from a file, or from gfsd (the primary server, then each backup
// volfile server in turn, as mount.glusterfs does).
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { mgmtService } from '../common/proto.js';
import { parseSpec, SpecError, type VolumeSpec } from '../common/spec.js';

export const DEFAULT_MGMT_PORT = 24007;

export function parseServer(s: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(s.trim());
  if (!m) throw new SpecError(`'${s}' is not a server (HOST or HOST:PORT)`);
  return { host: m[1], port: m[2] ? Number(m[2]) : DEFAULT_MGMT_PORT };
}

export async function specFromFile(file: string): Promise<VolumeSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new SpecError(`cannot read spec file ${file}: ${(e as Error).message}`);
  }
  return parseSpec(text, file);
}

function fetchOne(server: { host: string; port: number }, volume: string): Promise<VolumeSpec> {
  const Mgmt = mgmtService();
  const addr = `${server.host}:${server.port}`;
  const client = new Mgmt(addr, grpc.credentials.createInsecure());
  return new Promise<VolumeSpec>((resolve, reject) => {
    (client as any).GetSpec({ volume }, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, res: { spec_json: string }) => {
      client.close();
      if (!err) {
        try {
          resolve(parseSpec(res.spec_json, `spec of ${volume} from ${addr}`));
        } catch (e) {
          reject(e);
        }
        return;
      }
      const e = new SpecError(
        err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED
          ? `cannot reach gfsd at ${addr} (${err.details})`
          : err.details || err.message,
      );
      (e as SpecError & { retry: boolean }).retry = err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED;
      reject(e);
    });
  });
}

/** Asks each server in turn; only an unreachable server moves on to the next. */
export async function fetchSpec(servers: { host: string; port: number }[], volume: string): Promise<VolumeSpec> {
  let last: unknown;
  for (const s of servers) {
    try {
      return await fetchOne(s, volume);
    } catch (e) {
      last = e;
      if (!(e as { retry?: boolean }).retry) throw e;
    }
  }
  throw last;
}
