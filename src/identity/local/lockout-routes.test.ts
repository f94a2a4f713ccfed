import { afterAll, afterEach, beforeAll, beforeEach, describe, it, expect } from 'vitest';
import type { RecordStore } from '../../store/db/record-store.js';
import { openTestRecordStore } from '../../store/db/testing.js';
import { createHarness, login, type Harness } from './routes.harness.js';

describe('sign-in lockout', () => {
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

  async function fail(email: string, ip: string, times: number): Promise<void> {
    for (let i = 0; i < times; i += 1) expect((await login(h.app, email, `wrong password ${i}`, ip)).statusCode).toBe(401);
  }

  it('locks an account after 10 failures in 60 s, even for the right password, for 5 minutes', async () => {
    const user = await h.seed();
    // Failures from several addresses all count against the account.
    await fail(user.email, '10.0.0.1', 5);
    await fail(user.email, '10.0.0.2', 5);
    const locked = await login(h.app, user.email, user.password, '10.0.0.3');
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error.code).toBe('account_locked');
    expect(locked.headers['retry-after']).toBe('300');
    expect(h.audit.events.some((event) => event.action === 'auth.login' && event.outcome === 'denied')).toBe(true);

    h.clock.advance(4 * 60_000);
    const stillLocked = await login(h.app, user.email, user.password, '10.0.0.3');
    expect(stillLocked.statusCode).toBe(429);
    expect(stillLocked.headers['retry-after']).toBe('60');
    h.clock.advance(60_000);
    expect((await login(h.app, user.email, user.password, '10.0.0.3')).statusCode).toBe(200);
  });

  it('failures spread over more than the window do not lock', async () => {
    const user = await h.seed();
    await fail(user.email, '10.0.1.1', 9);
    h.clock.advance(61_000);
    await fail(user.email, '10.0.1.1', 9);
    expect((await login(h.app, user.email, user.password, '10.0.1.1')).statusCode).toBe(200);
  });

  it('locks an address after 10 failures across accounts; other addresses are unaffected', async () => {
    const user = await h.seed();
    for (let i = 0; i < 10; i += 1) await fail(`nobody${i}@example.test`, '192.0.2.7', 1);
    const locked = await login(h.app, user.email, user.password, '192.0.2.7');
    expect(locked.statusCode).toBe(429);
    expect(locked.headers['retry-after']).toBe('300');
    expect((await login(h.app, user.email, user.password, '192.0.2.8')).statusCode).toBe(200);
    h.clock.advance(5 * 60_000);
    expect((await login(h.app, user.email, user.password, '192.0.2.7')).statusCode).toBe(200);
  });

  it("a success does not reset another address's count", async () => {
    const user = await h.seed();
    await fail(user.email, '198.51.100.1', 9);
    expect((await login(h.app, user.email, user.password, '198.51.100.2')).statusCode).toBe(200);
    await fail(user.email, '198.51.100.1', 1);
    expect((await login(h.app, user.email, user.password, '198.51.100.1')).statusCode).toBe(429);
  });

  it('locks unknown emails the same way, revealing nothing', async () => {
    await fail('ghost@example.test', '203.0.113.5', 10);
    const locked = await login(h.app, 'ghost@example.test', 'anything at all', '203.0.113.6');
    expect(locked.statusCode).toBe(429);
  });

  it('uses configured numbers', async () => {
    const strict = await createHarness({ lockout: { maxFailures: 3, windowMs: 10_000, lockMs: 30_000 } }, { store });
    try {
      const user = await strict.seed();
      for (let i = 0; i < 3; i += 1) await login(strict.app, user.email, 'nope nope nope', '10.9.9.9');
      const locked = await login(strict.app, user.email, user.password, '10.9.9.8');
      expect(locked.statusCode).toBe(429);
      expect(locked.headers['retry-after']).toBe('30');
    } finally {
      await strict.close();
    }
  });
});
