import { afterAll, afterEach, beforeAll, beforeEach, describe, it, expect } from 'vitest';
import type { RecordStore } from '../../store/db/record-store.js';
import { openTestRecordStore } from '../../store/db/testing.js';
import { cookie, createHarness, login, sessionTokenFrom, signIn, withCsrf, type Harness, type SignedIn } from './routes.harness.js';
import type { SeededUser } from './testing.js';
import { totpCodeForStep, totpStepAt } from './totp.js';

function secretFromUri(uri: string): Buffer {
  const base32 = new URL(uri).searchParams.get('secret') ?? '';
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const char of base32.replace(/=+$/, '')) bits += alphabet.indexOf(char).toString(2).padStart(5, '0');
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

describe('TOTP MFA routes', () => {
  let store: RecordStore;
  let h: Harness;
  beforeAll(async () => {
    store = await openTestRecordStore();
  });
  afterAll(async () => {
    await store.close();
  });
  beforeEach(async () => {
    h = await createHarness({}, { store });
  });
  afterEach(async () => {
    await h.close();
  });

  const code = (secret: Buffer): string => totpCodeForStep(secret, totpStepAt(h.clock.now()));

  async function enrolAndConfirm(user: SeededUser): Promise<{ secret: Buffer; recoveryCodes: string[]; session: SignedIn }> {
    const session = await signIn(h.app, user);
    const enrol = await h.app.inject({ method: 'POST', url: '/api/auth/mfa/enrol', headers: withCsrf(session) });
    expect(enrol.statusCode).toBe(200);
    expect(enrol.headers['cache-control']).toBe('no-store');
    const { otpauthUri, recoveryCodes } = enrol.json<{ otpauthUri: string; recoveryCodes: string[] }>();
    expect(otpauthUri.startsWith('otpauth://totp/Portcullis:')).toBe(true);
    expect(recoveryCodes).toHaveLength(10);
    const secret = secretFromUri(otpauthUri);
    const confirm = await h.app.inject({ method: 'POST', url: '/api/auth/mfa/confirm', headers: withCsrf(session), payload: { code: code(secret) } });
    expect(confirm.statusCode).toBe(200);
    return { secret, recoveryCodes, session };
  }

  async function verify(session: SignedIn, payload: Record<string, string>) {
    return h.app.inject({ method: 'POST', url: '/api/auth/mfa/verify', headers: withCsrf(session), payload });
  }

  it('enrol → confirm → login needs a code → wrong code 401 → right code → replay refused', async () => {
    const user = await h.seed();
    const { secret } = await enrolAndConfirm(user);
    // The secret is stored sealed, never in the clear.
    const row = await h.store.db.selectFrom('mfa').selectAll().where('user_id', '=', user.id).executeTakeFirstOrThrow();
    expect(row.enabled).toBe(true);
    expect(row.totp_secret_sealed.startsWith('v1.test.')).toBe(true);
    expect(row.totp_secret_sealed).not.toContain(secret.toString('base64url'));

    h.clock.advance(30_000);
    const pending = await signIn(h.app, user);
    expect(pending.mfaRequired).toBe(true);
    const blocked = await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(pending.token) });
    expect(blocked.statusCode).toBe(401);
    expect(blocked.json().error.code).toBe('mfa_required');
    const status = await h.app.inject({ method: 'GET', url: '/api/auth/session', headers: cookie(pending.token) });
    expect(status.json().mfaRequired).toBe(true);
    // A session waiting for its second factor lives 10 minutes, not 12 hours.
    expect(Date.parse(status.json<{ expiresAt: string }>().expiresAt) - h.clock.now()).toBe(10 * 60_000);

    const wrongCode = String((Number(code(secret)) + 1) % 1_000_000).padStart(6, '0');
    const wrong = await verify(pending, { code: wrongCode });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.code).toBe('invalid_mfa_code');

    const good = code(secret);
    const ok = await verify(pending, { code: good });
    expect(ok.statusCode).toBe(200);
    const upgradedToken = sessionTokenFrom(ok) ?? '';
    expect(upgradedToken).not.toBe(pending.token);
    expect((await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(upgradedToken) })).statusCode).toBe(200);
    // The pre-MFA token is dead.
    expect((await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(pending.token) })).statusCode).toBe(401);

    // The same code, still inside its window, cannot be used again.
    const again = await signIn(h.app, user);
    const replay = await verify(again, { code: good });
    expect(replay.statusCode).toBe(401);
    // The next step's code works.
    h.clock.advance(30_000);
    expect((await verify(again, { code: code(secret) })).statusCode).toBe(200);
  });

  it('a code from the confirm step cannot be replayed at login', async () => {
    const user = await h.seed();
    const { secret } = await enrolAndConfirm(user);
    const pending = await signIn(h.app, user);
    expect((await verify(pending, { code: code(secret) })).statusCode).toBe(401);
  });

  it('a pending session expires after 10 minutes and cannot then be completed', async () => {
    const user = await h.seed();
    const { secret } = await enrolAndConfirm(user);
    const response = await login(h.app, user.email, user.password);
    expect(response.headers['set-cookie']).toContain('Max-Age=600;');
    const pending: SignedIn = { token: sessionTokenFrom(response) ?? '', csrfToken: response.json().csrfToken, mfaRequired: true };
    h.clock.advance(10 * 60_000);
    const late = await verify(pending, { code: code(secret) });
    expect(late.statusCode).toBe(401);
    expect(late.json().error.code).toBe('session_expired');
  });

  it('a recovery code works once', async () => {
    const user = await h.seed();
    const { recoveryCodes } = await enrolAndConfirm(user);
    const recovery = recoveryCodes[0] ?? '';
    const first = await signIn(h.app, user);
    const used = await verify(first, { recoveryCode: recovery });
    expect(used.statusCode).toBe(200);
    expect(used.json().recoveryCodesLeft).toBe(9);
    const second = await signIn(h.app, user);
    expect((await verify(second, { recoveryCode: recovery })).statusCode).toBe(401);
    expect((await verify(second, { recoveryCode: recoveryCodes[1] ?? '' })).statusCode).toBe(200);
  });

  it('verify needs the session CSRF token and exactly one proof', async () => {
    const user = await h.seed();
    const { secret } = await enrolAndConfirm(user);
    h.clock.advance(30_000);
    const pending = await signIn(h.app, user);
    const noCsrf = await h.app.inject({ method: 'POST', url: '/api/auth/mfa/verify', headers: cookie(pending.token), payload: { code: code(secret) } });
    expect(noCsrf.statusCode).toBe(403);
    expect((await verify(pending, {})).statusCode).toBe(400);
    expect((await verify(pending, { code: code(secret), recoveryCode: 'x' })).statusCode).toBe(400);
    expect((await h.app.inject({ method: 'POST', url: '/api/auth/mfa/verify', payload: { code: '123456' } })).statusCode).toBe(401);
  });

  it('enrolment is refused while a factor is enabled, and disable needs a current code', async () => {
    const user = await h.seed();
    const { secret, session } = await enrolAndConfirm(user);
    expect((await h.app.inject({ method: 'POST', url: '/api/auth/mfa/enrol', headers: withCsrf(session) })).statusCode).toBe(409);
    h.clock.advance(30_000);
    const badDisable = await h.app.inject({ method: 'POST', url: '/api/auth/mfa/disable', headers: withCsrf(session), payload: { code: '000000' === code(secret) ? '111111' : '000000' } });
    expect(badDisable.statusCode).toBe(401);
    const disable = await h.app.inject({ method: 'POST', url: '/api/auth/mfa/disable', headers: withCsrf(session), payload: { code: code(secret) } });
    expect(disable.statusCode).toBe(200);
    const next = await login(h.app, user.email, user.password);
    expect(next.json().mfaRequired).toBe(false);
  });

  it('a wrong confirmation code leaves MFA off', async () => {
    const user = await h.seed();
    const session = await signIn(h.app, user);
    expect((await h.app.inject({ method: 'POST', url: '/api/auth/mfa/enrol', headers: withCsrf(session) })).statusCode).toBe(200);
    const confirm = await h.app.inject({ method: 'POST', url: '/api/auth/mfa/confirm', headers: withCsrf(session), payload: { code: 'abcdef' } });
    expect(confirm.statusCode).toBe(401);
    expect((await login(h.app, user.email, user.password)).json().mfaRequired).toBe(false);
  });

  it('wrong second-factor codes count towards the lockout', async () => {
    const user = await h.seed();
    const { secret } = await enrolAndConfirm(user);
    h.clock.advance(30_000);
    const pending = await signIn(h.app, user);
    for (let i = 0; i < 10; i += 1) expect((await verify(pending, { code: 'abcdef' })).statusCode).toBe(401);
    const locked = await verify(pending, { code: code(secret) });
    expect(locked.statusCode).toBe(429);
    expect(locked.headers['retry-after']).toBe('300');
  });
});
