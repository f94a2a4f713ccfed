/**
 * Verifies OIDC bearer tokens from the configured issuers with jose and a cached remote JWKS.
 *
 * The issuer is picked by the token's (unverified) `iss`, which only chooses which configuration
 * to verify against; jose then enforces that same issuer, the audience, the algorithm allow-list
 * (asymmetric only), the signature and the time claims. An unknown `kid` refetches the JWKS at
 * most once per cooldown (jose's cooldownDuration), so a flood of made-up kids cannot hammer the
 * IdP. `exp` gets no tolerance (a token is dead at the second it says); `nbf`/`iat` get the
 * issuer's small clock tolerance.
 *
 * Mapping (chosen on purpose): an OIDC caller is NOT matched to a local user. The principal is
 * `oidc:{issuer name}:{sub}` and carries the token's org and roles, where roles are bounded to the
 * org role set and capped at the issuer's `maxRole`. OIDC principals are never platform admins.
 */
import { createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Clock } from '../../core/clock.js';
import { resolveUserType, type OrgRole, type UserType } from '../principal.js';
import { ROLE_RANK, type OidcIssuerConfig } from './config.js';

export const MAX_OIDC_TOKEN_LENGTH = 16 * 1024;
const JWT_PATTERN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const ORG_ID_PATTERN = /^[A-Za-z0-9_:.-]{1,64}$/;

export interface OidcIdentity {
  issuerName: string;
  subject: string;
  orgId: string | null;
  role: OrgRole | null;
  userType: UserType;
}

export type OidcFailureCode = 'invalid_token' | 'token_expired' | 'dependency_unavailable';
export type OidcVerifyResult = { ok: true; identity: OidcIdentity } | { ok: false; code: OidcFailureCode };

export interface OidcVerifierOptions {
  issuers: OidcIssuerConfig[];
  clock: Clock;
  /** Minimum time between two JWKS fetches for an unknown kid. Default 30 s. */
  jwksCooldownMs?: number;
  /** A fetched JWKS is used for this long before it is refreshed. Default 10 min. */
  jwksCacheMaxAgeMs?: number;
  jwksTimeoutMs?: number;
}

/** Thrown inside the key resolver when the IdP cannot be asked; mapped to 503, not 401. */
class JwksUnavailable extends Error {}

interface IssuerRuntime {
  config: OidcIssuerConfig;
  getKey: JWTVerifyGetKey;
}

function isFetchFailure(err: unknown): boolean {
  if (!(err instanceof joseErrors.JOSEError)) return true;
  return err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid || err.code === 'ERR_JOSE_GENERIC';
}

export function looksLikeJwt(token: string): boolean {
  return token.length <= MAX_OIDC_TOKEN_LENGTH && JWT_PATTERN.test(token);
}

export class OidcVerifier {
  private readonly byIssuer = new Map<string, IssuerRuntime>();
  private readonly clock: Clock;

  constructor(opts: OidcVerifierOptions) {
    this.clock = opts.clock;
    for (const config of opts.issuers) {
      const remote = createRemoteJWKSet(new URL(config.jwksUrl), {
        cooldownDuration: opts.jwksCooldownMs ?? 30_000,
        cacheMaxAge: opts.jwksCacheMaxAgeMs ?? 600_000,
        timeoutDuration: opts.jwksTimeoutMs ?? 5_000,
      });
      const getKey: JWTVerifyGetKey = async (header, token) => {
        try {
          return await remote(header, token);
        } catch (err) {
          throw isFetchFailure(err) ? new JwksUnavailable('JWKS unavailable', { cause: err }) : err;
        }
      };
      this.byIssuer.set(config.issuer, { config, getKey });
    }
  }

  get configured(): boolean {
    return this.byIssuer.size > 0;
  }

  async verify(token: unknown): Promise<OidcVerifyResult> {
    try {
      return await this.verifyUnchecked(token);
    } catch {
      return { ok: false, code: 'invalid_token' };
    }
  }

  private async verifyUnchecked(token: unknown): Promise<OidcVerifyResult> {
    if (typeof token !== 'string' || !looksLikeJwt(token)) return { ok: false, code: 'invalid_token' };
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      return { ok: false, code: 'invalid_token' };
    }
    const runtime = typeof unverified.iss === 'string' ? this.byIssuer.get(unverified.iss) : undefined;
    if (runtime === undefined) return { ok: false, code: 'invalid_token' };
    const { config } = runtime;

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, runtime.getKey, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: config.algorithms,
        clockTolerance: config.clockToleranceSec,
        currentDate: new Date(this.clock.now()),
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      if (err instanceof JwksUnavailable) return { ok: false, code: 'dependency_unavailable' };
      if (err instanceof joseErrors.JWTExpired) return { ok: false, code: 'token_expired' };
      return { ok: false, code: 'invalid_token' };
    }

    const nowSec = Math.floor(this.clock.now() / 1000);
    if (typeof payload.exp !== 'number' || payload.exp <= nowSec) return { ok: false, code: 'token_expired' };
    if (typeof payload.iat === 'number' && payload.iat > nowSec + config.clockToleranceSec) return { ok: false, code: 'invalid_token' };
    const identity = mapClaims(payload, config);
    return identity === null ? { ok: false, code: 'invalid_token' } : { ok: true, identity };
  }
}

function stringList(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/[\s,]+/).slice(0, 64);
  if (Array.isArray(value)) return value.slice(0, 64).filter((v): v is string => typeof v === 'string');
  return [];
}

/** Token claims → identity; null when a configured claim is present but malformed (fail closed). */
export function mapClaims(payload: JWTPayload, config: OidcIssuerConfig): OidcIdentity | null {
  const subject = payload[config.claims.user];
  if (typeof subject !== 'string' || subject.length === 0 || subject.length > 200) return null;

  let orgId: string | null = null;
  if (config.claims.org !== undefined) {
    const org = payload[config.claims.org];
    if (org !== undefined) {
      if (typeof org !== 'string' || !ORG_ID_PATTERN.test(org)) return null;
      orgId = org;
    }
  }

  let role: OrgRole | null = null;
  if (orgId !== null && config.claims.roles !== undefined) {
    const cap = ROLE_RANK[config.maxRole];
    for (const name of stringList(payload[config.claims.roles])) {
      if (!Object.prototype.hasOwnProperty.call(ROLE_RANK, name)) continue;
      // Above the cap is clamped down to it, never skipped up past it.
      const candidate = ROLE_RANK[name as OrgRole] > cap ? config.maxRole : (name as OrgRole);
      if (role === null || ROLE_RANK[candidate] > ROLE_RANK[role]) role = candidate;
    }
  }

  let userType: UserType = 'registered';
  if (config.claims.userType !== undefined) {
    const types = new Set(stringList(payload[config.claims.userType]));
    userType = resolveUserType({ privileged: types.has('privileged'), paid: types.has('paid') });
  }
  return { issuerName: config.name, subject, orgId, role, userType };
}
