/**
 * Where a credential may come from, in order: `Authorization: Bearer`, then `?access_token=` (only
 * on streaming routes, where browsers cannot set headers), then the session cookie. The raw token
 * is handed to identity/ and never logged.
 */
import type { IncomingHttpHeaders } from 'node:http';

export const SESSION_COOKIE = 'portcullis_session';
/** Longest credential accepted before any parsing; capabilities may be large, keys are small. */
export const MAX_CREDENTIAL_LENGTH = 64 * 1024;

export type Credential =
  | { source: 'bearer'; token: string }
  | { source: 'query'; token: string }
  | { source: 'cookie'; token: string };

export type CredentialParse = { ok: true; credential: Credential | null } | { ok: false; reason: string };

function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function extractCredential(
  headers: IncomingHttpHeaders,
  query: unknown,
  streaming: boolean,
): CredentialParse {
  const authorization = headers.authorization;
  if (authorization !== undefined) {
    if (authorization.length > MAX_CREDENTIAL_LENGTH + 7) return { ok: false, reason: 'credential too long' };
    const match = /^Bearer[ ]+([^\s]+)\s*$/i.exec(authorization);
    if (match?.[1] === undefined) return { ok: false, reason: 'malformed authorization header' };
    return { ok: true, credential: { source: 'bearer', token: match[1] } };
  }
  if (streaming && typeof query === 'object' && query !== null && 'access_token' in query) {
    const token = (query as Record<string, unknown>).access_token;
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_CREDENTIAL_LENGTH) {
      return { ok: false, reason: 'malformed access_token' };
    }
    return { ok: true, credential: { source: 'query', token } };
  }
  const cookie = readCookie(headers.cookie, SESSION_COOKIE);
  if (cookie !== undefined && cookie.length > 0) {
    if (cookie.length > 1024) return { ok: false, reason: 'malformed session cookie' };
    return { ok: true, credential: { source: 'cookie', token: cookie } };
  }
  return { ok: true, credential: null };
}
