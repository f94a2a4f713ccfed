/**
 * The counter gates of a request in ONE hot-state round trip, on a real Redis: the rate-limit
 * windows and every budget line of a request are checked in one script and consumed only if all
 * pass, so a request refused after the rate limit (by its budget, by backpressure, by its slot, by
 * an open circuit) leaves the windows exactly as they were. Round trips are counted on a private,
 * instrumented connection (every command it sends), which stays exact however many other test
 * runs share the server. Fails, never skips, when Redis is unreachable.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryAuditSink } from '../../src/audit/sink.js';
import { systemClock } from '../../src/core/clock.js';
import { Economics, budgetScope, lineKey, periodWindow, type BudgetRule } from '../../src/admission/economics/index.js';
import { StaticRules, budgetPrincipal } from '../../src/admission/economics/testing.js';
import { CircuitBreakers } from '../../src/admission/gates/circuit.js';
import { InFlightSlots } from '../../src/admission/gates/slots.js';
import { createPipeline, type Pipeline, type PipelineDeps } from '../../src/admission/pipeline.js';
import { admissionRequest, testAdmissionConfig } from '../../src/admission/testing.js';
import type { AdmissionRequest, AdmissionResult } from '../../src/admission/types.js';
import type { Principal } from '../../src/identity/principal.js';
import { RedisHotState } from '../../src/store/state/redis/redis-hot-state.js';
import { deletePrefix, REDIS_URL } from '../support/redis.js';

const PREFIX = `pc-one-${randomBytes(5).toString('hex')}`;
const TEN_CENTS = 100_000;
const LIMIT = { burst: 1000, burstWindowSeconds: 60, hourly: 5000 };
const SUCCESS = { kind: 'success', actualMicros: 100, actualTokens: 10 } as const;

const replicas: RedisHotState[] = [];
let counted: RedisHotState;
const commands: string[] = [];

function freshPrincipal(): Principal {
  const orgId = `org_${randomBytes(8).toString('hex')}`;
  return budgetPrincipal(orgId, `usr_${randomBytes(6).toString('hex')}`, `key_${randomBytes(6).toString('hex')}`);
}

/** Budgets on org, user and key for every metric, as a priced model call touches them. */
function rulesFor(p: Principal, costCap: number): StaticRules {
  const orgId = p.orgId ?? '';
  const all: BudgetRule[] = [
    { metric: 'cost', period: 'month', cap: costCap, alertThresholds: [] },
    { metric: 'tokens', period: 'day', cap: 10_000_000, alertThresholds: [] },
    { metric: 'requests', period: 'day', cap: 1_000_000, alertThresholds: [] },
  ];
  return new StaticRules()
    .set(orgId, 'org', orgId, all)
    .set(orgId, 'user', p.userId ?? '', all)
    .set(orgId, 'key', p.keyId ?? '', all);
}

function pipelineOn(state: RedisHotState, p: Principal, options: { costCap?: number; config?: Record<string, unknown>; extra?: Partial<PipelineDeps> } = {}): Pipeline {
  const config = testAdmissionConfig(options.config ?? { backpressure: { concurrencyPerReplica: 10_000 } });
  const economics = new Economics({ state, rules: rulesFor(p, options.costCap ?? 1_000_000_000), defaults: { org: [], user: [], key: [] }, clock: systemClock, audit: new MemoryAuditSink() });
  // A long refresh: the mirror's periodic store read must not land inside a counted request.
  const breakers = new CircuitBreakers({ state, config: () => config, clock: systemClock, refreshMs: 600_000 });
  return createPipeline({ state, config: () => config, limits: () => LIMIT, economics, breakers, ...options.extra });
}

function priced(p: Principal, overrides: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return admissionRequest(p, { cost: { model: 'm', maxMicros: TEN_CENTS, maxTokens: 100 }, dependency: 'provider:one', ...overrides });
}

/** Units left in the burst and hourly windows of a principal, read without consuming. */
async function windowsLeft(p: Principal): Promise<number[]> {
  const scope = budgetScope(p.orgId ?? '');
  const burst = await counted.hitWindows(scope, p.id, [{ name: 'burst', limit: LIMIT.burst, windowMs: 60_000 }], 0);
  const hour = await counted.hitWindows(scope, p.id, [{ name: 'hour', limit: LIMIT.hourly, windowMs: 3_600_000 }], 0);
  return [burst.remaining, hour.remaining];
}

async function settleAll(results: AdmissionResult[]): Promise<void> {
  await Promise.all(results.map(async (r) => (r.ok ? r.ticket.settle(SUCCESS) : undefined)));
}

beforeAll(async () => {
  for (let i = 0; i < 3; i += 1) replicas.push(await RedisHotState.connect({ url: REDIS_URL, prefix: PREFIX }));
  counted = await RedisHotState.connect({ url: REDIS_URL, prefix: PREFIX });
  const client = counted.client;
  const send = client.sendCommand.bind(client);
  client.sendCommand = (command: Command, stream?: Parameters<typeof send>[1]) => {
    commands.push(command.name);
    return send(command, stream);
  };
});

afterAll(async () => {
  await Promise.all([...replicas, counted].map((r) => r.close()));
  await deletePrefix(PREFIX);
});

describe('one hot-state round trip for every counter gate of a request', () => {
  it('an admitted priced request costs exactly one round trip, its settlement one; a throttle-exempt one without budgets none', async () => {
    const p = freshPrincipal();
    const pipeline = pipelineOn(counted, p, { config: { backpressure: { concurrencyPerReplica: 10_000 }, routes: { guard: [], bypass: ['^/hooks/'] } } });
    // Warm-up: loads the scripts and reads the breaker's state once (first sight of the dependency).
    const warm = await pipeline.admit(priced(p));
    if (warm.ok) await warm.ticket.settle(SUCCESS);
    await pipeline.breakers.refresh('provider:one');
    for (let i = 0; i < 20; i += 1) {
      commands.length = 0;
      const result = await pipeline.admit(priced(p));
      expect(result.ok).toBe(true);
      // Rate limit (burst + hour), backpressure, circuit, cost/token/request lines on org, user and key (9), slot: one script.
      expect(commands).toEqual(['evalsha']);
      commands.length = 0;
      if (result.ok) await result.ticket.settle(SUCCESS);
      expect(commands).toEqual(['evalsha']);
    }
    const anonymous: Principal = { ...p, kind: 'anonymous', id: 'anon:10.9.8.7', orgId: null, userId: null, role: null, userType: 'anonymous' };
    commands.length = 0;
    const hook = await pipeline.admit(admissionRequest(anonymous, { route: '/hooks/stripe' }));
    expect(hook.ok).toBe(true);
    if (hook.ok) await hook.ticket.settle(SUCCESS);
    expect(commands).toEqual([]);
    // A refusal is one round trip as well, and consumes nothing.
    const broke = freshPrincipal();
    const poor = pipelineOn(counted, broke, { costCap: 0 });
    await poor.breakers.refresh('provider:one');
    commands.length = 0;
    const refused = await poor.admit(priced(broke));
    expect(!refused.ok && refused.refusal.code).toBe('budget_exceeded');
    expect(commands).toEqual(['evalsha']);
    expect(await windowsLeft(broke)).toEqual([LIMIT.burst, LIMIT.hourly]);
  });

  it('200 concurrent requests on three replicas against a budget of 10 calls: exactly 10 admitted and exactly 10 in the rate-limit windows', async () => {
    const p = freshPrincipal();
    const pipelines = replicas.map((r) => pipelineOn(r, p, { costCap: 10 * TEN_CENTS }));
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (pipelines[i % 3] as Pipeline).admit(priced(p))));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    for (const r of results) if (!r.ok) expect(r.refusal).toMatchObject({ gate: 'economics', code: 'budget_exceeded', status: 402 });
    expect(await windowsLeft(p)).toEqual([LIMIT.burst - 10, LIMIT.hourly - 10]);
    const month = lineKey('org', p.orgId ?? '', 'cost', periodWindow('month', Date.now()).label);
    expect(await counted.budgetUsage(budgetScope(p.orgId ?? ''), month)).toEqual({ used: 0, reserved: 10 * TEN_CENTS });
    await settleAll(results);
    expect(await counted.budgetUsage(budgetScope(p.orgId ?? ''), month)).toEqual({ used: 10 * 100, reserved: 0 });
  });

  it('refusals by backpressure, by the in-flight slot and by an open circuit leave the windows and budgets untouched', async () => {
    const p = freshPrincipal();
    // One replica of concurrency 10 (cap 9): paid callers are admitted up to 90 % of it (8).
    const slots = new InFlightSlots();
    const small = { backpressure: { concurrencyPerReplica: 10, capacityBuffer: 0, thresholds: { anonymous: 0.5, registered: 0.6, paid: 0.8, hard: 0.95 } }, circuit: { failureThreshold: 1 } };
    const pipeline = pipelineOn(counted, p, { config: small, extra: { slots } });
    const held = await Promise.all(Array.from({ length: 8 }, () => pipeline.admit(priced(p))));
    expect(held.every((r) => r.ok)).toBe(true);
    const before = await windowsLeft(p);
    expect(before).toEqual([LIMIT.burst - 8, LIMIT.hourly - 8]);
    const month = lineKey('user', p.userId ?? '', 'cost', periodWindow('month', Date.now()).label);
    const usage = () => counted.budgetUsage(budgetScope(p.orgId ?? ''), month);
    expect(await usage()).toEqual({ used: 0, reserved: 8 * TEN_CENTS });

    const overloaded = await Promise.all(Array.from({ length: 20 }, () => pipeline.admit(priced(p))));
    for (const r of overloaded) expect(!r.ok && r.refusal).toMatchObject({ gate: 'backpressure', code: 'overloaded' });
    // Privileged callers go past backpressure up to the hard cap, then meet the slot.
    const privileged = { ...p, userType: 'privileged' as const };
    const atSlot = await Promise.all(Array.from({ length: 5 }, () => pipeline.admit(priced(privileged))));
    expect(atSlot.filter((r) => r.ok)).toHaveLength(1);
    for (const r of atSlot) if (!r.ok) expect(r.refusal).toMatchObject({ gate: 'enqueue', code: 'overloaded' });
    expect(slots.held).toBe(9);
    expect(await windowsLeft(p)).toEqual([LIMIT.burst - 9, LIMIT.hourly - 9]);
    expect(await usage()).toEqual({ used: 0, reserved: 9 * TEN_CENTS });

    await settleAll([...held, ...atSlot]);
    // One upstream failure opens the circuit (threshold 1); what it refuses consumes nothing.
    const failing = await pipeline.admit(priced(p));
    if (!failing.ok) throw new Error('expected admission');
    await failing.ticket.settle({ kind: 'upstream_failure', reason: 'error' });
    const afterTrip = await windowsLeft(p);
    const open = await Promise.all(Array.from({ length: 10 }, () => pipeline.admit(priced(p))));
    for (const r of open) expect(!r.ok && r.refusal).toMatchObject({ gate: 'circuit', code: 'circuit_open' });
    expect(await windowsLeft(p)).toEqual(afterTrip);
    expect(await usage()).toEqual({ used: 9 * 100, reserved: 0 });
  });
});
