/**
 * Capability tokens: `pcap1.<kid>.<base64url(nonce || ciphertext || tag)>`, AES-256-GCM.
 *
 * The associated data binds the version prefix, the key id and the binding (container id or key
 * thumbprint), so a token moved to another container or key fails authentication exactly like a
 * forgery: the opener learns nothing about which part was wrong. Opening never throws on input; it
 * returns a typed refusal. Checks run cheapest-first and the size limit comes before any decoding.
 * A token that authenticated before is not decrypted again (the keyring's memo, opened-memo.ts);
 * its clock-dependent checks run on every open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AppError } from '../core/errors.js';
import {
  CAPABILITY_PURPOSE,
  capabilityClaimsSchema,
  sameBinding,
  type CapabilityBinding,
  type CapabilityClaims,
} from './claims.js';
import type { CapabilityKey, CapabilityKeyring } from './keyring.js';
import { OpenedCapabilityMemo } from './opened-memo.js';

export const CAPABILITY_PREFIX = 'pcap1';
export const MAX_TOKEN_CHARS = 65_536;
/** `issuedAt` further ahead than this is a forgery, not clock skew. */
export const MAX_FUTURE_ISSUED_AT_MS = 60_000;

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const TOKEN_PATTERN = /^pcap1\.([A-Za-z0-9_-]{1,32})\.([A-Za-z0-9_-]+)$/;

export type OpenRefusal =
  | 'malformed'
  | 'too_large'
  | 'unknown_key'
  | 'retired_key'
  | 'invalid'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_purpose'
  | 'lifetime_exceeded';

export type OpenResult = { ok: true; claims: CapabilityClaims } | { ok: false; reason: OpenRefusal };

/** Unambiguous associated data: a JSON array cannot be re-split into different parts. */
export function associatedData(prefix: string, kid: string, binding: CapabilityBinding): Buffer {
  const value = binding.type === 'container' ? binding.containerId : binding.jkt;
  return Buffer.from(JSON.stringify([prefix, kid, binding.type, value]), 'utf8');
}

/**
 * Seals validated claims with the keyring's newest key. Misuse (claims that do not pass the
 * schema or exceed the configured lifetime) is a programming error of the issuer and throws.
 */
export function sealCapability(claims: CapabilityClaims, keyring: CapabilityKeyring): string {
  const parsed = capabilityClaimsSchema.safeParse(claims);
  if (!parsed.success) throw new AppError('validation_failed', { message: 'The capability claims are invalid.' });
  if (parsed.data.expiresAt <= parsed.data.issuedAt || parsed.data.expiresAt - parsed.data.issuedAt > keyring.maxLifetimeMs) {
    throw new AppError('validation_failed', { message: 'The capability lifetime is out of range.' });
  }
  const { id, key } = keyring.sealingKey();
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(CAPABILITY_PREFIX, id, parsed.data.binding));
  const body = Buffer.concat([cipher.update(JSON.stringify(parsed.data), 'utf8'), cipher.final()]);
  const sealed = Buffer.concat([nonce, body, cipher.getAuthTag()]);
  return `${CAPABILITY_PREFIX}.${id}.${sealed.toString('base64url')}`;
}

/** Decodes base64url only when `text` is the one canonical spelling of the bytes. */
export function decodeCanonicalBase64Url(text: string): Buffer | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  const bytes = Buffer.from(text, 'base64url');
  // Round-tripping rejects a dangling 6-bit group and non-zero trailing bits in the last group.
  return bytes.toString('base64url') === text ? bytes : null;
}

export interface OpenContext {
  keyring: CapabilityKeyring;
  /** The binding the presenter proved: container id from the trusted hop, or the proof key's thumbprint. */
  binding: CapabilityBinding;
  now: number;
}

export function openCapability(token: unknown, context: OpenContext): OpenResult {
  try {
    return openUnchecked(token, context);
  } catch {
    // Defensive: nothing below should throw, but an opener must never turn input into a 500.
    return { ok: false, reason: 'invalid' };
  }
}

function openUnchecked(token: unknown, { keyring, binding, now }: OpenContext): OpenResult {
  if (typeof token !== 'string') return { ok: false, reason: 'malformed' };
  if (token.length > MAX_TOKEN_CHARS) return { ok: false, reason: 'too_large' };
  const match = TOKEN_PATTERN.exec(token);
  const kid = match?.[1];
  const body = match?.[2];
  if (kid === undefined || body === undefined) return { ok: false, reason: 'malformed' };

  const digest = OpenedCapabilityMemo.digest(token);
  const known = keyring.opened.get(digest, binding);
  const opened = known === undefined ? authenticate(body, kid, keyring, binding, now) : withKey(known, kid, keyring, now);
  if (!opened.ok) return opened;
  const refusal = validityRefusal(opened.claims, opened.key, keyring, now);
  if (refusal !== null) {
    // Only a token that opened is kept, and an expired one can never open again.
    if (refusal === 'expired') keyring.opened.forget(digest);
    return { ok: false, reason: refusal };
  }
  return { ok: true, claims: known ?? keyring.opened.remember(digest, opened.claims) };
}

type Keyed = { ok: true; claims: CapabilityClaims; key: CapabilityKey } | { ok: false; reason: OpenRefusal };

/** A memoised token still needs its key to be usable now (a retired key stops opening). */
function withKey(claims: CapabilityClaims, kid: string, keyring: CapabilityKeyring, now: number): Keyed {
  const lookup = keyring.lookup(kid, now);
  return lookup.ok ? { ok: true, claims, key: lookup.key } : lookup;
}

/** What the token's bytes and the keyring decide, once: decoding, key, authentication, purpose, schema. */
function authenticate(body: string, kid: string, keyring: CapabilityKeyring, binding: CapabilityBinding, now: number): Keyed {
  const sealed = decodeCanonicalBase64Url(body);
  if (sealed === null || sealed.length <= NONCE_BYTES + TAG_BYTES) return { ok: false, reason: 'malformed' };

  const lookup = keyring.lookup(kid, now);
  if (!lookup.ok) return lookup;

  const plaintext = decrypt(sealed, lookup.key.key, associatedData(CAPABILITY_PREFIX, kid, binding));
  if (plaintext === null) return { ok: false, reason: 'invalid' };

  let payload: unknown;
  try {
    payload = JSON.parse(plaintext.toString('utf8'));
  } catch {
    return { ok: false, reason: 'invalid' };
  }
  // Another token type sealed under a shared key authenticates fine; its purpose gives it away.
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return { ok: false, reason: 'invalid' };
  if (!('purpose' in payload) || payload.purpose !== CAPABILITY_PURPOSE) return { ok: false, reason: 'wrong_purpose' };
  const parsed = capabilityClaimsSchema.safeParse(payload);
  if (!parsed.success) return { ok: false, reason: 'invalid' };
  if (!sameBinding(parsed.data.binding, binding)) return { ok: false, reason: 'invalid' };
  return { ok: true, claims: parsed.data, key: lookup.key };
}

/** What the clock and the keyring's rotation decide, on every use. */
function validityRefusal(claims: CapabilityClaims, key: CapabilityKey, keyring: CapabilityKeyring, now: number): OpenRefusal | null {
  // A key retired at R sealed nothing legitimate after R (plus skew).
  if (key.retiredAt !== null && claims.issuedAt > key.retiredAt + keyring.skewMs) return 'retired_key';
  if (claims.issuedAt > now + MAX_FUTURE_ISSUED_AT_MS) return 'not_yet_valid';
  if (claims.expiresAt <= claims.issuedAt) return 'invalid';
  if (claims.expiresAt - claims.issuedAt > keyring.maxLifetimeMs) return 'lifetime_exceeded';
  if (claims.expiresAt <= now) return 'expired';
  return null;
}

function decrypt(sealed: Buffer, key: CapabilityOpenKey, aad: Buffer): Buffer | null {
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const ciphertext = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    return null;
  }
}

type CapabilityOpenKey = Parameters<typeof createDecipheriv>[1];
