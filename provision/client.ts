// A client of the provisioner's REST API (as Heketi's go-client): a JWT per request when a user
// and key are given, and the asynchronous pattern followed to its end (202 -> /queue/<id> -> 303
// to the result, 204 for none, 500 with the error).
import { makeToken } from './auth.js';

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface RawResponse { status: number; headers: Headers; text: string }

export class ProvisionerClient {
  constructor(readonly server: string, readonly user = '', readonly key = '', readonly pollMs = 200) {}

  async raw(method: string, path: string, body?: unknown): Promise<RawResponse> {
    const headers: Record<string, string> = {};
    if (this.key) headers.Authorization = `bearer ${await makeToken(this.user || 'admin', this.key, method, new URL(path, 'http://x').pathname)}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(new URL(path, this.server), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), redirect: 'manual' });
    return { status: res.status, headers: res.headers, text: await res.text() };
  }

  /** A synchronous request: the JSON of a 2xx answer, or an ApiError with the server's text. */
  async json<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.raw(method, path, body);
    if (r.status < 200 || r.status >= 300) throw new ApiError(r.status, r.text.trim() || `HTTP ${r.status}`);
    return (r.text ? JSON.parse(r.text) : undefined) as T;
  }

  /** A request answered 202: polls the queue; returns the result's JSON (or undefined for 204). */
  async async<T = any>(method: string, path: string, body?: unknown): Promise<T | undefined> {
    const r = await this.raw(method, path, body);
    if (r.status !== 202) {
      if (r.status >= 200 && r.status < 300) return (r.text ? JSON.parse(r.text) : undefined) as T;
      throw new ApiError(r.status, r.text.trim() || `HTTP ${r.status}`);
    }
    const queue = r.headers.get('location');
    if (!queue) throw new ApiError(502, '202 without a Location header');
    for (;;) {
      const q = await this.raw('GET', queue);
      if (q.status === 200 && q.headers.get('x-pending') === 'true') {
        await new Promise((res) => setTimeout(res, this.pollMs));
        continue;
      }
      if (q.status === 303) return this.json<T>('GET', q.headers.get('location')!);
      if (q.status === 204 || q.status === 200) return undefined;
      throw new ApiError(q.status, q.text.trim() || `HTTP ${q.status}`);
    }
  }
}
