/**
 * Turns a session cookie into a Principal for the authenticator. Refusals are values:
 * unknown or malformed → invalid_token; expired or revoked → session_expired; a session still
 * waiting for its second factor → mfa_required (only the MFA routes accept it, through
 * `resolveCookieSession` below); a write without the matching X-CSRF-Token → csrf_failed.
 */
import type { Clock } from '../../core/clock.js';
import { constantTimeEqual } from '../../core/crypto.js';
import type { ErrorCode } from '../../core/errors.js';
import type { Principal } from '../principal.js';
import { hashCsrfToken, type SessionRecord, type SessionStore } from './session-store.js';

export interface SessionRequestContext {
  ip: string;
  method: string;
  /** The X-CSRF-Token header, if any. */
  csrfToken: string | undefined;
}

export type SessionResolution = { ok: true; principal: Principal } | { ok: false; code: ErrorCode };

export type SessionResolver = (token: string, ctx: SessionRequestContext) => Promise<SessionResolution>;

export type CookieSessionResult = { ok: true; session: SessionRecord } | { ok: false; code: ErrorCode };

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const MAX_CSRF_TOKEN_LENGTH = 128;

export interface SessionResolverDeps {
  sessions: SessionStore;
  clock: Clock;
}

function csrfMatches(session: SessionRecord, presented: string | undefined): boolean {
  if (presented === undefined || presented.length === 0 || presented.length > MAX_CSRF_TOKEN_LENGTH) return false;
  return constantTimeEqual(hashCsrfToken(presented), session.csrfHash);
}

/**
 * Every check but the MFA one; shared by the resolver and by the routes that must accept a session
 * still waiting for its second factor (MFA verify, logout, session status).
 */
export async function resolveCookieSession(deps: SessionResolverDeps, token: string, ctx: SessionRequestContext): Promise<CookieSessionResult> {
  const session = await deps.sessions.find(token);
  if (session === null) return { ok: false, code: 'invalid_token' };
  if (session.revoked || session.user.disabled) return { ok: false, code: 'session_expired' };
  // Absolute expiry: the session is dead at expiresAt exactly.
  if (deps.clock.now() >= session.expiresAt) return { ok: false, code: 'session_expired' };
  if (!SAFE_METHODS.has(ctx.method.toUpperCase()) && !csrfMatches(session, ctx.csrfToken)) return { ok: false, code: 'csrf_failed' };
  return { ok: true, session };
}

export function sessionPrincipal(session: SessionRecord, ip: string): Principal {
  return {
    kind: 'session',
    id: session.userId,
    userId: session.userId,
    // Sessions are not bound to an org: routes that act in one take it from the path and check
    // membership, so a session can never carry authority it was not re-checked for.
    orgId: null,
    role: null,
    userType: session.user.userType,
    platformAdmin: session.user.platformAdmin,
    scopes: [],
    sessionId: session.idHash,
    ip,
  };
}

export function createSessionResolver(deps: SessionResolverDeps): SessionResolver {
  return async (token, ctx) => {
    const result = await resolveCookieSession(deps, token, ctx);
    if (!result.ok) return result;
    if (!result.session.mfaVerified) return { ok: false, code: 'mfa_required' };
    return { ok: true, principal: sessionPrincipal(result.session, ctx.ip) };
  };
}
