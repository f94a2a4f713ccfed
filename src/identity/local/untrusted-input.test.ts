/** Property tests for every parser here that sees attacker-controlled input. */
import fc from 'fast-check';
import { describe, it, expect } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { checkPasswordPolicy } from './password-policy.js';
import { hashRecoveryCode, normalizeRecoveryCode } from './recovery-codes.js';
import { resolveCookieSession } from './session-resolver.js';
import type { Db } from '../../store/db/schema.js';
import { MemoryHotState } from '../../store/state/index.js';
import { createSessionStore, isWellFormedSessionToken } from './session-store.js';
import { generateTotpSecret, matchTotpStep, normalizeTotpCode } from './totp.js';

describe('untrusted input', () => {
  const secret = generateTotpSecret();

  it('TOTP code parsing never throws and only yields six digits', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (input) => {
        const normalized = normalizeTotpCode(input);
        expect(normalized === null || /^\d{6}$/.test(normalized)).toBe(true);
        const step = matchTotpStep(secret, input, Date.UTC(2026, 0, 1), null);
        expect(step === null || Number.isSafeInteger(step)).toBe(true);
      }),
    );
  });

  it('recovery code parsing never throws and yields 16 symbols or null', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (input) => {
        const normalized = normalizeRecoveryCode(input);
        expect(normalized === null || /^[0-9A-HJKMNP-TV-Z]{16}$/.test(normalized)).toBe(true);
        expect(hashRecoveryCode(input) === null).toBe(normalized === null);
      }),
    );
  });

  it('password policy never throws on any string', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400, unit: 'binary' }), fc.option(fc.string({ maxLength: 50 })), (password, email) => {
        const result = checkPasswordPolicy(password, email === null ? {} : { email });
        expect(typeof result.ok).toBe('boolean');
      }),
    );
  });

  it('malformed session tokens are refused without touching the database', async () => {
    const clock = new ManualClock();
    // Any database access throws, so a token that reaches a query fails the property.
    const db = new Proxy({}, { get: () => { throw new Error('database touched'); } }) as Db;
    const sessions = createSessionStore({ db, hot: new MemoryHotState({ clock }), clock, lifetimeMs: 1000, pendingLifetimeMs: 1000, cacheTtlMs: 1000, cacheMaxEntries: 10 });
    await fc.assert(
      fc.asyncProperty(
        fc.string({ maxLength: 100 }).filter((token) => !isWellFormedSessionToken(token)),
        async (token) => {
          const result = await resolveCookieSession({ sessions, clock }, token, { ip: '127.0.0.1', method: 'POST', csrfToken: token });
          expect(result).toEqual({ ok: false, code: 'invalid_token' });
        },
      ),
    );
  });
});
