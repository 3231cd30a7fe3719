// The REST surface: Heketi's routes (apps/glusterfs/app.go) on node:http, JWT in front of all but
// /hello, errors as Go's http.Error sends them (text/plain, the message and a newline).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authenticate } from './auth.js';
import { dbCheck } from './check.js';
import { HttpError, notFound, unprocessable } from './errors.js';
import type { MockExecutor } from './executor.js';
import type { Provisioner } from './provisioner.js';
import { QUEUE_ROUTE } from './queue.js';
import {
  clusterCreate, clusterDelete, clusterSetFlags, deviceAdd, deviceDelete, deviceResync, deviceSetState,
  nodeAdd, nodeDelete, nodeSetState,
} from './topology-ops.js';
import { clusterInfo, deviceInfo, nodeInfo, topologyInfo, volumeInfo } from './views.js';
import { volumeCreate, volumeDelete, volumeExpand } from './volumes.js';

type Reply =
  | { status: number; json?: unknown; text?: string; location?: string; headers?: Record<string, string> };

type Handler = (p: Provisioner, id: string, body: any) => Promise<Reply> | Reply;

const ID = '([A-Fa-f0-9]+)';
const accepted = (url: string): Reply => ({ status: 202, location: url });
const ok = (json: unknown, status = 200): Reply => ({ status, json });

function must<T>(v: T | undefined): T {
  if (v === undefined) throw notFound();
  return v;
}

const ROUTES: [string, RegExp, Handler][] = [
  ['GET', new RegExp(`^${QUEUE_ROUTE}/${ID}$`), (p, id) => {
    const e = p.queue.get(id);
    if (!e) throw notFound();
    if (e.state === 'pending') return { status: 200, headers: { 'X-Pending': 'true' } };
    if (e.state === 'failed') return { status: 500, text: e.error };
    return e.location ? { status: 303, location: e.location } : { status: 204 };
  }],
  ['POST', /^\/clusters$/, (p, _id, b) => ok(clusterInfo(clusterCreate(p, b ?? {})), 201)],
  ['POST', new RegExp(`^/clusters/${ID}/flags$`), (p, id, b) => { clusterSetFlags(p, id, b ?? {}); return { status: 200 }; }],
  ['GET', new RegExp(`^/clusters/${ID}$`), (p, id) => ok(clusterInfo(must(p.db.get('cluster', id))))],
  ['GET', /^\/clusters$/, (p) => ok({ clusters: p.db.list('cluster').map((c) => c.id) })],
  ['DELETE', new RegExp(`^/clusters/${ID}$`), (p, id) => { clusterDelete(p, id); return { status: 200 }; }],

  ['POST', /^\/nodes$/, (p, _id, b) => accepted(nodeAdd(p, b ?? {}))],
  ['GET', new RegExp(`^/nodes/${ID}$`), (p, id) => ok(nodeInfo(p.db, must(p.db.get('node', id))))],
  ['DELETE', new RegExp(`^/nodes/${ID}$`), (p, id) => accepted(nodeDelete(p, id))],
  ['POST', new RegExp(`^/nodes/${ID}/state$`), (p, id, b) => accepted(nodeSetState(p, id, b ?? {}))],

  ['POST', /^\/devices$/, (p, _id, b) => accepted(deviceAdd(p, b ?? {}))],
  ['GET', new RegExp(`^/devices/${ID}$`), (p, id) => ok(deviceInfo(p.db, must(p.db.get('device', id))))],
  ['DELETE', new RegExp(`^/devices/${ID}$`), (p, id) => accepted(deviceDelete(p, id))],
  ['POST', new RegExp(`^/devices/${ID}/state$`), (p, id, b) => accepted(deviceSetState(p, id, b ?? {}))],
  ['GET', new RegExp(`^/devices/${ID}/resync$`), (p, id) => accepted(deviceResync(p, id))],

  ['POST', /^\/volumes$/, (p, _id, b) => accepted(volumeCreate(p, b ?? {}))],
  ['GET', new RegExp(`^/volumes/${ID}$`), (p, id) => ok(volumeInfo(p.db, must(p.db.get('volume', id)), p.cfg.glusterfs.gfsd_port))],
  ['POST', new RegExp(`^/volumes/${ID}/expand$`), (p, id, b) => accepted(volumeExpand(p, id, b ?? {}))],
  ['DELETE', new RegExp(`^/volumes/${ID}$`), (p, id) => accepted(volumeDelete(p, id))],
  ['GET', /^\/volumes$/, (p) => ok({ volumes: p.db.list('volume').map((v) => v.id) })],

  ['GET', /^\/topology$/, (p) => ok(topologyInfo(p.db, p.cfg.glusterfs.gfsd_port))],
  ['GET', /^\/db\/check$/, async (p) => ok(await p.exclusive(() => dbCheck(p)))],
  ['GET', /^\/operations$/, (p) => ok({ total: p.db.list('op').length, in_flight: p.db.list('op').length, stale: 0, new: 0 })],
  ['GET', /^\/operations\/pending$/, (p) => ok({ pendingoperations: p.db.list('op') })],
  ['GET', /^\/internal\/executor\/commands$/, (p) => ok({ executor: p.ex.name, commands: p.ex.name === 'mock' ? (p.ex as MockExecutor).commands : [] })],
];

function send(res: ServerResponse, r: Reply): void {
  for (const [k, v] of Object.entries(r.headers ?? {})) res.setHeader(k, v);
  if (r.location) res.setHeader('Location', r.location);
  if (r.json !== undefined) {
    res.writeHead(r.status, { 'Content-Type': 'application/json; charset=UTF-8' });
    res.end(`${JSON.stringify(r.json)}\n`);
  } else if (r.text !== undefined) {
    res.writeHead(r.status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end(`${r.text}\n`);
  } else {
    res.writeHead(r.status);
    res.end();
  }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 8 * 1024 * 1024) throw unprocessable();
    chunks.push(c as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw unprocessable();
  }
}

export function requestHandler(p: Provisioner): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    (async () => {
      if (method === 'GET' && path === '/hello') return { status: 200, text: 'Hello from gfs-provisioner' } as Reply;
      const route = ROUTES.find(([m, re]) => m === method && re.test(path));
      if (p.cfg.use_auth) {
        const a = await authenticate(req.headers.authorization, method, path, { admin: p.cfg.jwt.admin.key, user: p.cfg.jwt.user.key });
        if (!a.ok) return { status: 401, text: a.reason } as Reply;
      }
      if (!route) return { status: 404, text: '404 page not found' } as Reply;
      const id = route[1].exec(path)?.[1] ?? '';
      const body = method === 'POST' ? await readBody(req) : undefined;
      return await route[2](p, id, body);
    })().then(
      (r) => send(res, r),
      (e) => {
        if (e instanceof HttpError) send(res, { status: e.status, text: e.message });
        else {
          p.log.error({ err: e, method, path }, 'request failed');
          send(res, { status: 500, text: (e as Error)?.message ?? String(e) });
        }
      },
    );
  };
}
