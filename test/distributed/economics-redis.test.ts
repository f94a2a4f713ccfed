/**
 * Budgets on a real Redis: three connections stand for three gateway replicas sharing one hot
 * state. A budget of 1.00 and 200 concurrent requests of up to 0.10 never has more than 1.00
 * reserved or committed; a client that disconnects mid-stream is settled exactly once at the
 * reserved maximum; concurrent first requests under a default budget cannot pass the cap; leaked
 * reservations are freed; Redis going away answers 503 with nothing reserved. Fails, never skips,
 * when Redis is unreachable.
 */
import { deletePrefix } from '../support/redis.js';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryAuditSink } from '../../src/audit/sink.js';
import { systemClock } from '../../src/core/clock.js';
import {
  BudgetReconciler,
  Economics,
  budgetScope,
  lineKey,
  periodWindow,
  type DefaultBudgets,
  type EconomicsOptions,
} from '../../src/admission/economics/index.js';
import { StaticRules, budgetPrincipal, costRule, modelRequest } from '../../src/admission/economics/testing.js';
import { RedisHotState } from '../../src/store/state/redis/redis-hot-state.js';
import { startRelay } from '../support/relay.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `pc-econ-${randomBytes(5).toString('hex')}`;
const ONE = 1_000_000;
const TEN_CENTS = 100_000;
const NO_DEFAULTS: DefaultBudgets = { org: [], user: [], key: [] };

const replicas: RedisHotState[] = [];

function freshOrg(): string {
  return `org_${randomBytes(12).toString('base64url')}`;
}

function gateOn(state: RedisHotState, orgId: string, extra: Partial<EconomicsOptions> = {}): Economics {
  const rules = new StaticRules().set(orgId, 'org', orgId, [costRule('month', ONE)]);
  return new Economics({ state, rules, defaults: NO_DEFAULTS, clock: systemClock, audit: new MemoryAuditSink(), ...extra });
}

function orgMonthUsage(state: RedisHotState, orgId: string) {
  return state.budgetUsage(budgetScope(orgId), lineKey('org', orgId, 'cost', periodWindow('month', Date.now()).label));
}

beforeAll(async () => {
  for (let i = 0; i < 3; i += 1) replicas.push(await RedisHotState.connect({ url: REDIS_URL, prefix: PREFIX }));
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.close()));
  await deletePrefix(PREFIX);
});

function replica(i: number): RedisHotState {
  const r = replicas[i % replicas.length];
  if (r === undefined) throw new Error('replicas not connected');
  return r;
}

describe('a budget of 1.00 and 200 concurrent requests of up to 0.10 across three replicas', () => {
  it('admits exactly 10 when none settle; 1.00 reserved, never more', async () => {
    const orgId = freshOrg();
    const gates = replicas.map((r) => gateOn(r, orgId));
    const p = budgetPrincipal(orgId);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (gates[i % 3] as Economics).reserve(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1000 }))),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    for (const r of results) if (!r.ok) expect(r.refusal).toMatchObject({ code: 'budget_exceeded', status: 402 });
    expect(await orgMonthUsage(replica(0), orgId)).toEqual({ used: 0, reserved: ONE });
  });

  it('never has more than 1.00 reserved plus committed after any settle, and commits exactly what was charged', async () => {
    const orgId = freshOrg();
    const gates = replicas.map((r) => gateOn(r, orgId));
    const p = budgetPrincipal(orgId);
    let charged = 0;
    let admitted = 0;
    const observations: number[] = [];
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const gate = gates[i % 3] as Economics;
        const r = await gate.reserve(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1000 }));
        if (!r.ok) return;
        admitted += 1;
        const actual = (i * 7919) % (TEN_CENTS + 1);
        await r.settle({ kind: 'success', actualMicros: actual, actualTokens: 10 });
        charged += actual;
        const u = await orgMonthUsage(replica(i), orgId);
        observations.push(u.used + u.reserved, u.used);
      }),
    );
    expect(admitted).toBeGreaterThanOrEqual(10);
    expect(Math.max(...observations)).toBeLessThanOrEqual(ONE);
    expect(await orgMonthUsage(replica(1), orgId)).toEqual({ used: charged, reserved: 0 });
  });
});

describe('settlement on Redis', () => {
  it('a client that disconnects mid-stream is settled exactly once at the reserved maximum', async () => {
    const orgId = freshOrg();
    const audit = new MemoryAuditSink();
    const gate = gateOn(replica(0), orgId, { audit });
    const request = modelRequest(budgetPrincipal(orgId), { maxMicros: TEN_CENTS, maxTokens: 1000 });
    const r = await gate.reserve(request);
    if (!r.ok) throw new Error('expected admission');
    await Promise.all([r.settle({ kind: 'unmetered', reason: 'client_abort' }), r.settle({ kind: 'unmetered', reason: 'client_abort' })]);
    // A replayed commit reaching another replica changes nothing.
    expect(await replica(2).commit(budgetScope(orgId), `${request.requestId}:0`, [5, 5, 1])).toEqual({ ok: true, state: 'already_committed', amounts: [TEN_CENTS, 1000, 1] });
    expect(await replica(2).release(budgetScope(orgId), `${request.requestId}:0`)).toMatchObject({ state: 'already_committed' });
    expect(await orgMonthUsage(replica(1), orgId)).toEqual({ used: TEN_CENTS, reserved: 0 });
    expect(audit.events.filter((e) => e.action === 'budget.unmetered')).toHaveLength(1);
  });

  it('concurrent first requests under a default budget on three cold replicas cannot pass the cap', async () => {
    const orgId = freshOrg();
    const defaults: DefaultBudgets = { org: [], user: [costRule('day', 250_000)], key: [] };
    const gates = replicas.map((r) => new Economics({ state: r, rules: new StaticRules(), defaults, clock: systemClock, audit: new MemoryAuditSink() }));
    const p = budgetPrincipal(orgId, 'usr_first_request');
    const results = await Promise.all(
      Array.from({ length: 90 }, (_, i) => (gates[i % 3] as Economics).reserve(modelRequest(p, { maxMicros: 50_000, maxTokens: 1 }))),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(5);
    const key = lineKey('user', 'usr_first_request', 'cost', periodWindow('day', Date.now()).label);
    expect(await replica(0).budgetUsage(budgetScope(orgId), key)).toEqual({ used: 0, reserved: 250_000 });
  });

  it('reservations leaked by a replica that went away are freed by the reconciler of another', async () => {
    const orgId = freshOrg();
    const ttl = 300;
    const dead = gateOn(replica(0), orgId, { reservationTtlMs: ttl });
    for (let i = 0; i < 4; i += 1) expect((await dead.reserve(modelRequest(budgetPrincipal(orgId), { maxMicros: TEN_CENTS, maxTokens: 1 }))).ok).toBe(true);
    const live = gateOn(replica(1), orgId, { reservationTtlMs: ttl });
    expect((await live.reserve(modelRequest(budgetPrincipal(orgId), { maxMicros: 1, maxTokens: 1 }))).ok).toBe(true);
    const reconciler = new BudgetReconciler({ state: replica(1), tracker: live.tracker, clock: systemClock, reservationTtlMs: ttl });
    await new Promise((resolve) => setTimeout(resolve, ttl + 100));
    expect(await reconciler.reconcileOnce()).toBe(5);
    expect(await orgMonthUsage(replica(2), orgId)).toEqual({ used: 0, reserved: 0 });
  });
});

describe('Redis unavailable', () => {
  it('refuses with 503 dependency_unavailable and reserves nothing', async () => {
    const relay = await startRelay(REDIS_URL);
    const state = await RedisHotState.connect({ url: `redis://127.0.0.1:${relay.port}`, prefix: PREFIX, commandTimeoutMs: 500, connectTimeoutMs: 500 });
    const orgId = freshOrg();
    try {
      const gate = gateOn(state, orgId);
      const before = await gate.reserve(modelRequest(budgetPrincipal(orgId), { maxMicros: TEN_CENTS, maxTokens: 1 }));
      expect(before.ok).toBe(true);
      if (before.ok) await before.settle({ kind: 'upstream_failure', reason: 'error' });
      await relay.cut();
      const during = await Promise.all(Array.from({ length: 10 }, () => gate.reserve(modelRequest(budgetPrincipal(orgId), { maxMicros: TEN_CENTS, maxTokens: 1 }))));
      for (const r of during) expect(r.ok ? null : r.refusal).toMatchObject({ code: 'dependency_unavailable', status: 503, gate: 'economics' });
      expect(await orgMonthUsage(replica(0), orgId)).toEqual({ used: 0, reserved: 0 });
    } finally {
      await state.close();
      await relay.cut().catch(() => undefined);
    }
  });
});
