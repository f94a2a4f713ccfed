/**
 * Admission across replicas on a real Redis: three independent connections stand for three
 * gateway replicas. Exactness of burst and hourly limits under 600 concurrent requests, replica
 * clocks skewed by ±2 minutes, a live config change made through one replica enforced by another
 * within 1 s (real PostgreSQL for the settings row), and Redis going away and coming back (through
 * a TCP proxy this test controls). Fails, never skips, when Redis or PostgreSQL is unreachable.
 */
import { deletePrefix } from '../support/redis.js';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { LiveAdmissionConfig } from '../../src/admission/live-config.js';
import { CircuitBreakers } from '../../src/admission/gates/circuit.js';
import { createPipeline, type Pipeline } from '../../src/admission/pipeline.js';
import { createReplicaTracker } from '../../src/admission/replicas.js';
import { admissionPrincipal, admissionRequest, testAdmissionConfig } from '../../src/admission/testing.js';
import type { TypeLimit } from '../../src/admission/config.js';
import type { AdmissionResult } from '../../src/admission/types.js';
import { openRecordStore, type RecordStore } from '../../src/store/db/index.js';
import { RedisHotState } from '../../src/store/state/redis/redis-hot-state.js';
import { createTempDatabase, type TempDatabase } from '../support/postgres.js';
import { startRelay } from '../support/relay.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `pc-adm-${randomBytes(5).toString('hex')}`;
const config = testAdmissionConfig({ backpressure: { concurrencyPerReplica: 10_000 } });

const replicas: RedisHotState[] = [];

function skewed(offsetMs: number): Clock {
  return { now: () => Date.now() + offsetMs };
}

function pipelineOn(state: RedisHotState, limit: TypeLimit, clock?: Clock): Pipeline {
  return createPipeline({ state, config: () => config, limits: () => limit, ...(clock === undefined ? {} : { clock }) });
}

async function fire(pipelines: Pipeline[], total: number, principal = admissionPrincipal('registered')): Promise<AdmissionResult[]> {
  const results = await Promise.all(Array.from({ length: total }, (_, i) => (pipelines[i % pipelines.length] as Pipeline).admit(admissionRequest(principal))));
  await Promise.all(results.map(async (r) => (r.ok ? r.ticket.settle({ kind: 'success', actualMicros: 0, actualTokens: 0 }) : undefined)));
  return results;
}

function expectRefusedWithRetry(results: AdmissionResult[], windowSeconds: number): void {
  for (const r of results) {
    if (r.ok) continue;
    expect(r.refusal.status).toBe(429);
    expect(r.refusal.code).toBe('rate_limited');
    expect(r.refusal.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(r.refusal.retryAfterSeconds).toBeLessThanOrEqual(windowSeconds);
  }
}

beforeAll(async () => {
  for (let i = 0; i < 3; i += 1) replicas.push(await RedisHotState.connect({ url: REDIS_URL, prefix: PREFIX }));
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.close()));
  await deletePrefix(PREFIX);
});

describe('admission exactness across three replicas on Redis', () => {
  it('600 concurrent requests, burst limit 50: exactly 50 admitted, the rest 429 with Retry-After', async () => {
    const limit = { burst: 50, burstWindowSeconds: 60, hourly: null };
    const results = await fire(replicas.map((r) => pipelineOn(r, limit)), 600);
    expect(results.filter((r) => r.ok)).toHaveLength(50);
    expectRefusedWithRetry(results, 60);
    const refused = results.find((r) => !r.ok);
    expect(refused?.headers.RateLimit).toMatch(/^"burst";r=0;t=\d+$/);
  });

  it('the same exactness for an hourly cap', async () => {
    const limit = { burst: 1000, burstWindowSeconds: 60, hourly: 70 };
    const results = await fire(replicas.map((r) => pipelineOn(r, limit)), 600);
    expect(results.filter((r) => r.ok)).toHaveLength(70);
    expectRefusedWithRetry(results, 3600);
    const refused = results.find((r) => !r.ok);
    expect(!refused?.ok && refused?.refusal.limit).toMatchObject({ window: 'hour', limit: 70 });
  });

  it('replica clocks skewed by ±2 minutes change nothing: decisions take store time', async () => {
    const limit = { burst: 50, burstWindowSeconds: 60, hourly: 55 };
    const offsets = [-120_000, 0, 120_000];
    const pipelines = replicas.map((r, i) => pipelineOn(r, limit, skewed(offsets[i] ?? 0)));
    const principal = admissionPrincipal('registered');
    const results = await fire(pipelines, 600, principal);
    expect(results.filter((r) => r.ok)).toHaveLength(50);
    // A skewed replica would report a Retry-After off by minutes; all agree on at most one window.
    expectRefusedWithRetry(results, 60);
  });
});

describe('shared breaker and replica count on Redis', () => {
  it('a breaker tripped through one replica fails fast on the others at once; half-open probes are bounded across replicas', async () => {
    const breakerConfig = testAdmissionConfig({ circuit: { failureThreshold: 3, windowSeconds: 30, recoverySeconds: 1, halfOpenProbes: 2, successesToClose: 1 } });
    const breakers = replicas.map((state) => new CircuitBreakers({ state, config: () => breakerConfig, clock: systemClock, refreshMs: 60_000 }));
    await Promise.all(breakers.map((b) => b.start()));
    try {
      const dependency = `provider:bench-${randomBytes(3).toString('hex')}`;
      for (const b of breakers) await b.refresh(dependency);
      await Promise.all(breakers.map((b) => b.report(dependency, null, 'failure')));
      // The trip is broadcast: every replica refuses from its mirror within a few milliseconds, no refresh needed.
      const deadline = Date.now() + 500;
      while (breakers.some((b) => b.localState(dependency) !== 'open') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      for (const b of breakers) {
        const refused = await b.check(dependency);
        expect(!refused.ok && refused.refusal.code).toBe('circuit_open');
      }
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const probes = await Promise.all(Array.from({ length: 30 }, async (_, i) => (breakers[i % 3] as CircuitBreakers).check(dependency)));
      const admitted = probes.filter((p) => p.ok);
      expect(admitted).toHaveLength(2);
      const probe = admitted[0];
      if (probe === undefined || !probe.ok || probe.probe === null) throw new Error('expected a probe');
      await breakers[1]?.report(dependency, probe.probe, 'success');
      expect(await breakers[2]?.stateOf(dependency)).toBe('closed');
      const closedEverywhere = Date.now() + 500;
      while (breakers.some((b) => b.localState(dependency) !== 'closed') && Date.now() < closedEverywhere) await new Promise((resolve) => setTimeout(resolve, 5));
      for (const b of breakers) expect((await b.check(dependency)).ok).toBe(true);
    } finally {
      await Promise.all(breakers.map((b) => b.stop()));
    }
  });

  it('replicas heartbeat into Redis: each sees all three and the others\' in-flight load', async () => {
    const trackers = replicas.map((state, i) => createReplicaTracker({ state, ownInFlight: () => i + 1, beatMs: 60_000 }));
    for (const t of trackers) await t.beat();
    await trackers[0]?.beat();
    expect(trackers[0]?.replicas()).toBe(3);
    expect(trackers[0]?.inFlight()).toBe(1 + 2 + 3);
  });
});

describe('live configuration across replicas', () => {
  let database: TempDatabase;
  let records: RecordStore;
  const lives: LiveAdmissionConfig[] = [];

  beforeAll(async () => {
    database = await createTempDatabase();
    records = await openRecordStore({ databaseUrl: database.url, migrate: true });
  });

  afterAll(async () => {
    await Promise.all(lives.map((l) => l.stop()));
    await records.close();
    await database.drop();
  });

  it('a change made through one replica is enforced by another within 1 s; a stale version never wins', async () => {
    const [a, b] = replicas;
    if (a === undefined || b === undefined) throw new Error('replicas missing');
    const liveA = new LiveAdmissionConfig({ base: config, state: a, db: records.db });
    const liveB = new LiveAdmissionConfig({ base: config, state: b, db: records.db });
    lives.push(liveA, liveB);
    await liveA.start();
    await liveB.start();
    const pipelineB = createPipeline({ state: b, config: liveB.config, limits: liveB.limits });
    const principal = admissionPrincipal('registered', { orgId: `org_${randomBytes(4).toString('hex')}` });
    const orgId = principal.orgId ?? '';

    const started = Date.now();
    const version = await liveA.update(orgId, { rateLimits: { registered: { burst: 3, burstWindowSeconds: 60, hourly: null } }, keyOverrides: {} }, 'usr_admin');
    expect(version).toBe(1);
    while (liveB.overridesFor(orgId).version < 1) {
      if (Date.now() - started > 1000) throw new Error('change not applied within 1 s');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const results = [];
    for (let i = 0; i < 5; i += 1) results.push(await pipelineB.admit(admissionRequest(principal)));
    expect(results.map((r) => r.ok)).toEqual([true, true, true, false, false]);

    // A replayed older message is ignored by every replica.
    expect(await liveA.update(orgId, { rateLimits: {}, keyOverrides: {} }, 'usr_admin')).toBe(2);
    await a.publish('admission-config', JSON.stringify({ orgId, version: 1, overrides: { rateLimits: { registered: { burst: 1, burstWindowSeconds: 60, hourly: null } }, keyOverrides: {} } }));
    const deadline = Date.now() + 1000;
    while (liveB.overridesFor(orgId).version < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(liveB.overridesFor(orgId)).toEqual({ version: 2, overrides: { rateLimits: {}, keyOverrides: {} } });
  });
});

describe('Redis unavailable', () => {
  it('rate limiting fails closed with 503 dependency_unavailable (no throw), and recovers by itself', async () => {
    const proxy = await startRelay(REDIS_URL);
    const state = await RedisHotState.connect({ url: `redis://127.0.0.1:${proxy.port}`, prefix: PREFIX, commandTimeoutMs: 500, connectTimeoutMs: 500 });
    try {
      const pipeline = pipelineOn(state, { burst: 100, burstWindowSeconds: 60, hourly: null });
      const principal = admissionPrincipal('registered');
      const before = await pipeline.admit(admissionRequest(principal));
      expect(before.ok).toBe(true);
      if (before.ok) await before.ticket.settle({ kind: 'success', actualMicros: 0, actualTokens: 0 });

      await proxy.cut();
      const during = await Promise.all(Array.from({ length: 20 }, () => pipeline.admit(admissionRequest(principal))));
      for (const r of during) {
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.refusal).toMatchObject({ code: 'dependency_unavailable', status: 503, retryAfterSeconds: 1 });
      }

      await proxy.restore();
      const deadline = Date.now() + 15_000;
      let recovered: AdmissionResult | undefined;
      while (Date.now() < deadline) {
        recovered = await pipeline.admit(admissionRequest(principal));
        if (recovered.ok) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(recovered?.ok).toBe(true);
      if (recovered?.ok === true) await recovered.ticket.settle({ kind: 'success', actualMicros: 0, actualTokens: 0 });
    } finally {
      await state.close();
      await proxy.close();
    }
  });
});
