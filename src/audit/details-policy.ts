/**
 * What an audit event may carry. Audit rows are kept forever and exported, so a secret written
 * once can never be taken back: every detail whose NAME or VALUE looks like credential material is
 * dropped before hashing, and the names dropped are recorded under `redacted` so a reader knows
 * something was withheld. Dropping (rather than rejecting the event) keeps the fact that the action
 * happened; the withheld value was never meant to be in the log anyway.
 *
 * Everything else is bounded and normalised so that what is hashed is exactly what PostgreSQL
 * stores and hands back (no NUL characters, no lone surrogates, finite numbers only).
 */
import { AppError } from '../core/errors.js';
import { LONE_SURROGATE } from '../core/text.js';
import type { AuditEventInput } from './sink.js';

export type DetailValue = string | number | boolean | null;
export type AuditDetails = Record<string, DetailValue>;

export const REDACTED_DETAIL_KEY = 'redacted';
export const MAX_DETAIL_ENTRIES = 32;
export const MAX_DETAIL_KEY_LENGTH = 64;
export const MAX_DETAIL_STRING_LENGTH = 1024;
const MAX_FIELD_LENGTH = 256;

/** Single words that name a secret wherever they appear in a detail name. */
const SECRET_WORDS = new Set([
  'password', 'passwd', 'pwd', 'passphrase', 'secret', 'secrets', 'token', 'credential', 'credentials',
  'authorization', 'bearer', 'cookie', 'pepper', 'totp', 'otp', 'jwt', 'apikey', 'privatekey',
  'secretkey', 'signingkey', 'masterkey', 'accesskey', 'sealed', 'ciphertext', 'plaintext',
]);
/** Qualifiers that turn a following `key` into key material (`api_key`, `signingKey`, …). */
const KEY_QUALIFIERS = new Set(['api', 'private', 'secret', 'signing', 'master', 'access', 'encryption', 'session', 'client', 'hmac', 'raw']);
/** Words that make `key` itself key material (`key_material`, `keyBytes`, …). */
const KEY_SUFFIXES = new Set(['material', 'bytes', 'value', 'data', 'hex', 'b64', 'base64']);

/** Splits `apiKey`, `api_key`, `API-KEY`, `x.secret` into lowercase words. */
function wordsOf(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter((word) => word.length > 0)
    .map((word) => word.toLowerCase());
}

export function isSecretLookingName(name: string): boolean {
  const words = wordsOf(name);
  if (words.some((word) => SECRET_WORDS.has(word))) return true;
  for (let i = 0; i < words.length; i += 1) {
    if (words[i] !== 'key') continue;
    const before = words[i - 1];
    const after = words[i + 1];
    if (before !== undefined && KEY_QUALIFIERS.has(before)) return true;
    if (after !== undefined && KEY_SUFFIXES.has(after)) return true;
  }
  // Joined spellings such as `clientsecret` or `refreshtoken` that are one word to the splitter.
  const joined = words.join('');
  // (`tokens` alone is left alone: in an AI gateway it usually counts model tokens.)
  return /password|passphrase|secret|apikey|privatekey|signingkey|credential|(access|refresh|id|auth|bearer|session|api)token/.test(joined);
}

const VALUE_PATTERNS: readonly RegExp[] = [
  /^pck_/i, // Portcullis API keys
  /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\./, // any JWT / JWS
  /^bearer\s/i,
  /-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----/,
  /\b(sk|rk|pk)[-_](live|test|proj|ant)[-_A-Za-z0-9]{8,}/, // common provider key shapes
  /\bsk-[A-Za-z0-9_-]{20,}/,
  /\b(ghp|gho|ghs|ghu|github_pat|xox[abprs]|AKIA)[A-Za-z0-9_-]{10,}/,
  /\$argon2(id|i|d)\$/, // a password hash is still a secret worth not copying
];

/** Long unbroken base64/hex runs with letters and digits: most likely a key or token, not prose. */
function looksHighEntropy(value: string): boolean {
  const runs = value.match(/[A-Za-z0-9+/=_-]{40,}/g) ?? [];
  return runs.some((run) => /[A-Za-z]/.test(run) && /[0-9]/.test(run));
}

export function isSecretLookingValue(value: string): boolean {
  return VALUE_PATTERNS.some((pattern) => pattern.test(value)) || looksHighEntropy(value);
}

/** Makes a string storable as-is in PostgreSQL text/jsonb, so the stored bytes hash the same. */
export function storableString(value: string, maxLength: number): string {
  // eslint-disable-next-line no-control-regex -- NUL is exactly what PostgreSQL text refuses
  const cleaned = value.replace(/\u0000/g, '').replace(LONE_SURROGATE, '\uFFFD');
  if (cleaned.length <= maxLength) return cleaned;
  // Cutting between a surrogate pair would create a lone surrogate again.
  return cleaned.slice(0, maxLength).replace(LONE_SURROGATE, '');
}

export interface SanitizedDetails {
  details: AuditDetails;
  /** Detail names dropped because they or their value looked like a secret. */
  dropped: string[];
}

export function sanitizeDetails(input: AuditEventInput['details']): SanitizedDetails {
  const details: AuditDetails = {};
  const dropped: string[] = [];
  const entries = Object.entries(input ?? {});
  if (entries.length > MAX_DETAIL_ENTRIES) {
    throw new AppError('validation_failed', { message: `Audit details are limited to ${MAX_DETAIL_ENTRIES} entries.` });
  }
  for (const [rawName, value] of entries) {
    const name = storableString(rawName, MAX_DETAIL_KEY_LENGTH);
    if (name.length === 0 || name === REDACTED_DETAIL_KEY) {
      throw new AppError('validation_failed', { message: 'An audit detail name is empty or reserved.' });
    }
    if (isSecretLookingName(name)) {
      dropped.push(name);
      continue;
    }
    if (typeof value === 'string') {
      if (isSecretLookingValue(value)) {
        dropped.push(name);
        continue;
      }
      details[name] = storableString(value, MAX_DETAIL_STRING_LENGTH);
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new AppError('validation_failed', { message: `Audit detail "${name}" is not a finite number.` });
      details[name] = value;
    } else if (typeof value === 'boolean' || value === null) {
      details[name] = value;
    } else {
      throw new AppError('validation_failed', { message: `Audit detail "${name}" must be a string, number, boolean or null.` });
    }
  }
  if (dropped.length > 0) details[REDACTED_DETAIL_KEY] = dropped.sort().join(',');
  return { details, dropped };
}

export const WITHHELD = '[withheld]';

/** Actor and target are ids by contract; one that looks like a credential is withheld, not stored. */
function withheldIfSecret(value: string): string {
  return isSecretLookingValue(value) ? WITHHELD : value;
}

const ACTION_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;

export interface NormalizedEvent {
  actor: string;
  orgId: string | null;
  action: string;
  target: string | null;
  outcome: AuditEventInput['outcome'];
  details: AuditDetails;
}

/** Validates and normalises one event; throws AppError('validation_failed') on caller mistakes. */
export function normalizeEvent(event: AuditEventInput): NormalizedEvent {
  if (!ACTION_PATTERN.test(event.action) || event.action.length > 100) {
    throw new AppError('validation_failed', { message: 'An audit action must be a dotted lowercase verb such as key.revoke.' });
  }
  if (event.outcome !== 'success' && event.outcome !== 'failure' && event.outcome !== 'denied') {
    throw new AppError('validation_failed', { message: 'An audit outcome must be success, failure or denied.' });
  }
  const actor = withheldIfSecret(storableString(event.actor, MAX_FIELD_LENGTH));
  if (actor.length === 0) throw new AppError('validation_failed', { message: 'An audit event needs an actor.' });
  const target = event.target === undefined || event.target === null ? null : withheldIfSecret(storableString(event.target, MAX_FIELD_LENGTH));
  const orgId = event.orgId === null ? null : storableString(event.orgId, MAX_FIELD_LENGTH);
  return { actor, orgId, action: event.action, target, outcome: event.outcome, details: sanitizeDetails(event.details).details };
}
