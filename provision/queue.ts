// Heketi's asynchronous pattern: a long request answers 202 with Location: /queue/<id>; GET on it
// answers 200 + X-Pending: true while the work runs, then 303 to the result, 204 when there is no
// result (deletes), or 500 with the error text. Entries are kept in a bounded cache.
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';

export const QUEUE_ROUTE = '/queue';

type Entry = { state: 'pending' } | { state: 'done'; location?: string } | { state: 'failed'; error: string };

export const newId = (): string => randomUUID().replace(/-/g, '');

export class AsyncQueue {
  private readonly entries = new LRUCache<string, Entry>({ max: 10_000, ttl: 24 * 3600_000, ttlAutopurge: false });

  /** Starts work; returns the queue url. The work's result is a location to redirect to, or none. */
  start(work: () => Promise<string | void>, onError?: (e: unknown) => void): string {
    const id = newId();
    this.entries.set(id, { state: 'pending' });
    work().then(
      (location) => this.entries.set(id, { state: 'done', ...(location ? { location } : {}) }),
      (e) => {
        onError?.(e);
        this.entries.set(id, { state: 'failed', error: (e as Error)?.message ?? String(e) });
      },
    );
    return `${QUEUE_ROUTE}/${id}`;
  }

  get(id: string): Entry | undefined {
    return this.entries.get(id);
  }
}
