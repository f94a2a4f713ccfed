/**
 * The real economics gate inside the admission pipeline: what reaches a caller is a 402 with the
 * refusal, a later gate's refusal reserves nothing, a ticket settled twice charges once, and the
 * rate-limit windows and every budget line of a request are one hot-state step: a request refused
 * after the rate limit leaves the windows exactly as they were.
 */
import { describe, expect, it } from 'vitest';
import { MemoryAuditSink } from '../../audit/sink.js';
import { ManualClock } from '../../core/clock.js';
import type { Principal } from '../../identity/principal.js';
import { MemoryHotState } from '../../store/state/memory/memory-hot-state.js';
import type { HotState } from '../../store/state/port.js';
import { LiveAdmissionConfig } from '../live-config.js';
import { createPipeline } from '../pipeline.js';
import { admissionPrincipal, admissionRequest, countingState, testAdmissionConfig } from '../testing.js';
import { budgetScope, lineKey, NO_DEFAULTS } from './definitions.js';
import { Economics } from './economics-gate.js';
import { periodWindow } from './periods.js';
import { StaticRules, costRule } from './testing.js';

const ORG = 'org_a';
const TEN_CENTS = 100_000;

function setup(configInput: Record<string, unknown>, calls?: string[]) {
  const clock = new ManualClock(Date.UTC(2026, 10, 22, 12));
  const memory = new MemoryHotState({ clock });
  // Every method call on the port is a round trip on Redis; `calls` records them.
  const state: HotState = calls === undefined ? memory : countingState(memory, calls);
  const audit = new MemoryAuditSink();
  const economics = new Economics({ state, rules: new StaticRules().set(ORG, 'org', ORG, [costRule('month', 1_000_000)]), defaults: NO_DEFAULTS, clock, audit });
  const live = new LiveAdmissionConfig({ base: testAdmissionConfig(configInput), state });
  const pipeline = createPipeline({ state, config: live.config, limits: live.limits, economics, audit, clock });
  const usage = () => memory.budgetUsage(budgetScope(ORG), lineKey('org', ORG, 'cost', periodWindow('month', clock.now()).label));
  /** Units left in a principal's burst window, read without consuming. */
  const burstLeft = async (principal: Principal, limit: number) => (await memory.hitWindows(budgetScope(ORG), principal.id, [{ name: 'burst', limit, windowMs: 60_000 }], 0)).remaining;
  return { pipeline, usage, audit, burstLeft, clock };
}

const roomy = {
  rateLimits: { paid: { burst: 1000, burstWindowSeconds: 60, hourly: 10_000 } },
  backpressure: { concurrencyPerReplica: 10_000 },
};
const cost = { model: 'm', maxMicros: TEN_CENTS, maxTokens: 100 };

describe('economics in the pipeline', () => {
  it('200 concurrent requests against 1.00: 10 admitted, the rest 402 budget_exceeded; double settlement charges once', async () => {
    const { pipeline, usage } = setup(roomy);
    const principal = admissionPrincipal('paid');
    const results = await Promise.all(Array.from({ length: 200 }, () => pipeline.admit(admissionRequest(principal, { cost }))));
    const admitted = results.flatMap((r) => (r.ok ? [r.ticket] : []));
    expect(admitted).toHaveLength(10);
    for (const r of results) if (!r.ok) expect(r.refusal).toMatchObject({ gate: 'economics', code: 'budget_exceeded', status: 402 });
    await Promise.all(
      admitted.flatMap((t) => [t.settle({ kind: 'unmetered', reason: 'client_abort' }), t.settle({ kind: 'success', actualMicros: 1, actualTokens: 1 })]),
    );
    expect(await usage()).toEqual({ used: 1_000_000, reserved: 0 });
  });

  it('budget refusals after passing the rate limit consume nothing from the windows', async () => {
    const { pipeline, burstLeft } = setup(roomy);
    const principal = admissionPrincipal('paid');
    const results = await Promise.all(Array.from({ length: 200 }, () => pipeline.admit(admissionRequest(principal, { cost }))));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    // 190 refused by the budget: only the 10 admitted are in the burst window.
    expect(await burstLeft(principal, 1000)).toBe(990);
  });

  it('backpressure and circuit refusals consume nothing from the windows or the budget, and keep gate order', async () => {
    const { pipeline, burstLeft, usage } = setup({
      rateLimits: { paid: { burst: 3, burstWindowSeconds: 60, hourly: null } },
      backpressure: { concurrencyPerReplica: 2, capacityBuffer: 0, thresholds: { anonymous: 0.2, registered: 0.4, paid: 0.5, hard: 1 } },
      circuit: { failureThreshold: 1 },
    });
    const principal = admissionPrincipal('paid');
    const first = await pipeline.admit(admissionRequest(principal, { cost }));
    if (!first.ok) throw new Error('expected admission');
    // Load 1 of 2 is the paid share: backpressure refuses, nothing is consumed.
    for (let i = 0; i < 5; i += 1) expect(await pipeline.admit(admissionRequest(principal, { cost }))).toMatchObject({ ok: false, refusal: { gate: 'backpressure' } });
    expect(await burstLeft(principal, 3)).toBe(2);
    expect(await usage()).toEqual({ used: 0, reserved: TEN_CENTS });
    await first.ticket.settle({ kind: 'success', actualMicros: 5, actualTokens: 1 });
    const failing = await pipeline.admit(admissionRequest(principal, { cost, dependency: 'provider:p' }));
    if (!failing.ok) throw new Error('expected admission');
    await failing.ticket.settle({ kind: 'upstream_failure', reason: 'error' });
    for (let i = 0; i < 5; i += 1) expect(await pipeline.admit(admissionRequest(principal, { cost, dependency: 'provider:p' }))).toMatchObject({ ok: false, refusal: { gate: 'circuit' } });
    expect(await burstLeft(principal, 3)).toBe(1);
    // Gate order: once over the rate limit, that is the answer, even with the circuit open.
    expect(await pipeline.admit(admissionRequest(principal, { cost }))).toMatchObject({ ok: true });
    expect(await pipeline.admit(admissionRequest(principal, { cost, dependency: 'provider:p' }))).toMatchObject({ ok: false, refusal: { gate: 'rate_limit', code: 'rate_limited' } });
  });

  it('one hot-state call for every counter gate of an admitted request, one for its settlement', async () => {
    const calls: string[] = [];
    const { pipeline } = setup(roomy, calls);
    const principal = admissionPrincipal('paid');
    const warm = await pipeline.admit(admissionRequest(principal, { cost, dependency: 'provider:p' }));
    if (warm.ok) await warm.ticket.settle({ kind: 'success', actualMicros: 1, actualTokens: 1 });
    await pipeline.breakers.refresh('provider:p');
    calls.length = 0;
    const result = await pipeline.admit(admissionRequest(principal, { cost, dependency: 'provider:p' }));
    expect(calls).toEqual(['admit']);
    calls.length = 0;
    if (result.ok) await result.ticket.settle({ kind: 'success', actualMicros: 1, actualTokens: 1 });
    expect(calls).toEqual(['settleReservations']);
  });

  it('a refusal at the slot reserves nothing', async () => {
    const { pipeline, usage } = setup({
      rateLimits: { privileged: { burst: 1000, burstWindowSeconds: 60, hourly: null } },
      backpressure: { concurrencyPerReplica: 1, capacityBuffer: 0, thresholds: { anonymous: 0.2, registered: 0.5, paid: 0.9, hard: 1 } },
    });
    const principal = admissionPrincipal('privileged');
    // Both pass backpressure; one loses the slot, decided before the store step, so it never reserves.
    const results = await Promise.all([pipeline.admit(admissionRequest(principal, { cost })), pipeline.admit(admissionRequest(principal, { cost }))]);
    const winner = results.find((r) => r.ok);
    const loser = results.find((r) => !r.ok);
    expect(loser?.ok === false && loser.refusal.gate).toBe('enqueue');
    expect(await usage()).toEqual({ used: 0, reserved: TEN_CENTS });
    if (winner?.ok === true) await winner.ticket.settle({ kind: 'success', actualMicros: 42, actualTokens: 1 });
    expect(await usage()).toEqual({ used: 42, reserved: 0 });
  });
});
