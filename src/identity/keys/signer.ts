/**
 * Mints API keys. Input is validated strictly (an unknown field is refused, not dropped), the
 * claims are built here and validated again against the one claims schema the verifier uses, so a
 * key this signer makes is always a key the verifier can accept.
 */
import type { KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { z } from 'zod';
import { ConfigError } from '../../config/errors.js';
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { API_KEY_ALG, API_KEY_PREFIX, API_KEY_TYP, API_KEY_VERSION, apiKeyClaimsSchema, type ApiKeyClaims } from './format.js';
import { importKeySecrets } from './secrets.js';
import { issuePath } from '../../core/issues.js';

export const DEFAULT_KEY_TTL_MS = 30 * 24 * 60 * 60 * 1000;

export interface ApiKeySignerOptions {
  /** kid → secret; the signing secret plus any still accepted for verification. */
  secrets: Map<string, Uint8Array>;
  signingKid: string;
  clock: Clock;
  defaultTtlMs: number;
  maxTtlMs: number;
}

export interface SignKeyInput {
  keyId: string;
  userId: string;
  orgId: string;
  scopes: string[];
  pepper: string;
  ttlMs?: number;
}

const signInputSchema = z
  .object({
    keyId: z.string(),
    userId: z.string(),
    orgId: z.string(),
    scopes: z.array(z.string()),
    pepper: z.string(),
    ttlMs: z.number().int().positive().optional(),
  })
  .strict();

export class ApiKeySigner {
  private readonly key: KeyObject;
  private readonly kid: string;
  private readonly clock: Clock;
  private readonly defaultTtlMs: number;
  private readonly maxTtlMs: number;

  constructor(opts: ApiKeySignerOptions) {
    const keys = importKeySecrets(opts.secrets, 'keys.secrets');
    const key = keys.get(opts.signingKid);
    if (key === undefined) {
      throw ConfigError.single('keys.signingKid', `no secret has the id "${opts.signingKid.slice(0, 40)}"`, 'name one of the configured key secrets');
    }
    if (!Number.isInteger(opts.maxTtlMs) || opts.maxTtlMs < 1000) {
      throw ConfigError.single('keys.maxTtl', 'the maximum key lifetime must be at least one second', 'set a positive duration');
    }
    if (!Number.isInteger(opts.defaultTtlMs) || opts.defaultTtlMs < 1000 || opts.defaultTtlMs > opts.maxTtlMs) {
      throw ConfigError.single('keys.defaultTtl', 'the default key lifetime must be between one second and the maximum', 'lower keys.defaultTtl or raise keys.maxTtl');
    }
    this.key = key;
    this.kid = opts.signingKid;
    this.clock = opts.clock;
    this.defaultTtlMs = opts.defaultTtlMs;
    this.maxTtlMs = opts.maxTtlMs;
  }

  /** Throws AppError('validation_failed') on a bad input or a lifetime over the maximum. */
  async sign(input: SignKeyInput): Promise<{ token: string; expiresAt: Date }> {
    const parsedInput = signInputSchema.safeParse(input);
    if (!parsedInput.success) {
      throw new AppError('validation_failed', { message: 'The key request has invalid or unknown fields.' });
    }
    const ttlMs = parsedInput.data.ttlMs ?? this.defaultTtlMs;
    if (ttlMs > this.maxTtlMs) {
      throw new AppError('validation_failed', {
        message: `The key lifetime exceeds the maximum of ${Math.floor(this.maxTtlMs / 1000)} seconds.`,
        details: { field: 'ttl' },
      });
    }
    const iat = Math.floor(this.clock.now() / 1000);
    // Rounded down so a key never outlives the lifetime asked for; at least one second.
    const exp = iat + Math.max(1, Math.floor(ttlMs / 1000));
    const candidate: ApiKeyClaims = {
      v: API_KEY_VERSION,
      jti: input.keyId,
      sub: input.userId,
      org: input.orgId,
      scp: input.scopes,
      iat,
      exp,
      pep: input.pepper,
    };
    const claims = apiKeyClaimsSchema.safeParse(candidate);
    if (!claims.success) {
      const field = issuePath('', claims.error.issues[0]?.path ?? [], 'claims');
      throw new AppError('validation_failed', { message: `The key claim "${field}" is invalid.`, details: { field } });
    }
    const jwt = await new SignJWT(claims.data).setProtectedHeader({ alg: API_KEY_ALG, typ: API_KEY_TYP, kid: this.kid }).sign(this.key);
    return { token: API_KEY_PREFIX + jwt, expiresAt: new Date(exp * 1000) };
  }
}
