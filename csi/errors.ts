// CSI answers errors as gRPC status codes (spec.md "Error Scheme"): one error class carrying the
// code, one place (toStatus) that turns anything thrown into a status, and one mapping from the
// provisioner's HTTP answers.
import { status } from '@grpc/grpc-js';
import { ApiError } from '../provision/client.js';

export class CsiError extends Error {
  constructor(readonly code: status, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CsiError';
  }
}

export const invalidArgument = (m: string) => new CsiError(status.INVALID_ARGUMENT, m);
export const notFound = (m: string) => new CsiError(status.NOT_FOUND, m);
export const alreadyExists = (m: string) => new CsiError(status.ALREADY_EXISTS, m);
export const outOfRange = (m: string) => new CsiError(status.OUT_OF_RANGE, m);
export const failedPrecondition = (m: string) => new CsiError(status.FAILED_PRECONDITION, m);
export const internal = (m: string, cause?: unknown) => new CsiError(status.INTERNAL, m, { cause });

/** What the provisioner's REST answer means to a CSI caller. */
export function fromApi(e: unknown, what: string): CsiError {
  if (e instanceof CsiError) return e;
  if (e instanceof ApiError) {
    const m = `${what}: provisioner answered ${e.status}: ${e.message}`;
    if (e.status === 400) return new CsiError(status.INVALID_ARGUMENT, m, { cause: e });
    if (e.status === 401) return new CsiError(status.UNAUTHENTICATED, m, { cause: e });
    if (e.status === 404) return new CsiError(status.NOT_FOUND, m, { cause: e });
    if (e.status === 409) return new CsiError(status.ABORTED, m, { cause: e });
    if (/No space/.test(e.message)) return new CsiError(status.RESOURCE_EXHAUSTED, m, { cause: e });
    return new CsiError(status.INTERNAL, m, { cause: e });
  }
  // fetch failed: the provisioner is not reachable; the sidecar retries.
  return new CsiError(status.UNAVAILABLE, `${what}: provisioner unreachable: ${(e as Error)?.message ?? e}`, { cause: e });
}

export function toStatus(e: unknown): { code: status; details: string } {
  if (e instanceof CsiError) return { code: e.code, details: e.message };
  return { code: status.INTERNAL, details: (e as Error)?.message ?? String(e) };
}
