import { describe, it, expect } from 'vitest';
import { AppError } from '../core/errors.js';
import { isSecretLookingName, isSecretLookingValue, normalizeEvent, sanitizeDetails, WITHHELD } from './details-policy.js';

describe('secret-looking detail names', () => {
  it.each([
    'password', 'newPassword', 'password_hash', 'token', 'accessToken', 'refresh_token', 'secret', 'clientSecret', 'client_secret',
    'apiKey', 'api_key', 'API-KEY', 'privateKey', 'signing_key', 'key_material', 'keyBytes', 'pepper', 'totp', 'otp_code',
    'authorization', 'cookie', 'session_key', 'credentials', 'bearer', 'refreshtoken', 'sealed_secret',
  ])('drops %s', (name) => {
    expect(isSecretLookingName(name)).toBe(true);
  });

  it.each(['keyId', 'key_id', 'key', 'role', 'previousRole', 'email', 'scopes', 'expiresAt', 'org', 'name', 'tokensUsed'])('keeps %s', (name) => {
    expect(isSecretLookingName(name)).toBe(false);
  });
});

describe('secret-looking detail values', () => {
  it.each([
    'pck_eyJhbGciOiJIUzI1NiJ9.eyJ2IjoxfQ.abc',
    'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl',
    'Bearer abc',
    '-----BEGIN PRIVATE KEY-----\nMII',
    'sk-proj-abcdefghijklmnopqrstuvwxyz012345',
    'ghp_abcdefghijklmnop1234',
    '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA',
    'c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkwYWJjZGVm',
  ])('drops %s', (value) => {
    expect(isSecretLookingValue(value)).toBe(true);
  });

  it.each(['member', 'key_AbCdEfGhIjKlMnOp', 'usr_0123456789abcdef', 'Renamed the org to Acme Research', '2026-01-01T00:00:00.000Z'])('keeps %s', (value) => {
    expect(isSecretLookingValue(value)).toBe(false);
  });
});

describe('sanitizeDetails', () => {
  it('drops secret entries, keeps the rest, and says which names were withheld', () => {
    const { details, dropped } = sanitizeDetails({ role: 'admin', password: 'hunter2', note: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig', count: 3 });
    expect(details).toEqual({ role: 'admin', count: 3, redacted: 'note,password' });
    expect(dropped).toEqual(['note', 'password']);
    expect(JSON.stringify(details)).not.toContain('hunter2');
  });

  it('refuses the reserved name, too many entries, and non-finite numbers', () => {
    expect(() => sanitizeDetails({ redacted: 'x' })).toThrow(AppError);
    expect(() => sanitizeDetails(Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])))).toThrow(AppError);
    expect(() => sanitizeDetails({ n: Number.NaN })).toThrow(AppError);
  });

  it('makes strings storable: no NUL, no lone surrogate, bounded length', () => {
    const { details } = sanitizeDetails({ a: 'x\u0000y', b: 'bad\uD800', c: 'z'.repeat(5000) });
    expect(details['a']).toBe('xy');
    expect(details['b']).toBe('bad\uFFFD');
    expect(details['c']).toHaveLength(1024);
  });
});

describe('normalizeEvent', () => {
  const base = { actor: 'usr_1', orgId: 'org_1', action: 'key.revoke', outcome: 'success' as const };

  it('accepts a well-formed event and defaults target and details', () => {
    expect(normalizeEvent(base)).toEqual({ ...base, target: null, details: {} });
  });

  it('refuses malformed actions and outcomes', () => {
    expect(() => normalizeEvent({ ...base, action: 'Revoke' })).toThrow(AppError);
    expect(() => normalizeEvent({ ...base, action: 'key' })).toThrow(AppError);
    expect(() => normalizeEvent({ ...base, outcome: 'maybe' as 'success' })).toThrow(AppError);
    expect(() => normalizeEvent({ ...base, actor: '' })).toThrow(AppError);
  });

  it('withholds a target that is a credential rather than an id', () => {
    expect(normalizeEvent({ ...base, target: 'pck_eyJhbGciOiJIUzI1NiJ9.x.y' }).target).toBe(WITHHELD);
  });
});
