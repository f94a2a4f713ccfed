/**
 * TOTP (RFC 6238) over the `otpauth` package: SHA-1, 6 digits, 30-second steps — the parameters
 * every authenticator app supports. Verification accepts the previous, current and next step and
 * returns the matched step, so the caller can refuse any step at or before the last one accepted
 * (a code is good once, even inside its window).
 */
import { randomBytes } from 'node:crypto';
import { HOTP, Secret, TOTP } from 'otpauth';
import { constantTimeEqual } from '../../core/crypto.js';

export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
const TOTP_ALGORITHM = 'SHA1';
/** 160-bit secrets, as RFC 4226 recommends. */
const SECRET_BYTES = 20;
const WINDOW_STEPS = 1;
const CODE_PATTERN = /^\d{6}$/;

export function generateTotpSecret(): Buffer {
  return randomBytes(SECRET_BYTES);
}

/** The otpauth:// URI an authenticator app scans; contains the secret, so it is shown once. */
export function totpUri(secret: Uint8Array, account: string, issuer: string): string {
  return new TOTP({
    issuer,
    label: account,
    secret: new Secret({ buffer: Uint8Array.from(secret).buffer }),
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
  }).toString();
}

export function totpStepAt(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PERIOD_SECONDS);
}

export function totpCodeForStep(secret: Uint8Array, step: number): string {
  return HOTP.generate({
    secret: new Secret({ buffer: Uint8Array.from(secret).buffer }),
    algorithm: TOTP_ALGORITHM,
    digits: TOTP_DIGITS,
    counter: step,
  });
}

/** Strips the spaces people type ("123 456"); anything else that is not six digits never matches. */
export function normalizeTotpCode(code: string): string | null {
  const compact = code.replace(/[\s-]/g, '');
  return CODE_PATTERN.test(compact) ? compact : null;
}

/**
 * Returns the time step the code belongs to, or null. Steps at or before `lastStep` are never
 * matched. Every candidate step is computed and compared in constant time, whatever matches.
 */
export function matchTotpStep(secret: Uint8Array, code: string, nowMs: number, lastStep: number | null): number | null {
  const normalized = normalizeTotpCode(code);
  if (normalized === null) return null;
  const current = totpStepAt(nowMs);
  let matched: number | null = null;
  for (let step = current - WINDOW_STEPS; step <= current + WINDOW_STEPS; step += 1) {
    const equal = constantTimeEqual(totpCodeForStep(secret, step), normalized);
    if (equal && matched === null && (lastStep === null || step > lastStep)) matched = step;
  }
  return matched;
}
