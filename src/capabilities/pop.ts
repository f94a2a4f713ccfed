/**
 * Proof of possession for capabilities bound to a key, in the manner of DPoP (RFC 9449). Each
 * request carries a fresh compact JWS signed by the bound key over method, URL and time with a
 * unique id. The key travels in the proof header; its RFC 7638 thumbprint must equal the
 * capability's `jkt`. A proof id is remembered in hot state for as long as the proof could be
 * accepted, so a replay is refused on every replica sharing that store.
 */
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, compactVerify, decodeProtectedHeader, EmbeddedJWK } from 'jose';
import { z } from 'zod';
import { constantTimeEqual, sha256Hex } from '../core/crypto.js';
import type { HotState } from '../store/state/port.js';

/** Asymmetric algorithms only, and only these two. */
export const PROOF_ALGORITHMS = ['ES256', 'EdDSA'] as const;
export const PROOF_TYPE = 'dpop+jwt';
export const MAX_PROOF_CHARS = 8192;
/** Proofs are accepted with `iat` within this distance of now, in either direction. */
export const PROOF_WINDOW_MS = 60_000;

export type ProofRefusal =
  | 'proof_missing'
  | 'proof_malformed'
  | 'proof_invalid'
  | 'proof_key_mismatch'
  | 'proof_method_mismatch'
  | 'proof_url_mismatch'
  | 'proof_token_mismatch'
  | 'proof_stale'
  | 'proof_replayed'
  | 'replay_unavailable';

export type ProofCheck = { ok: true; jti: string } | { ok: false; reason: ProofRefusal };

export interface ProofInput {
  proof: string | undefined;
  method: string;
  /** The request URL as received; query and fragment are ignored for `htu`. */
  url: string;
  /** Thumbprint the capability is bound to. */
  jkt: string;
  now: number;
  /** When given, the proof must carry `ath` = base64url(SHA-256(token)), tying it to this token. */
  accessToken?: string;
}

/** The one store operation proofs need. */
export type ReplayStore = Pick<HotState, 'setIfAbsent'>;

const proofPayloadSchema = z.object({
  jti: z.string().min(1).max(256),
  htm: z.string().min(1).max(16),
  htu: z.string().min(1).max(4096),
  iat: z.number().int().nonnegative(),
  ath: z.string().max(128).optional(),
});

/** RFC 7638 SHA-256 thumbprint of the proof's header key, or null when the proof is unreadable. */
export async function proofThumbprint(proof: string): Promise<string | null> {
  if (proof.length > MAX_PROOF_CHARS) return null;
  try {
    const header = decodeProtectedHeader(proof);
    if (typeof header.jwk !== 'object' || header.jwk === null) return null;
    return await calculateJwkThumbprint(header.jwk, 'sha256');
  } catch {
    return null;
  }
}

export async function verifyProof(input: ProofInput, replay: ReplayStore): Promise<ProofCheck> {
  const { proof } = input;
  if (proof === undefined || proof === '') return { ok: false, reason: 'proof_missing' };
  if (typeof proof !== 'string' || proof.length > MAX_PROOF_CHARS) return { ok: false, reason: 'proof_malformed' };

  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    return { ok: false, reason: 'proof_malformed' };
  }
  if (header.typ !== PROOF_TYPE || typeof header.jwk !== 'object' || header.jwk === null) return { ok: false, reason: 'proof_malformed' };

  let payloadBytes: Uint8Array;
  try {
    const verified = await compactVerify(proof, EmbeddedJWK, { algorithms: [...PROOF_ALGORITHMS] });
    payloadBytes = verified.payload;
  } catch {
    return { ok: false, reason: 'proof_invalid' };
  }

  const thumbprint = await proofThumbprint(proof);
  if (thumbprint === null || !constantTimeEqual(thumbprint, input.jkt)) return { ok: false, reason: 'proof_key_mismatch' };

  let payload: z.infer<typeof proofPayloadSchema>;
  try {
    const parsed = proofPayloadSchema.safeParse(JSON.parse(Buffer.from(payloadBytes).toString('utf8')));
    if (!parsed.success) return { ok: false, reason: 'proof_malformed' };
    payload = parsed.data;
  } catch {
    return { ok: false, reason: 'proof_malformed' };
  }

  if (payload.htm !== input.method) return { ok: false, reason: 'proof_method_mismatch' };
  const expectedHtu = targetUri(input.url);
  if (expectedHtu === null || targetUri(payload.htu) !== expectedHtu) return { ok: false, reason: 'proof_url_mismatch' };
  if (input.accessToken !== undefined) {
    const expectedAth = createHash('sha256').update(input.accessToken, 'utf8').digest('base64url');
    if (payload.ath === undefined || !constantTimeEqual(payload.ath, expectedAth)) return { ok: false, reason: 'proof_token_mismatch' };
  }
  const issuedAt = payload.iat * 1000;
  if (Math.abs(input.now - issuedAt) > PROOF_WINDOW_MS) return { ok: false, reason: 'proof_stale' };

  // Remember the id until the proof could no longer pass the window check, plus a second of slack.
  const ttlMs = Math.max(1000, issuedAt + PROOF_WINDOW_MS - input.now + 1000);
  try {
    const first = await replay.setIfAbsent(`pop:${thumbprint}`, `jti:${sha256Hex(payload.jti)}`, '1', ttlMs);
    if (!first) return { ok: false, reason: 'proof_replayed' };
  } catch {
    // Without the replay record a proof could be reused: fail closed.
    return { ok: false, reason: 'replay_unavailable' };
  }
  return { ok: true, jti: payload.jti };
}

/** RFC 9449 `htu` comparison form: scheme, host, port and path, without query or fragment. */
function targetUri(value: string): string | null {
  try {
    const url = new URL(value);
    url.search = '';
    url.hash = '';
    url.username = '';
    url.password = '';
    return url.href;
  } catch {
    return null;
  }
}
