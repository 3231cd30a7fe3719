// One error for every refused management operation: a gRPC status plus the message the CLI prints
// after "failed: ". Converted to and from gRPC in one place each.
import * as grpc from '@grpc/grpc-js';

export class MgmtError extends Error {
  readonly code: grpc.status;
  constructor(code: grpc.status, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MgmtError';
    this.code = code;
  }
}

export const notFound = (m: string) => new MgmtError(grpc.status.NOT_FOUND, m);
export const invalid = (m: string) => new MgmtError(grpc.status.INVALID_ARGUMENT, m);
export const precondition = (m: string) => new MgmtError(grpc.status.FAILED_PRECONDITION, m);
export const exists = (m: string) => new MgmtError(grpc.status.ALREADY_EXISTS, m);
export const unavailable = (m: string) => new MgmtError(grpc.status.UNAVAILABLE, m);

/** Trailing metadata on every refusal gfsd itself sends, telling it apart from a transport failure. */
export const FROM_GFSD = 'gfs-mgmt';

/** Server side: any thrown value as a gRPC error whose details are the message. */
export function toServiceError(err: unknown): grpc.ServiceError {
  const code = err instanceof MgmtError ? err.code : grpc.status.INTERNAL;
  const message = err instanceof Error ? err.message : String(err);
  const metadata = new grpc.Metadata();
  metadata.set(FROM_GFSD, '1');
  return Object.assign(new Error(message), { code, details: message, metadata }) as grpc.ServiceError;
}

/** Client side: a gRPC failure as a MgmtError; an unreachable daemon is UNAVAILABLE. */
export function fromServiceError(err: unknown): MgmtError {
  if (err instanceof MgmtError) return err;
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e.code === 'number') return new MgmtError(e.code, e.details || e.message || 'unknown error', { cause: err });
  return new MgmtError(grpc.status.INTERNAL, (err as Error)?.message ?? String(err), { cause: err });
}

/** The daemon could not be reached (or did not answer in time), as opposed to refusing. */
export function isUnreachable(err: unknown): boolean {
  const e = (err instanceof MgmtError ? err.cause ?? err : err) as Partial<grpc.ServiceError>;
  if (e.metadata?.get(FROM_GFSD).length) return false;
  return e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED;
}
