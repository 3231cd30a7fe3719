// JWT authentication as Heketi does it: HS256 tokens in "Authorization: bearer ...", signed with
// the admin or the user key chosen by the iss claim, valid between iat (120 s leeway) and exp,
// bound to one request by qsh = hex(sha256(METHOD + "&" + path)). A user token may only reach
// /volumes (and the /queue entries its requests return). Every refusal names its reason.
import { createHash } from 'node:crypto';
import { decodeJwt, errors, jwtVerify, SignJWT } from 'jose';

export const IAT_LEEWAY_S = 120;

export function qsh(method: string, path: string): string {
  return createHash('sha256').update(`${method.toUpperCase()}&${path}`).digest('hex');
}

export interface AuthKeys { admin: string; user: string }

export type AuthResult = { ok: true; issuer: 'admin' | 'user' } | { ok: false; reason: string };

const enc = new TextEncoder();

/** Paths a user (non-admin) token may use. */
export function userMayUse(path: string): boolean {
  return path === '/volumes' || path.startsWith('/volumes/') || path.startsWith('/queue/');
}

export async function authenticate(header: string | undefined, method: string, path: string, keys: AuthKeys): Promise<AuthResult> {
  if (!header) return { ok: false, reason: 'Required authorization token not found' };
  const m = /^bearer\s+(\S+)$/i.exec(header.trim());
  if (!m) return { ok: false, reason: 'Authorization header format must be Bearer {token}' };
  const token = m[1];
  let iss: unknown;
  try {
    iss = decodeJwt(token).iss;
  } catch (e) {
    return { ok: false, reason: `Invalid JWT token: ${(e as Error).message}` };
  }
  if (!iss) return { ok: false, reason: 'Invalid JWT token: Token missing iss claim' };
  if (iss !== 'admin' && iss !== 'user') return { ok: false, reason: 'Invalid JWT token: Unknown user' };
  let payload;
  try {
    ({ payload } = await jwtVerify(token, enc.encode(iss === 'admin' ? keys.admin : keys.user), {
      algorithms: ['HS256'], requiredClaims: ['exp'],
    }));
  } catch (e) {
    if (e instanceof errors.JWSSignatureVerificationFailed) {
      return { ok: false, reason: 'Invalid JWT token: signature is invalid (client and server secrets may not match)' };
    }
    if (e instanceof errors.JWTExpired) return { ok: false, reason: 'Invalid JWT token: Token is expired' };
    if (e instanceof errors.JOSEAlgNotAllowed) return { ok: false, reason: 'Invalid JWT token: Unexpected signing method (HS256 only)' };
    return { ok: false, reason: `Invalid JWT token: ${(e as Error).message}` };
  }
  const now = Math.floor(Date.now() / 1000);
  if (typeof payload.iat === 'number' && now < payload.iat - IAT_LEEWAY_S) {
    return { ok: false, reason: 'Invalid JWT token: Token used before issued (client and server clocks may differ)' };
  }
  if (payload.qsh !== qsh(method, path)) return { ok: false, reason: 'Invalid qsh claim in token' };
  if (iss === 'user' && !userMayUse(path)) return { ok: false, reason: 'Administrator access required' };
  return { ok: true, issuer: iss };
}

/** A token for one request, as Heketi's clients make them (10 minutes). */
export async function makeToken(user: string, key: string, method: string, path: string, opts: { iat?: number; exp?: number } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ qsh: qsh(method, path) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(user)
    .setIssuedAt(opts.iat ?? now)
    .setExpirationTime(opts.exp ?? now + 600)
    .sign(enc.encode(key));
}
