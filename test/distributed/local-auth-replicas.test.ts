/**
 * Local sign-in across two replicas sharing real Redis and PostgreSQL: a logout through one is
 * refused by the other within 1 s despite its session cache; lockout counts from both replicas
 * add up; a TOTP code raced through both replicas is accepted exactly once. Isolated by a unique
 * Redis prefix and a unique PostgreSQL schema, both removed afterwards.
 */
import { deletePrefix } from '../support/redis.js';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryAuditSink } from '../../src/audit/sink.js';
import { createAead } from '../../src/core/aead.js';
import { systemClock } from '../../src/core/clock.js';
import { createLocalAuth, TEST_ARGON2ID, type LocalAuth } from '../../src/identity/local/index.js';
import { seedLocalUser } from '../../src/identity/local/testing.js';
import { totpCodeForStep, totpStepAt } from '../../src/identity/local/totp.js';
import { RedisHotState } from '../../src/store/state/redis/redis-hot-state.js';
import { openSharedSchema, type SharedSchema } from '../support/postgres.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = randomBytes(5).toString('hex');
const PREFIX = `pc-local-auth-${run}`;
const keyring = { activeKeyId: 'k1', keys: { k1: randomBytes(32) } };
const ctx = { ip: '198.51.100.9', method: 'GET', csrfToken: undefined };

let schema: SharedSchema;
let redis: RedisHotState[] = [];
let replicas: LocalAuth[] = [];
let stops: (() => Promise<void>)[] = [];


beforeAll(async () => {
  schema = await openSharedSchema('local_auth', 2);
  redis = await Promise.all([0, 1].map(() => RedisHotState.connect({ url: REDIS_URL, prefix: PREFIX })));
  replicas = schema.stores.map((store, i) =>
    createLocalAuth({
      db: store.db,
      hot: redis[i] as RedisHotState,
      audit: new MemoryAuditSink(),
      clock: systemClock,
      aead: createAead(keyring),
      config: { passwordHash: TEST_ARGON2ID, sessionCacheTtlMs: 60_000 },
    }),
  );
  stops = await Promise.all(replicas.map((replica) => replica.start()));
});

afterAll(async () => {
  await Promise.allSettled(stops.map((stop) => stop()));
  await Promise.allSettled(redis.map((r) => r.close()));
  await deletePrefix(PREFIX).catch(() => undefined);
  await schema?.drop();
});

function replica(i: number): LocalAuth {
  const found = replicas[i];
  if (found === undefined) throw new Error('replica missing');
  return found;
}

async function within(ms: number, check: () => Promise<boolean>): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`not true within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('local auth on two replicas (Redis + PostgreSQL)', () => {
  it('a logout through one replica is refused by the other within 1 s, despite its cache', async () => {
    const user = await seedLocalUser(replica(0).db, replica(0).passwords);
    const session = await replica(0).sessions.create(user.id, true);
    // Replica 1 caches the session (60 s TTL, so only the broadcast can evict it in time).
    expect((await replica(1).resolveSession(session.token, ctx)).ok).toBe(true);
    await replica(0).sessions.revoke(session.idHash);
    await within(1000, async () => !(await replica(1).resolveSession(session.token, ctx)).ok);
    expect(await replica(1).resolveSession(session.token, ctx)).toEqual({ ok: false, code: 'session_expired' });
  });

  it('lockout failures counted on both replicas add up', async () => {
    const email = `lock-${run}@example.test`;
    const ip = '203.0.113.77';
    for (let i = 0; i < 5; i += 1) await replica(0).lockout.recordFailure(email, ip);
    for (let i = 0; i < 4; i += 1) await replica(1).lockout.recordFailure(email, ip);
    expect((await replica(0).lockout.check(email, ip)).locked).toBe(false);
    await replica(1).lockout.recordFailure(email, ip);
    const state = await replica(0).lockout.check(email, '203.0.113.78');
    expect(state.locked).toBe(true);
    if (state.locked) expect(state.retryAfterSeconds).toBeGreaterThan(295);
  });

  it('a TOTP code raced through both replicas is accepted exactly once', async () => {
    const user = await seedLocalUser(replica(0).db, replica(0).passwords);
    const enrol = await replica(0).mfa.enrol(user.id, user.email);
    if (!enrol.ok) throw new Error('enrol failed');
    const base32 = new URL(enrol.otpauthUri).searchParams.get('secret') ?? '';
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    let bits = '';
    for (const char of base32) bits += alphabet.indexOf(char).toString(2).padStart(5, '0');
    const secret = Buffer.from(Array.from({ length: Math.floor(bits.length / 8) }, (_, i) => parseInt(bits.slice(i * 8, i * 8 + 8), 2)));
    const step = totpStepAt(Date.now());
    expect(await replica(1).mfa.confirm(user.id, totpCodeForStep(secret, step - 1))).toBe(true);
    const code = totpCodeForStep(secret, step);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => replica(i % 2).mfa.verify(user.id, { code })));
    expect(results.filter((result) => result.ok)).toHaveLength(1);
  });
});
