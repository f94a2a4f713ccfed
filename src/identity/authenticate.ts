/**
 * Credential → Principal, once per request. The routing is by shape, not by trust:
 *
 *   no credential             → anonymous (`anon:{ip}`) where the route allows it, else null (→ 401)
 *   session cookie            → the session resolver (identity/local)
 *   bearer/query `pck_…`      → API key: signature, deny-list, then the identity cache decides —
 *                               pepper must be the user's current one, user not disabled, and the
 *                               role is the member's CURRENT role (a demoted member's key acts
 *                               with the lower role; a removed member's key is refused)
 *   bearer/query compact JWT  → OIDC, when issuers are configured
 *   bearer `pcap1.…`          → a capability with a model grant (capabilities/http), acting for its
 *                               user with the `models` scope; user state and role checked as for keys
 *   anything else             → invalid_token
 *
 * A malformed or invalid credential is always a refusal with a stable code, never a downgrade to
 * anonymous. The credential never appears in a result, a log line or an error.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { constantTimeEqual } from '../core/crypto.js';
import { AppError, type ErrorCode } from '../core/errors.js';
import type { Credential } from '../http/credentials.js';
import type { CachedUser, IdentityCache } from './cache/index.js';
import type { OrgRole } from './principal.js';
import type { ApiKeyClaims, ApiKeyVerifier } from './keys/index.js';
import { looksLikeApiKey } from './keys/index.js';
import type { OidcVerifier } from './oidc/index.js';
import { looksLikeJwt } from './oidc/index.js';
import { anonymousPrincipal, type Principal } from './principal.js';
import { looksLikeCapability, type CapabilityPrincipalResolver } from '../capabilities/http/model-auth.js';

export interface AuthenticateContext {
  ip: string;
  allowAnonymous: boolean;
  /** Needed by the session resolver for CSRF on cookie-authenticated writes. */
  method?: string;
  csrfToken?: string | undefined;
  /** Request headers and socket peer: capabilities read their binding evidence from them. */
  headers?: IncomingHttpHeaders;
  peerAddress?: string;
  /** Absolute URL without query, for proofs of possession. */
  url?: string;
}

export type AuthenticateResult = { ok: true; principal: Principal | null } | { ok: false; code: ErrorCode; retryAfterSeconds?: number };

/** Session cookies are resolved by identity/local; this is the hook it plugs into. */
export type SessionResolver = (
  token: string,
  ctx: { ip: string; method: string; csrfToken: string | undefined },
) => Promise<{ ok: true; principal: Principal } | { ok: false; code: ErrorCode }>;

export interface AuthenticatorDeps {
  /** Construct it with `isRevoked: (id) => identity.isRevoked(id)`; the authenticator checks again anyway. */
  keys: ApiKeyVerifier;
  identity: Pick<IdentityCache, 'ready' | 'isRevoked' | 'getUser' | 'getRole' | 'peekUser' | 'peekRole'>;
  oidc?: OidcVerifier;
  sessionResolver?: SessionResolver;
  /** Resolves `pcap1.` capabilities on model routes; absent when the broker is not configured. */
  capabilities?: CapabilityPrincipalResolver;
}

/** Answers without a promise when everything it needs is cached (see knownKeyVerdict); await it either way. */
export type Authenticator = (credential: Credential | null, ctx: AuthenticateContext) => AuthenticateResult | Promise<AuthenticateResult>;

const refuse = (code: ErrorCode): AuthenticateResult => ({ ok: false, code });

export function createAuthenticator(deps: AuthenticatorDeps): Authenticator {
  /** A key's principal from its user and member records (both current), or the refusal. */
  function principalOfKey(claims: ApiKeyClaims, user: CachedUser | null, role: OrgRole | null, ip: string): AuthenticateResult {
    // A deleted or disabled user, or a rotated pepper: every key of that user is dead at once.
    if (user === null || user.disabled || !constantTimeEqual(user.pepper, claims.pep)) return refuse('token_revoked');
    // A platform admin may hold a key for an org they are not a member of; anyone else must be one now.
    if (role === null && !user.platformAdmin) return refuse('token_revoked');
    return {
      ok: true,
      principal: {
        kind: 'api_key',
        id: claims.jti,
        userId: claims.sub,
        orgId: claims.org,
        role,
        userType: user.userType,
        platformAdmin: user.platformAdmin,
        scopes: claims.scp,
        keyId: claims.jti,
        ip,
      },
    };
  }

  async function principalForKey(claims: ApiKeyClaims, ip: string): Promise<AuthenticateResult> {
    if (deps.identity.isRevoked(claims.jti)) return refuse('token_revoked');
    const user = await deps.identity.getUser(claims.sub);
    if (user === null || user.disabled) return refuse('token_revoked');
    return principalOfKey(claims, user, await deps.identity.getRole(claims.org, claims.sub), ip);
  }

  /**
   * The last verdict per verified key, reused while the key's user record and role are the same
   * cache entries (the cache replaces an entry when it reloads or is told of a change) and the
   * caller's address is the same: a busy key then costs no new principal per request. Frozen, so
   * nothing downstream can change what later requests see.
   */
  const lastKeyVerdicts = new WeakMap<ApiKeyClaims, { user: CachedUser; role: OrgRole | null; ip: string; verdict: AuthenticateResult }>();

  function keyVerdict(claims: ApiKeyClaims, user: CachedUser, role: OrgRole | null, ip: string): AuthenticateResult {
    const last = lastKeyVerdicts.get(claims);
    if (last !== undefined && last.user === user && last.role === role && last.ip === ip) return last.verdict;
    const verdict = principalOfKey(claims, user, role, ip);
    if (verdict.ok && verdict.principal !== null) {
      Object.freeze(verdict.principal);
      lastKeyVerdicts.set(claims, { user, role, ip, verdict: Object.freeze(verdict) });
    }
    return verdict;
  }

  /**
   * The hot path: a key verified before (memoised) whose user and role are fresh in the cache is
   * decided without a promise — the same checks, in the same order. Undefined: take the slow path.
   */
  function knownKeyVerdict(token: string, ip: string): AuthenticateResult | undefined {
    if (!deps.identity.ready) return undefined;
    const verified = deps.keys.verifyMemoised(token);
    if (verified === undefined) return undefined;
    if (!verified.ok) return refuse(verified.code);
    const { claims } = verified;
    if (deps.identity.isRevoked(claims.jti)) return refuse('token_revoked');
    const user = deps.identity.peekUser(claims.sub);
    if (user === undefined) return undefined;
    if (user === null || user.disabled) return refuse('token_revoked');
    const role = deps.identity.peekRole(claims.org, claims.sub);
    return role === undefined ? undefined : keyVerdict(claims, user, role, ip);
  }

  async function principalForCapability(token: string, resolver: CapabilityPrincipalResolver, ctx: AuthenticateContext): Promise<AuthenticateResult> {
    if (!deps.identity.ready) return refuse('not_ready');
    const resolved = await resolver(token, {
      ip: ctx.ip,
      method: ctx.method ?? 'GET',
      ...(ctx.headers === undefined ? {} : { headers: ctx.headers }),
      ...(ctx.peerAddress === undefined ? {} : { peerAddress: ctx.peerAddress }),
      ...(ctx.url === undefined ? {} : { url: ctx.url }),
    });
    if (!resolved.ok) return refuse(resolved.code);
    const { principal } = resolved;
    if (principal.userId === null || principal.orgId === null) return refuse('capability_invalid');
    // A capability acts for its user: a disabled user or a removed member ends it at once.
    const user = await deps.identity.getUser(principal.userId);
    if (user === null || user.disabled) return refuse('capability_revoked');
    const role = await deps.identity.getRole(principal.orgId, principal.userId);
    if (role === null) return refuse('capability_revoked');
    return { ok: true, principal: { ...principal, role, userType: user.userType } };
  }

  async function authenticateToken(token: string, ip: string, ctx: AuthenticateContext): Promise<AuthenticateResult> {
    if (deps.capabilities !== undefined && looksLikeCapability(token)) return principalForCapability(token, deps.capabilities, ctx);
    if (looksLikeApiKey(token)) {
      // Before the deny-list is loaded nothing is known about revocations: fail closed.
      if (!deps.identity.ready) return refuse('not_ready');
      const verified = await deps.keys.verify(token);
      if (!verified.ok) return refuse(verified.code);
      return principalForKey(verified.claims, ip);
    }
    if (deps.oidc?.configured === true && looksLikeJwt(token)) {
      const verified = await deps.oidc.verify(token);
      if (!verified.ok) return refuse(verified.code);
      const { identity } = verified;
      return {
        ok: true,
        principal: {
          kind: 'oidc',
          id: `oidc:${identity.issuerName}:${identity.subject}`,
          userId: `oidc:${identity.issuerName}:${identity.subject}`,
          orgId: identity.orgId,
          role: identity.role,
          userType: identity.userType,
          platformAdmin: false,
          scopes: [],
          ip,
        },
      };
    }
    return refuse('invalid_token');
  }

  async function authenticateSlowly(credential: Credential, ctx: AuthenticateContext): Promise<AuthenticateResult> {
    try {
      if (credential.source === 'cookie') {
        if (deps.sessionResolver === undefined) return refuse('invalid_credentials');
        return await deps.sessionResolver(credential.token, { ip: ctx.ip, method: ctx.method ?? 'GET', csrfToken: ctx.csrfToken });
      }
      return await authenticateToken(credential.token, ctx.ip, ctx);
    } catch (err) {
      // The record store being down with nothing cached is a 503, not a 401: the credential may be fine.
      if (err instanceof AppError && err.code === 'dependency_unavailable') {
        return err.retryAfterSeconds === undefined ? refuse('dependency_unavailable') : { ok: false, code: 'dependency_unavailable', retryAfterSeconds: err.retryAfterSeconds };
      }
      // Anything else is a bug, not a verdict on the credential: let the HTTP layer log it and answer 500.
      throw err;
    }
  }

  return function authenticate(credential, ctx) {
    if (credential === null) return { ok: true, principal: ctx.allowAnonymous ? anonymousPrincipal(ctx.ip) : null };
    if (credential.source !== 'cookie' && looksLikeApiKey(credential.token)) {
      const known = knownKeyVerdict(credential.token, ctx.ip);
      if (known !== undefined) return known;
    }
    return authenticateSlowly(credential, ctx);
  };
}
