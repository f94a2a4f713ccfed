/**
 * Recovery codes: ten random 80-bit codes, shown once, stored only as SHA-256 hashes (with 80 bits of
 * entropy a fast hash is not brute-forceable; a slow one would make login by recovery code a DoS
 * lever). Each is usable once: the caller removes the matched hash in the same write that accepts it.
 */
import { randomBytes } from 'node:crypto';
import { constantTimeEqual, sha256Hex } from '../../core/crypto.js';

export const RECOVERY_CODE_COUNT = 10;
/** Crockford-style alphabet without the look-alikes I, L, O, U. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const GROUPS = 4;
const GROUP_LENGTH = 4;
const NORMALIZED_PATTERN = /^[0-9A-HJKMNP-TV-Z]{16}$/;

function randomCode(): string {
  // 16 symbols × 5 bits = 80 bits; 10 random bytes give exactly 80 bits, read 5 at a time.
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >> (bits - 5)) & 31] ?? '';
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  const groups: string[] = [];
  for (let i = 0; i < GROUPS; i += 1) groups.push(out.slice(i * GROUP_LENGTH, (i + 1) * GROUP_LENGTH));
  return groups.join('-');
}

/** Uppercases, drops separators and maps the usual look-alikes; null when it cannot be a code. */
export function normalizeRecoveryCode(code: string): string | null {
  if (code.length > 64) return null;
  const compact = code.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  return NORMALIZED_PATTERN.test(compact) ? compact : null;
}

export function hashRecoveryCode(code: string): string | null {
  const normalized = normalizeRecoveryCode(code);
  return normalized === null ? null : sha256Hex(`portcullis-recovery:${normalized}`);
}

export interface GeneratedRecoveryCodes {
  /** Shown to the user once. */
  codes: string[];
  /** Stored. */
  hashes: string[];
}

export function generateRecoveryCodes(count = RECOVERY_CODE_COUNT): GeneratedRecoveryCodes {
  const codes: string[] = [];
  const hashes: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const code = randomCode();
    const hash = hashRecoveryCode(code);
    if (hash === null) throw new Error('generated recovery code failed to normalise');
    codes.push(code);
    hashes.push(hash);
  }
  return { codes, hashes };
}

/** The stored hashes left after using `code`, or null when it matches none. Compares against all. */
export function consumeRecoveryCode(storedHashes: readonly string[], code: string): string[] | null {
  const hash = hashRecoveryCode(code);
  if (hash === null) return null;
  let matchedIndex = -1;
  storedHashes.forEach((stored, index) => {
    if (constantTimeEqual(stored, hash) && matchedIndex === -1) matchedIndex = index;
  });
  if (matchedIndex === -1) return null;
  return storedHashes.filter((_, index) => index !== matchedIndex);
}
