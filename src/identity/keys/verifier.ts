/**
 * Verifies API keys on the hot path: no database, no network, never a throw on input.
 *
 * Order of checks, cheapest and least trusting first: length limit → prefix → compact shape →
 * header (decoded, strict schema, known kid) → signature and expiry (jose, HS256 only, typ) →
 * claims (strict schema) → issued-at not in the future → optional deny-list. The pepper and the
 * member's current role are checked later against the identity cache (see authenticate.ts).
 *
 * A key that passed all of that is memoised (verified-memo.ts): later uses skip the JWS check but
 * still get the expiry and deny-list checks here, and everything authenticate.ts checks.
 */
import type { KeyObject } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import type { Clock } from '../../core/clock.js';
import {
  API_KEY_ALG,
  API_KEY_PREFIX,
  API_KEY_TYP,
  COMPACT_JWS_PATTERN,
  MAX_API_KEY_LENGTH,
  apiKeyClaimsSchema,
  apiKeyHeaderSchema,
  type ApiKeyClaims,
  type ApiKeyVerifyResult,
} from './format.js';
import { importKeySecrets } from './secrets.js';
import { DEFAULT_MEMO_ENTRIES, VerifiedKeyMemo } from './verified-memo.js';

export interface ApiKeyVerifierOptions {
  /** kid → secret: every secret whose keys are still accepted. */
  secrets: Map<string, Uint8Array>;
  clock: Clock;
  /** Allowed skew for `iat` in the future; `exp` gets none (exp equal to now is expired). Default 5 s. */
  clockToleranceSec?: number;
  /** Keys claiming a longer lifetime than this are refused even with a valid MAC. Default: no bound. */
  maxTtlMs?: number;
  /** Deny-list lookup by key id (the identity cache's); synchronous so the hot path never waits. */
  isRevoked?: (keyId: string) => boolean;
  /** Verified keys remembered (by digest) so a repeat use skips the JWS check; 0 turns it off. Default 10 000. */
  memoEntries?: number;
}

const INVALID: ApiKeyVerifyResult = { ok: false, code: 'invalid_token' };

/** Cheapest checks first: a key is bounded and prefixed before a byte of it is hashed or decoded. */
function shapedLikeKey(token: string): boolean {
  return token.length <= MAX_API_KEY_LENGTH && token.startsWith(API_KEY_PREFIX);
}

export class ApiKeyVerifier {
  private readonly keys: Map<string, KeyObject>;
  private readonly clock: Clock;
  private readonly toleranceSec: number;
  private readonly maxTtlSec: number;
  private readonly isRevoked: (keyId: string) => boolean;
  private readonly memo: VerifiedKeyMemo;

  constructor(opts: ApiKeyVerifierOptions) {
    this.keys = importKeySecrets(opts.secrets, 'keys.secrets');
    this.clock = opts.clock;
    this.toleranceSec = Math.max(0, Math.floor(opts.clockToleranceSec ?? 5));
    this.maxTtlSec = opts.maxTtlMs === undefined ? Number.POSITIVE_INFINITY : Math.floor(opts.maxTtlMs / 1000);
    this.isRevoked = opts.isRevoked ?? (() => false);
    this.memo = new VerifiedKeyMemo(opts.memoEntries ?? DEFAULT_MEMO_ENTRIES);
  }

  async verify(token: unknown): Promise<ApiKeyVerifyResult> {
    try {
      return await this.verifyUnchecked(token);
    } catch {
      // Every expected failure is handled below; this is the last guard so input can never throw.
      return INVALID;
    }
  }

  /**
   * The answer for a key already verified in full (memoised), without a promise; undefined when
   * the key is not remembered and `verify` must run.
   */
  verifyMemoised(token: string): ApiKeyVerifyResult | undefined {
    return shapedLikeKey(token) ? this.recall(VerifiedKeyMemo.digest(token)) : undefined;
  }

  private async verifyUnchecked(token: unknown): Promise<ApiKeyVerifyResult> {
    if (typeof token !== 'string' || !shapedLikeKey(token)) return INVALID;
    const digest = VerifiedKeyMemo.digest(token);
    const known = this.recall(digest);
    if (known !== undefined) return known;
    const verified = await this.verifyFully(token);
    if (verified.ok) this.memo.remember(digest, verified.claims);
    return verified;
  }

  private recall(digest: string): ApiKeyVerifyResult | undefined {
    const known = this.memo.get(digest);
    return known === undefined ? undefined : this.stillValid(digest, known);
  }

  /** What can change after a key was verified: the clock passing `exp`, and the deny-list. */
  private stillValid(digest: string, claims: ApiKeyClaims): ApiKeyVerifyResult {
    // The same rule as the JWS check: `exp` equal to the current second is expired.
    if (claims.exp <= Math.floor(this.clock.now() / 1000)) {
      this.memo.forget(digest);
      return { ok: false, code: 'token_expired' };
    }
    if (this.isRevoked(claims.jti)) return { ok: false, code: 'token_revoked' };
    return { ok: true, claims };
  }

  private async verifyFully(token: string): Promise<ApiKeyVerifyResult> {
    const jws = token.slice(API_KEY_PREFIX.length);
    if (!COMPACT_JWS_PATTERN.test(jws)) return INVALID;

    let header: unknown;
    try {
      header = decodeProtectedHeader(jws);
    } catch {
      return INVALID;
    }
    const parsedHeader = apiKeyHeaderSchema.safeParse(header);
    if (!parsedHeader.success) return INVALID;
    const key = this.keys.get(parsedHeader.data.kid);
    if (key === undefined) return INVALID;

    let payload: unknown;
    try {
      const verified = await jwtVerify(jws, key, {
        algorithms: [API_KEY_ALG],
        typ: API_KEY_TYP,
        currentDate: new Date(this.clock.now()),
        // Zero tolerance on exp: a key is dead at the second it says, on every replica.
        clockTolerance: 0,
        requiredClaims: ['exp', 'iat'],
      });
      payload = verified.payload;
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) return { ok: false, code: 'token_expired' };
      return INVALID;
    }

    const claims = apiKeyClaimsSchema.safeParse(payload);
    if (!claims.success) return INVALID;
    const nowSec = Math.floor(this.clock.now() / 1000);
    if (claims.data.iat > nowSec + this.toleranceSec) return INVALID;
    if (claims.data.exp <= claims.data.iat || claims.data.exp - claims.data.iat > this.maxTtlSec) return INVALID;
    if (this.isRevoked(claims.data.jti)) return { ok: false, code: 'token_revoked' };
    return { ok: true, claims: claims.data };
  }
}
