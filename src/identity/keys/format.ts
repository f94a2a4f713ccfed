/**
 * The API key format, in one place. A key is `pck_` + a compact HS256 JWT:
 *
 *   header  { alg: 'HS256', typ: 'pc-key+jwt', kid: <signing secret id> }
 *   claims  { v: 1, jti, sub, org, scp, iat, exp, pep }   — exactly these, nothing else
 *
 * The `pck_` prefix lets secret scanners match leaked keys; the `typ` stops any other JWT signed
 * with the same secret from being accepted as a key; `pep` is the user's pepper at signing time so
 * rotating the pepper kills every key of that user without touching each key.
 */
import { z } from 'zod';

export const API_KEY_PREFIX = 'pck_';
export const API_KEY_TYP = 'pc-key+jwt';
export const API_KEY_ALG = 'HS256';
export const API_KEY_VERSION = 1;
/** Keys are small; anything longer is refused before a single byte is decoded. */
export const MAX_API_KEY_LENGTH = 4096;
/** HMAC-SHA256 secrets shorter than the hash output weaken the MAC; refuse them at construction. */
export const MIN_SECRET_BYTES = 32;

const idString = z.string().min(1).max(128).regex(/^[A-Za-z0-9_:.-]+$/);
const epochSeconds = z.number().int().nonnegative().max(2 ** 40);

export const apiKeyClaimsSchema = z
  .object({
    v: z.literal(API_KEY_VERSION),
    jti: idString,
    sub: idString,
    org: idString,
    scp: z.array(z.string().min(1).max(64).regex(/^[A-Za-z0-9_:.*-]+$/)).max(32),
    iat: epochSeconds,
    exp: epochSeconds,
    pep: z.string().min(8).max(128),
  })
  .strict();

export type ApiKeyClaims = z.infer<typeof apiKeyClaimsSchema>;

/** The protected header, also exactly these members: a `jku`, `jwk`, `x5u` or `crit` is refused. */
export const apiKeyHeaderSchema = z
  .object({
    alg: z.literal(API_KEY_ALG),
    typ: z.literal(API_KEY_TYP),
    kid: idString,
  })
  .strict();

export type ApiKeyFailureCode = 'invalid_token' | 'token_expired' | 'token_revoked';

export type ApiKeyVerifyResult = { ok: true; claims: ApiKeyClaims } | { ok: false; code: ApiKeyFailureCode };

/** Cheap shape test used to route a bearer token; it proves nothing about validity. */
export function looksLikeApiKey(token: string): boolean {
  return token.startsWith(API_KEY_PREFIX);
}

/** Three base64url segments, none empty: the only compact JWS shape a key may have. */
export const COMPACT_JWS_PATTERN = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
