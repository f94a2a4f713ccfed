/**
 * The stores' own circuit breakers against real servers, through relays this test controls: Redis
 * that hangs (connections open, nothing answers) makes the first requests wait for their command
 * timeout, then the hot-state breaker opens and admission answers 503 `dependency_unavailable` at
 * once, without sending the store a byte, with Retry-After; when Redis answers again the breaker
 * probes and service resumes by itself. PostgreSQL that goes away: identity-cache misses fail
 * fast once the record-store breaker is open (stale entries are still served), and recover by
 * themselves. Fails, never skips, when a server is unreachable.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStoreBreakers } from '../../src/admission/breakers/store-breakers.js';
import { createPipeline } from '../../src/admission/pipeline.js';
import { admissionPrincipal, admissionRequest, testAdmissionConfig } from '../../src/admission/testing.js';
import type { AdmissionResult } from '../../src/admission/types.js';
import { systemClock } from '../../src/core/clock.js';
import { IdentityCache, createDbIdentityRecords, type IdentityRecords } from '../../src/identity/cache/index.js';
import { insertUser } from '../../src/identity/tenancy/index.js';
import { openRecordStore, type RecordStore } from '../../src/store/db/index.js';
import { MemoryHotState } from '../../src/store/state/index.js';
import { RedisHotState } from '../../src/store/state/redis/redis-hot-state.js';
import { createTempDatabase, type TempDatabase } from '../support/postgres.js';
import { deletePrefix, REDIS_URL } from '../support/redis.js';
import { startRelay, type Relay } from '../support/relay.js';

const PREFIX = `pc-brk-${randomBytes(5).toString('hex')}`;
const SETTINGS = { failureThreshold: 3, failureRatio: 0.5, windowSeconds: 10, recoverySeconds: 1, halfOpenProbes: 1, successesToClose: 1 };

async function eventually<T>(attempt: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await attempt().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('hot-state breaker on a Redis that hangs', () => {
  let relay: Relay;
  let state: RedisHotState;

  beforeAll(async () => {
    relay = await startRelay(REDIS_URL);
    state = await RedisHotState.connect({ url: `redis://127.0.0.1:${relay.port}`, prefix: PREFIX, commandTimeoutMs: 300, connectTimeoutMs: 500 });
  });
  afterAll(async () => {
    relay.resume();
    await state.close();
    await relay.close();
    await deletePrefix(PREFIX);
  });

  it('waits for the timeout only until the breaker opens, then fails fast with Retry-After without touching Redis, and recovers by itself', async () => {
    const breakers = createStoreBreakers({ settings: SETTINGS, clock: systemClock });
    const config = testAdmissionConfig({ backpressure: { concurrencyPerReplica: 10_000 } });
    const pipeline = createPipeline({ state: breakers.guardHotState(state), config: () => config, limits: () => ({ burst: 1000, burstWindowSeconds: 60, hourly: null }) });
    const principal = admissionPrincipal('registered');
    const admitted = await pipeline.admit(admissionRequest(principal));
    expect(admitted.ok).toBe(true);
    if (admitted.ok) await admitted.ticket.settle({ kind: 'success', actualMicros: 0, actualTokens: 0 });

    relay.pause();
    for (let i = 0; i < SETTINGS.failureThreshold; i += 1) {
      const started = performance.now();
      const r = await pipeline.admit(admissionRequest(principal));
      expect(!r.ok && r.refusal).toMatchObject({ code: 'dependency_unavailable', status: 503 });
      // These still waited for the command timeout.
      expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    }
    expect(breakers.hotState.state).toBe('open');
    const sent = relay.bytesFromClients;
    const fast: AdmissionResult[] = [];
    const started = performance.now();
    for (let i = 0; i < 20; i += 1) fast.push(await pipeline.admit(admissionRequest(principal)));
    // Twenty refusals in far less than one timeout, and not a byte sent to the store.
    expect(performance.now() - started).toBeLessThan(250);
    expect(relay.bytesFromClients).toBe(sent);
    for (const r of fast) {
      expect(!r.ok && r.refusal).toMatchObject({ code: 'dependency_unavailable', status: 503, gate: 'rate_limit' });
      expect(!r.ok && r.refusal.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    }

    relay.resume();
    const recovered = await eventually(async () => {
      const r = await pipeline.admit(admissionRequest(principal));
      return r.ok ? r : undefined;
    }, 10_000);
    await recovered.ticket.settle({ kind: 'success', actualMicros: 0, actualTokens: 0 });
    expect(breakers.hotState.state).toBe('closed');
  });
});

describe('record-store breaker on identity-cache misses, PostgreSQL going away', () => {
  let database: TempDatabase;
  let direct: RecordStore;
  let relayed: RecordStore;
  let relay: Relay;

  beforeAll(async () => {
    database = await createTempDatabase();
    direct = await openRecordStore({ databaseUrl: database.url, migrate: true });
    relay = await startRelay(database.url);
    const url = new URL(database.url);
    url.host = `127.0.0.1:${relay.port}`;
    relayed = await openRecordStore({ databaseUrl: url.toString(), migrate: false, maxConnections: 2 });
  });
  afterAll(async () => {
    await relayed.close().catch(() => undefined);
    await relay.close();
    await direct.close();
    await database.drop();
  });

  it('misses fail fast while the breaker is open, cached entries are still served, and it closes by itself', async () => {
    const [known, other] = await Promise.all([
      insertUser(direct.db, { email: `known-${randomBytes(3).toString('hex')}@example.test` }),
      insertUser(direct.db, { email: `other-${randomBytes(3).toString('hex')}@example.test` }),
    ]);
    const breakers = createStoreBreakers({ settings: SETTINGS, clock: systemClock });
    let loads = 0;
    const inner = createDbIdentityRecords(relayed.db);
    const counted: IdentityRecords = {
      ...inner,
      loadUser: (userId) => {
        loads += 1;
        return inner.loadUser(userId);
      },
    };
    const cache = new IdentityCache({ records: breakers.guardRecords(counted), pubsub: new MemoryHotState(), clock: systemClock, ttlMs: 50, heartbeatMs: 0 });
    await cache.start();
    try {
      expect((await cache.getUser(known.id))?.userType).toBe('registered');

      await relay.cut();
      for (let i = 0; i < SETTINGS.failureThreshold; i += 1) {
        await expect(cache.getUser(other.id)).rejects.toMatchObject({ code: 'dependency_unavailable' });
      }
      expect(breakers.records.state).toBe('open');
      const before = loads;
      await new Promise((resolve) => setTimeout(resolve, 60));
      const started = performance.now();
      // Past its ttl, the known user is served stale; the unknown one is refused at once.
      expect((await cache.getUser(known.id))?.userType).toBe('registered');
      await expect(cache.getUser(other.id)).rejects.toMatchObject({ code: 'dependency_unavailable' });
      expect(performance.now() - started).toBeLessThan(100);
      expect(loads).toBe(before);

      await relay.restore();
      const user = await eventually(() => cache.getUser(other.id).then((u) => u ?? undefined), 10_000);
      expect(user.userType).toBe('registered');
      expect(breakers.records.state).toBe('closed');
    } finally {
      await cache.stop();
    }
  });
});
