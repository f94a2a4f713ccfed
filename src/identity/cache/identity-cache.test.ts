import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../core/errors.js';
import { ManualClock, systemClock } from '../../core/clock.js';
import type { RecordStore } from '../../store/db/index.js';
import { openTestRecordStore } from '../../store/db/testing.js';
import { IdentityCache, IdentityEvents, createDbIdentityRecords, type IdentityRecords } from './index.js';
import { TestBus } from './testing.js';

let store: RecordStore;
let records: IdentityRecords;

beforeAll(async () => {
  store = await openTestRecordStore();
  records = createDbIdentityRecords(store.db);
  await store.db.insertInto('orgs').values({ id: 'org_a', name: 'A', slug: 'a' }).execute();
  await store.db
    .insertInto('users')
    .values([
      { id: 'usr_1', email: 'one@example.test', display_name: '', user_type: 'paid', platform_admin: false, password_hash: null, pepper: 'pepper-one-000', disabled: false },
      { id: 'usr_2', email: 'two@example.test', display_name: '', user_type: 'registered', platform_admin: false, password_hash: null, pepper: 'pepper-two-000', disabled: false },
    ])
    .execute();
  await store.db.insertInto('memberships').values({ org_id: 'org_a', user_id: 'usr_1', role: 'admin' }).execute();
});

afterAll(async () => {
  await store.close();
});

async function until(check: () => boolean | Promise<boolean>, withinMs: number): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > withinMs) throw new Error(`condition not met within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return Date.now() - started;
}

describe('identity records (PGlite)', () => {
  it('loads users, roles and unexpired revocations; revocation is idempotent', async () => {
    expect(await records.loadUser('usr_1')).toEqual({ pepper: 'pepper-one-000', userType: 'paid', disabled: false, platformAdmin: false });
    expect(await records.loadUser('usr_missing')).toBeNull();
    expect(await records.loadRole('org_a', 'usr_1')).toBe('admin');
    expect(await records.loadRole('org_a', 'usr_2')).toBeNull();
    const now = new Date();
    await records.recordKeyRevocation('key_live', new Date(now.getTime() + 60_000), now);
    await records.recordKeyRevocation('key_live', new Date(now.getTime() + 60_000), now);
    await records.recordKeyRevocation('key_dead', new Date(now.getTime() - 1), now);
    expect((await records.loadRevokedKeys(now)).map((r) => r.keyId)).toEqual(['key_live']);
    expect(await records.setPepper('usr_missing', 'x')).toBe(false);
  });
});

describe('identity cache', () => {
  it('serves from memory within the TTL and reloads after it', async () => {
    const clock = new ManualClock();
    let loads = 0;
    const counting: IdentityRecords = { ...records, loadRole: async (o, u) => { loads++; return records.loadRole(o, u); } };
    const cache = new IdentityCache({ records: counting, pubsub: new TestBus(), clock, ttlMs: 1000, heartbeatMs: 0 });
    await cache.start();
    expect(await cache.getRole('org_a', 'usr_1')).toBe('admin');
    expect(await cache.getRole('org_a', 'usr_1')).toBe('admin');
    expect(loads).toBe(1);
    clock.advance(1000);
    await cache.getRole('org_a', 'usr_1');
    expect(loads).toBe(2);
    await cache.stop();
  });

  it('joins concurrent loads of one key into one read', async () => {
    let loads = 0;
    const slow: IdentityRecords = { ...records, loadUser: async (id) => { loads++; await new Promise((r) => setTimeout(r, 20)); return records.loadUser(id); } };
    const cache = new IdentityCache({ records: slow, pubsub: new TestBus(), clock: systemClock, heartbeatMs: 0 });
    await Promise.all([cache.getUser('usr_1'), cache.getUser('usr_1'), cache.getUser('usr_1')]);
    expect(loads).toBe(1);
  });

  it('serves a stale entry while the record store is down, and fails closed with nothing cached', async () => {
    const clock = new ManualClock();
    let down = false;
    const flaky: IdentityRecords = { ...records, loadUser: async (id) => { if (down) throw new Error('connection refused'); return records.loadUser(id); } };
    const cache = new IdentityCache({ records: flaky, pubsub: new TestBus(), clock, ttlMs: 1000, maxStaleMs: 5000, heartbeatMs: 0 });
    await cache.getUser('usr_1');
    down = true;
    clock.advance(2000);
    expect((await cache.getUser('usr_1'))?.pepper).toBe('pepper-one-000');
    await expect(cache.getUser('usr_2')).rejects.toMatchObject({ code: 'dependency_unavailable' });
    clock.advance(5000);
    await expect(cache.getUser('usr_1')).rejects.toMatchObject({ code: 'dependency_unavailable' });
  });

  it('keeps the Retry-After of a record-store breaker that refuses fast', async () => {
    const refusing: IdentityRecords = { ...records, loadUser: async () => { throw new AppError('dependency_unavailable', { message: 'record store circuit open', retryAfterSeconds: 7 }); } };
    const cache = new IdentityCache({ records: refusing, pubsub: new TestBus(), clock: new ManualClock(), heartbeatMs: 0 });
    await expect(cache.getUser('usr_1')).rejects.toMatchObject({ code: 'dependency_unavailable', retryAfterSeconds: 7 });
  });

  it('propagates revocation, pepper rotation and membership changes to another replica within 1 s', async () => {
    const bus = new TestBus();
    const a = new IdentityCache({ records, pubsub: bus, clock: systemClock, heartbeatMs: 0 });
    const b = new IdentityCache({ records, pubsub: bus, clock: systemClock, heartbeatMs: 0 });
    await Promise.all([a.start(), b.start()]);
    const events = new IdentityEvents({ records, pubsub: bus, clock: systemClock, cache: a });

    await b.getUser('usr_2');
    await b.getRole('org_a', 'usr_1');

    await events.revokeKey('key_prop', new Date(Date.now() + 60_000));
    expect(a.isRevoked('key_prop')).toBe(true);
    expect(await until(() => b.isRevoked('key_prop'), 1000)).toBeLessThan(1000);

    const pepper = await events.rotatePepper('usr_2');
    expect((await a.getUser('usr_2'))?.pepper).toBe(pepper);
    expect(await until(async () => (await b.getUser('usr_2'))?.pepper === pepper, 1000)).toBeLessThan(1000);

    await store.db.updateTable('memberships').set({ role: 'viewer' }).where('user_id', '=', 'usr_1').execute();
    await events.membershipChanged('org_a', 'usr_1');
    expect(await until(async () => (await b.getRole('org_a', 'usr_1')) === 'viewer', 1000)).toBeLessThan(1000);
    await store.db.updateTable('memberships').set({ role: 'admin' }).where('user_id', '=', 'usr_1').execute();
    await events.membershipChanged('org_a', 'usr_1');
    await Promise.all([a.stop(), b.stop()]);
  });

  it('a new replica loads the deny-list at start; a lost message is recovered by the periodic resync', async () => {
    const bus = new TestBus();
    const late = new IdentityCache({ records, pubsub: bus, clock: systemClock, heartbeatMs: 0, resyncIntervalMs: 50 });
    await late.start();
    expect(late.isRevoked('key_live')).toBe(true);
    bus.dropping = true;
    await new IdentityEvents({ records, pubsub: bus, clock: systemClock }).revokeKey('key_lost', new Date(Date.now() + 60_000));
    expect(late.isRevoked('key_lost')).toBe(false);
    await until(() => late.isRevoked('key_lost'), 1000);
    await late.stop();
  });

  it('notices a deaf subscription, bypasses the cache meanwhile, and re-syncs when it hears again', async () => {
    const bus = new TestBus();
    let loads = 0;
    const counting: IdentityRecords = { ...records, loadUser: async (id) => { loads++; return records.loadUser(id); } };
    const cache = new IdentityCache({ records: counting, pubsub: bus, clock: systemClock, heartbeatMs: 20, resyncIntervalMs: 60_000 });
    await cache.start();
    await cache.getUser('usr_1');
    await cache.getUser('usr_1');
    expect(loads).toBe(1);
    bus.dropping = true;
    await new IdentityEvents({ records, pubsub: bus, clock: systemClock }).revokeKey('key_deaf', new Date(Date.now() + 60_000));
    await new Promise((r) => setTimeout(r, 120));
    await cache.getUser('usr_1');
    await cache.getUser('usr_1');
    expect(loads).toBe(3);
    bus.dropping = false;
    await until(() => cache.isRevoked('key_deaf'), 1000);
    await cache.stop();
  });

  it('drops malformed messages', async () => {
    const bus = new TestBus();
    const cache = new IdentityCache({ records, pubsub: bus, clock: systemClock, heartbeatMs: 0 });
    await cache.start();
    for (const raw of ['nope', '{"t":"revoke","k":"key_x"}', JSON.stringify({ t: 'revoke', k: 'key_x', e: 1, extra: 1 }), 'x'.repeat(5000)]) {
      await bus.publish('identity:v1', raw);
    }
    await new Promise((r) => setTimeout(r, 10));
    expect(cache.isRevoked('key_x')).toBe(false);
    await cache.stop();
  });
});
