import { afterAll, afterEach, beforeAll, beforeEach, describe, it, expect, vi } from 'vitest';
import type { RecordStore } from '../../store/db/record-store.js';
import { openTestRecordStore } from '../../store/db/testing.js';
import { IDENTITY_CHANNEL } from '../cache/index.js';
import { createPasswordHasher, TEST_ARGON2ID } from './password.js';
import { cookie, createHarness, login, setCookieHeader, signIn, sessionTokenFrom, withCsrf, type Harness } from './routes.harness.js';

describe('local sign-in routes', () => {
  // One database for the file (each test seeds its own users); fresh hot state and clock per test.
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

  it('signs in, sets a hardened cookie and returns the CSRF token and user', async () => {
    const user = await h.seed({ email: 'ann@example.test' });
    const response = await login(h.app, 'Ann@Example.test', user.password);
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body.mfaRequired).toBe(false);
    expect(body.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(body.user).toEqual({ id: user.id, email: 'ann@example.test', displayName: 'Test User' });
    const setCookie = setCookieHeader(response);
    expect(setCookie).toMatch(/^portcullis_session=[A-Za-z0-9_-]{43}; /);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');
    expect(setCookie).toContain('Path=/');
    expect(setCookie).toContain(`Max-Age=${12 * 3600}`);
    expect(setCookie).not.toContain('Secure');
    expect(response.headers['cache-control']).toBe('no-store');

    const token = sessionTokenFrom(response) ?? '';
    const me = await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(token) });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ kind: 'session', userId: user.id, orgId: null, role: null, scopes: [] });
    // Only the hash of the token is stored.
    const rows = await h.store.db.selectFrom('sessions').selectAll().where('user_id', '=', user.id).execute();
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(token);
    expect(JSON.stringify(rows)).not.toContain(body.csrfToken);
  });

  it('marks the cookie Secure behind TLS', async () => {
    const tls = await createHarness({ behindTls: true }, { store });
    try {
      const user = await tls.seed();
      const response = await login(tls.app, user.email, user.password);
      expect(setCookieHeader(response)).toMatch(/; Secure$/);
    } finally {
      await tls.close();
    }
  });

  it('answers the same for a wrong password and an unknown email', async () => {
    const user = await h.seed();
    const wrong = await login(h.app, user.email, 'not the password at all');
    const unknown = await login(h.app, 'nobody@example.test', 'not the password at all');
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(wrong.json()).toEqual(unknown.json());
    expect(wrong.json().error.code).toBe('invalid_credentials');
    expect(wrong.headers['set-cookie']).toBeUndefined();
    expect(h.audit.events.filter((event) => event.action === 'auth.login' && event.outcome === 'failure')).toHaveLength(2);
  });

  it('re-hashes a password stored with older parameters at the next sign-in', async () => {
    const weaker = createPasswordHasher({ ...TEST_ARGON2ID, memoryCost: 2048 });
    const user = await h.seed();
    await h.store.db.updateTable('users').set({ password_hash: await weaker.hash(user.password) }).where('id', '=', user.id).execute();
    expect((await login(h.app, user.email, user.password)).statusCode).toBe(200);
    const row = await h.store.db.selectFrom('users').select('password_hash').where('id', '=', user.id).executeTakeFirstOrThrow();
    expect(row.password_hash).toContain('$m=1024,');
    expect((await login(h.app, user.email, user.password)).statusCode).toBe(200);
  });

  it('spends one argon2 verification on every failed sign-in, whether or not the email exists', async () => {
    const user = await h.seed();
    const oidcOnly = await h.seed();
    await h.store.db.updateTable('users').set({ password_hash: null }).where('id', '=', oidcOnly.id).execute();
    const real = vi.spyOn(h.auth.passwords, 'verify');
    const dummy = vi.spyOn(h.auth.passwords, 'verifyDummy');
    await login(h.app, user.email, 'not the password at all');
    await login(h.app, 'nobody@example.test', 'not the password at all');
    await login(h.app, oidcOnly.email, 'not the password at all');
    expect(real).toHaveBeenCalledTimes(1);
    expect(dummy).toHaveBeenCalledTimes(2);
  });

  it('refuses disabled users like a wrong password', async () => {
    const user = await h.seed({ disabled: true });
    const response = await login(h.app, user.email, user.password);
    expect(response.statusCode).toBe(401);
    expect(response.json().error.code).toBe('invalid_credentials');
  });

  it('refuses malformed and over-long bodies before hashing', async () => {
    const response = await h.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'a@b.c', password: 'x'.repeat(5000) } });
    expect(response.statusCode).toBe(400);
    const extra = await h.app.inject({ method: 'POST', url: '/api/auth/login', payload: { email: 'a@b.c', password: 'x', admin: true } });
    expect(extra.statusCode).toBe(400);
  });

  describe('CSRF on cookie-authenticated writes', () => {
    it('refuses a write without, or with a wrong, token and accepts the right one', async () => {
      const user = await h.seed();
      const session = await signIn(h.app, user);
      const without = await h.app.inject({ method: 'POST', url: '/api/test/write', headers: cookie(session.token) });
      expect(without.statusCode).toBe(403);
      expect(without.json().error.code).toBe('csrf_failed');
      const wrong = await h.app.inject({ method: 'POST', url: '/api/test/write', headers: { ...cookie(session.token), 'x-csrf-token': 'A'.repeat(43) } });
      expect(wrong.statusCode).toBe(403);
      const right = await h.app.inject({ method: 'POST', url: '/api/test/write', headers: withCsrf(session) });
      expect(right.statusCode).toBe(200);
      expect(right.json()).toEqual({ by: user.id });
      // Reads need no token.
      expect((await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(session.token) })).statusCode).toBe(200);
    });

    it("does not accept another session's CSRF token", async () => {
      const user = await h.seed();
      const first = await signIn(h.app, user);
      const second = await signIn(h.app, user);
      const crossed = await h.app.inject({ method: 'POST', url: '/api/test/write', headers: { ...cookie(first.token), 'x-csrf-token': second.csrfToken } });
      expect(crossed.statusCode).toBe(403);
    });
  });

  it('logout revokes the session and clears the cookie', async () => {
    const user = await h.seed();
    const session = await signIn(h.app, user);
    expect((await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(session.token) })).statusCode).toBe(200);
    const noCsrf = await h.app.inject({ method: 'POST', url: '/api/auth/logout', headers: cookie(session.token) });
    expect(noCsrf.statusCode).toBe(403);
    const out = await h.app.inject({ method: 'POST', url: '/api/auth/logout', headers: withCsrf(session) });
    expect(out.statusCode).toBe(204);
    expect(setCookieHeader(out)).toMatch(/^portcullis_session=; Path=\/; Max-Age=0; HttpOnly; SameSite=Strict/);
    const after = await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(session.token) });
    expect(after.statusCode).toBe(401);
    expect(after.json().error.code).toBe('session_expired');
    // Logging out again (or without a session) just clears the cookie.
    expect((await h.app.inject({ method: 'POST', url: '/api/auth/logout', headers: withCsrf(session) })).statusCode).toBe(204);
    expect((await h.app.inject({ method: 'POST', url: '/api/auth/logout' })).statusCode).toBe(204);
  });

  it('logout on one replica is refused by another replica at once, despite its cache', async () => {
    const other = await createHarness({}, { store: h.store, hot: h.hot, clock: h.clock });
    try {
      const user = await h.seed();
      const session = await signIn(h.app, user);
      // Warm the other replica's cache.
      expect((await other.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(session.token) })).statusCode).toBe(200);
      expect((await h.app.inject({ method: 'POST', url: '/api/auth/logout', headers: withCsrf(session) })).statusCode).toBe(204);
      await new Promise((resolve) => setImmediate(resolve));
      expect((await other.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(session.token) })).statusCode).toBe(401);
    } finally {
      await other.close();
    }
  });

  it('serves repeated requests from the cache without reading the database', async () => {
    const user = await h.seed();
    const session = await signIn(h.app, user);
    expect((await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(session.token) })).statusCode).toBe(200);
    // Delete the row behind the cache's back: within the TTL the cached copy answers...
    await h.store.db.deleteFrom('sessions').where('user_id', '=', user.id).execute();
    expect((await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(session.token) })).statusCode).toBe(200);
    // ...and after it, the database is asked again.
    h.clock.advance(10_001);
    expect((await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(session.token) })).statusCode).toBe(401);
  });

  it('a user disabled elsewhere loses their cached session at once', async () => {
    const user = await h.seed();
    const session = await signIn(h.app, user);
    expect((await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(session.token) })).statusCode).toBe(200);
    await h.store.db.updateTable('users').set({ disabled: true }).where('id', '=', user.id).execute();
    await h.hot.publish(IDENTITY_CHANNEL, JSON.stringify({ t: 'user', u: user.id }));
    await new Promise((resolve) => setImmediate(resolve));
    const refused = await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(session.token) });
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error.code).toBe('session_expired');
  });

  it('expires the session at exactly its absolute lifetime', async () => {
    const short = await createHarness({ sessionLifetimeMs: 60_000 }, { store });
    try {
      const user = await short.seed();
      const start = short.clock.now();
      const session = await signIn(short.app, user);
      short.clock.set(start + 59_999);
      expect((await short.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(session.token) })).statusCode).toBe(200);
      short.clock.set(start + 60_000);
      const expired = await short.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(session.token) });
      expect(expired.statusCode).toBe(401);
      expect(expired.json().error.code).toBe('session_expired');
    } finally {
      await short.close();
    }
  });

  it('maintenance deletes expired and revoked sessions only', async () => {
    const user = await h.seed();
    const live = await h.auth.sessions.create(user.id, true);
    const revoked = await h.auth.sessions.create(user.id, true);
    await h.auth.sessions.revoke(revoked.idHash);
    h.clock.advance(12 * 3600 * 1000 - 1);
    const later = await h.auth.sessions.create(user.id, true);
    h.clock.advance(1);
    await h.auth.sessions.deleteDead();
    const left = await h.store.db.selectFrom('sessions').select('id_hash').where('user_id', '=', user.id).execute();
    expect(left.map((row) => row.id_hash)).toEqual([later.idHash]);
    expect(live.idHash).not.toBe(later.idHash);
  });

  it('refuses unknown and malformed session cookies with 401', async () => {
    for (const token of ['A'.repeat(43), 'short', '%%%']) {
      const response = await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(token) });
      expect(response.statusCode).toBe(401);
      expect(response.json().error.code).toBe('invalid_token');
    }
  });

  it('reports the session status', async () => {
    const user = await h.seed({ platformAdmin: true });
    const session = await signIn(h.app, user);
    const status = await h.app.inject({ method: 'GET', url: '/api/auth/session', headers: cookie(session.token) });
    expect(status.statusCode).toBe(200);
    expect(status.json()).toMatchObject({ mfaRequired: false, user: { id: user.id, platformAdmin: true } });
    expect((await h.app.inject({ method: 'GET', url: '/api/auth/session' })).statusCode).toBe(401);
  });

  it('changing the password checks the current one and the policy, and revokes the other sessions', async () => {
    const user = await h.seed();
    const keep = await signIn(h.app, user);
    const other = await signIn(h.app, user);
    const wrong = await h.app.inject({ method: 'POST', url: '/api/auth/password', headers: withCsrf(keep), payload: { current: 'wrong wrong wrong', next: 'a brand new passphrase' } });
    expect(wrong.statusCode).toBe(401);
    const weak = await h.app.inject({ method: 'POST', url: '/api/auth/password', headers: withCsrf(keep), payload: { current: user.password, next: '123456789012' } });
    expect(weak.statusCode).toBe(400);
    const changed = await h.app.inject({ method: 'POST', url: '/api/auth/password', headers: withCsrf(keep), payload: { current: user.password, next: 'a brand new passphrase' } });
    expect(changed.statusCode).toBe(200);
    expect(changed.json()).toEqual({ changed: true, sessionsRevoked: 1 });
    expect((await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(keep.token) })).statusCode).toBe(200);
    expect((await h.app.inject({ method: 'GET', url: '/api/test/me', headers: cookie(other.token) })).statusCode).toBe(401);
    expect((await login(h.app, user.email, user.password)).statusCode).toBe(401);
    expect((await login(h.app, user.email, 'a brand new passphrase')).statusCode).toBe(200);
  });

  it('never writes a token or password into the audit log', async () => {
    const user = await h.seed();
    const session = await signIn(h.app, user);
    await login(h.app, user.email, 'wrong password here');
    const text = JSON.stringify(h.audit.events);
    expect(text).not.toContain(session.token);
    expect(text).not.toContain(session.csrfToken);
    expect(text).not.toContain(user.password);
    expect(text).not.toContain('wrong password here');
  });
});
