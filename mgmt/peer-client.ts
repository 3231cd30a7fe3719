// Calls to another gfsd's Mgmt service (a peer, or the CLI's daemon), as promises.
import * as grpc from '@grpc/grpc-js';
import { CHANNEL_OPTIONS, mgmtService } from '../common/proto.js';
import { fromServiceError } from './errors.js';

export const PEER_TIMEOUT_MS = 5_000;

/** One unary call to gfsd at address; rejects with a MgmtError. */
export function callMgmt<Res = any>(address: string, method: string, req: object, timeoutMs = PEER_TIMEOUT_MS): Promise<Res> {
  const client = new (mgmtService())(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  return new Promise<Res>((resolve, reject) => {
    const fn = (client as unknown as Record<string, Function>)[method];
    if (typeof fn !== 'function') {
      client.close();
      reject(new Error(`no rpc ${method}`));
      return;
    }
    fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err: unknown, res: Res) => {
      client.close();
      if (err) reject(fromServiceError(err));
      else resolve(res);
    });
  });
}
