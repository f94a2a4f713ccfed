/**
 * The real economics gate inside the admission pipeline: what reaches a caller is a 402 with the
 * refusal, a later gate's refusal gives the reservation back, and a ticket settled twice charges once.
 */
import { describe, expect, it } from 'vitest';
import { MemoryAuditSink } from '../../audit/sink.js';
import { ManualClock } from '../../core/clock.js';
import { MemoryHotState } from '../../store/state/memory/memory-hot-state.js';
import { LiveAdmissionConfig } from '../live-config.js';
import { createPipeline } from '../pipeline.js';
import { admissionPrincipal, admissionRequest, testAdmissionConfig } from '../testing.js';
import { budgetScope, lineKey, NO_DEFAULTS } from './definitions.js';
import { Economics } from './economics-gate.js';
import { periodWindow } from './periods.js';
import { StaticRules, costRule } from './testing.js';

const ORG = 'org_a';
const TEN_CENTS = 100_000;

function setup(configInput: Record<string, unknown>) {
  const clock = new ManualClock(Date.UTC(2026, 10, 22, 12));
  const state = new MemoryHotState({ clock });
  const audit = new MemoryAuditSink();
  const economics = new Economics({ state, rules: new StaticRules().set(ORG, 'org', ORG, [costRule('month', 1_000_000)]), defaults: NO_DEFAULTS, clock, audit });
  const live = new LiveAdmissionConfig({ base: testAdmissionConfig(configInput), state });
  const pipeline = createPipeline({ state, config: live.config, limits: live.limits, economics, audit, clock });
  const usage = () => state.budgetUsage(budgetScope(ORG), lineKey('org', ORG, 'cost', periodWindow('month', clock.now()).label));
  return { pipeline, usage, audit };
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

  it('a refusal at the slot after economics admitted gives the reservation back', async () => {
    const { pipeline, usage } = setup({
      rateLimits: { privileged: { burst: 1000, burstWindowSeconds: 60, hourly: null } },
      backpressure: { concurrencyPerReplica: 1, capacityBuffer: 0, thresholds: { anonymous: 0.2, registered: 0.5, paid: 0.9, hard: 1 } },
    });
    const principal = admissionPrincipal('privileged');
    // Both pass the backpressure read and reserve budget; one loses the slot and must give it back.
    const results = await Promise.all([pipeline.admit(admissionRequest(principal, { cost })), pipeline.admit(admissionRequest(principal, { cost }))]);
    const winner = results.find((r) => r.ok);
    const loser = results.find((r) => !r.ok);
    expect(loser?.ok === false && loser.refusal.gate).toBe('enqueue');
    expect(await usage()).toEqual({ used: 0, reserved: TEN_CENTS });
    if (winner?.ok === true) await winner.ticket.settle({ kind: 'success', actualMicros: 42, actualTokens: 1 });
    expect(await usage()).toEqual({ used: 42, reserved: 0 });
  });
});
