import { describe, expect, it } from 'vitest';
import { MemoryAuditSink } from '../../audit/sink.js';
import { ManualClock } from '../../core/clock.js';
import { MemoryHotState } from '../../store/state/memory/memory-hot-state.js';
import { countingState, switchableState } from '../testing.js';
import type { HotState } from '../../store/state/port.js';
import { budgetScope, lineKey, NO_DEFAULTS, type DefaultBudgets } from './definitions.js';
import { Economics, MAX_CACHED_SUBJECTS, costEstimate, type EconomicsOptions } from './economics-gate.js';
import { periodWindow } from './periods.js';
import { BudgetReconciler } from './reconciler.js';
import { StaticRules, budgetPrincipal, costRule, modelRequest } from './testing.js';

const ORG = 'org_economics_test';
const ONE = 1_000_000;
const TEN_CENTS = 100_000;

function harness(options: Partial<EconomicsOptions> & { state?: HotState } = {}) {
  const clock = options.clock instanceof ManualClock ? options.clock : new ManualClock(Date.UTC(2026, 10, 22, 12));
  const state = options.state ?? new MemoryHotState({ clock });
  const audit = new MemoryAuditSink();
  const rules = new StaticRules().set(ORG, 'org', ORG, [costRule('month', ONE)]);
  const economics = new Economics({ state, rules, defaults: NO_DEFAULTS, clock, audit, ...options });
  const monthKey = lineKey('org', ORG, 'cost', periodWindow('month', clock.now()).label);
  const usage = () => state.budgetUsage(budgetScope(ORG), monthKey);
  return { clock, state, audit, rules, economics, usage, monthKey };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('economics gate: a budget of 1.00 and 200 concurrent requests of up to 0.10', () => {
  it('admits exactly 10 when none settle, and never reserves more than the cap', async () => {
    const h = harness();
    const p = budgetPrincipal(ORG);
    const results = await Promise.all(Array.from({ length: 200 }, () => h.economics.reserve(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1000 }))));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    const refused = results.filter((r) => !r.ok);
    expect(refused).toHaveLength(190);
    for (const r of refused) if (!r.ok) expect(r.refusal).toMatchObject({ gate: 'economics', code: 'budget_exceeded', status: 402 });
    expect(await h.usage()).toEqual({ used: 0, reserved: ONE });
  });

  it('never has more than 1.00 reserved plus committed at any point while requests settle at random times', async () => {
    const h = harness();
    const p = budgetPrincipal(ORG);
    let committed = 0;
    let admitted = 0;
    const check = async () => {
      const u = await h.usage();
      expect(u.used + u.reserved).toBeLessThanOrEqual(ONE);
      expect(u.used).toBeLessThanOrEqual(ONE);
    };
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        for (let k = 0; k < i % 7; k += 1) await tick();
        const r = await h.economics.reserve(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1000 }));
        await check();
        if (!r.ok) return;
        admitted += 1;
        for (let k = 0; k < (i * 13) % 5; k += 1) await tick();
        const actual = (i * 7919) % (TEN_CENTS + 1);
        await r.settle({ kind: 'success', actualMicros: actual, actualTokens: 10 });
        committed += actual;
        await check();
      }),
    );
    const final = await h.usage();
    expect(final).toEqual({ used: committed, reserved: 0 });
    expect(admitted).toBeGreaterThan(10);
  });
});

describe('economics gate: settlement', () => {
  it('commits the actual cost and releases the rest', async () => {
    const h = harness();
    const r = await h.economics.reserve(modelRequest(budgetPrincipal(ORG), { maxMicros: TEN_CENTS, maxTokens: 500 }));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(await h.usage()).toEqual({ used: 0, reserved: TEN_CENTS });
    await r.settle({ kind: 'success', actualMicros: 1234, actualTokens: 50 });
    expect(await h.usage()).toEqual({ used: 1234, reserved: 0 });
  });

  it('is idempotent: a second settle, even with another outcome, changes nothing', async () => {
    const h = harness();
    const request = modelRequest(budgetPrincipal(ORG), { maxMicros: TEN_CENTS, maxTokens: 500 });
    const r = await h.economics.reserve(request);
    if (!r.ok) throw new Error('expected admission');
    await Promise.all([
      r.settle({ kind: 'success', actualMicros: 500, actualTokens: 5 }),
      r.settle({ kind: 'success', actualMicros: 900, actualTokens: 9 }),
    ]);
    await r.settle({ kind: 'upstream_failure', reason: 'error' });
    expect(await h.usage()).toEqual({ used: 500, reserved: 0 });
    // The hot state itself answers a replayed commit with the first actuals (money, tokens, requests).
    expect(await h.state.commit(budgetScope(ORG), `${request.requestId}:0`, [900, 9, 1])).toEqual({ ok: true, state: 'already_committed', amounts: [500, 5, 1] });
  });

  it('refuses a second reservation under the same request id', async () => {
    const h = harness();
    const request = modelRequest(budgetPrincipal(ORG), { maxMicros: 10, maxTokens: 1 });
    expect((await h.economics.reserve(request)).ok).toBe(true);
    const again = await h.economics.reserve(request);
    expect(again.ok ? null : again.refusal.code).toBe('conflict');
    expect(await h.usage()).toEqual({ used: 0, reserved: 10 });
  });

  it('settles a client that disconnected mid-stream exactly once, at the reserved maximum, flagged', async () => {
    const h = harness();
    const r = await h.economics.reserve(modelRequest(budgetPrincipal(ORG), { maxMicros: TEN_CENTS, maxTokens: 500 }));
    if (!r.ok) throw new Error('expected admission');
    // The stream's close handler and the pipeline's finally both settle.
    await Promise.all([
      r.settle({ kind: 'unmetered', reason: 'client_abort' }),
      r.settle({ kind: 'unmetered', reason: 'client_abort' }),
      r.settle({ kind: 'success', actualMicros: 1, actualTokens: 1 }),
    ]);
    expect(await h.usage()).toEqual({ used: TEN_CENTS, reserved: 0 });
    expect(h.audit.events.filter((e) => e.action === 'budget.unmetered')).toHaveLength(1);
    expect(h.audit.events[0]).toMatchObject({ orgId: ORG, details: { reason: 'client_abort', chargedMicros: TEN_CENTS } });
    const metric = await h.economics.metrics.unmetered.get();
    expect(metric.values.find((v) => v.labels.reason === 'client_abort')?.value).toBe(1);
  });

  it('releases everything when the upstream failed', async () => {
    const h = harness();
    const r = await h.economics.reserve(modelRequest(budgetPrincipal(ORG), { maxMicros: TEN_CENTS, maxTokens: 500 }));
    if (!r.ok) throw new Error('expected admission');
    await r.settle({ kind: 'upstream_failure', reason: 'timeout' });
    expect(await h.usage()).toEqual({ used: 0, reserved: 0 });
  });

  it('charges at most what was reserved when the reported actual is larger or nonsense', async () => {
    const h = harness();
    const a = await h.economics.reserve(modelRequest(budgetPrincipal(ORG), { maxMicros: 100, maxTokens: 5 }));
    const b = await h.economics.reserve(modelRequest(budgetPrincipal(ORG), { maxMicros: 100, maxTokens: 5 }));
    if (!a.ok || !b.ok) throw new Error('expected admission');
    // Tokens past the estimate too, but this org has no token line: only the money overrun counts.
    await a.settle({ kind: 'success', actualMicros: 5000, actualTokens: 50 });
    await b.settle({ kind: 'success', actualMicros: 0.5, actualTokens: 5 });
    expect(await h.usage()).toEqual({ used: 200, reserved: 0 });
    const overruns = await h.economics.metrics.overruns.get();
    expect(overruns.values.map((v) => [v.labels.metric, v.value])).toEqual([['cost', 1]]);
  });
});

describe('economics gate: lines, metrics and prices', () => {
  it('reserves on org, user and key lines and every period at once; the tightest refuses', async () => {
    const h = harness();
    const p = budgetPrincipal(ORG, 'usr_a', 'key_a');
    h.rules.set(ORG, 'user', 'usr_a', [costRule('day', 250)]).set(ORG, 'key', 'key_a', [costRule('total', 1000)]);
    const ok = await Promise.all([1, 2, 3].map(() => h.economics.reserve(modelRequest(p, { maxMicros: 100, maxTokens: 1 }))));
    expect(ok.map((r) => r.ok)).toEqual([true, true, false]);
    const refused = ok[2];
    expect(refused?.ok === false && refused.refusal.limit).toMatchObject({ subject: 'user', metric: 'cost', period: 'day:2026-11-22', cap: 250, reserved: 200 });
    expect(refused?.ok === false && refused.refusal.retryAfterSeconds).toBe(12 * 3600);
    // A refusal reserves nothing anywhere.
    expect(await h.usage()).toEqual({ used: 0, reserved: 200 });
  });

  it('counts requests and tokens on their own lines, all or nothing across metrics', async () => {
    const h = harness();
    const p = budgetPrincipal(ORG, 'usr_b');
    h.rules.set(ORG, 'user', 'usr_b', [
      { metric: 'requests', period: 'day', cap: 3, alertThresholds: [] },
      { metric: 'tokens', period: 'day', cap: 1000, alertThresholds: [] },
    ]);
    const day = periodWindow('day', h.clock.now()).label;
    const tokens = () => h.state.budgetUsage(budgetScope(ORG), lineKey('user', 'usr_b', 'tokens', day));
    const requests = () => h.state.budgetUsage(budgetScope(ORG), lineKey('user', 'usr_b', 'requests', day));
    const a = await h.economics.reserve(modelRequest(p, { maxMicros: 10, maxTokens: 600 }));
    // Fits the request and cost lines but not the token line: nothing is held on any of them.
    const b = await h.economics.reserve(modelRequest(p, { maxMicros: 10, maxTokens: 600 }));
    expect(a.ok).toBe(true);
    expect(b.ok ? null : b.refusal.limit).toMatchObject({ metric: 'tokens' });
    expect(await requests()).toEqual({ used: 0, reserved: 1 });
    expect(await h.usage()).toEqual({ used: 0, reserved: 10 });
    if (!a.ok) return;
    await a.settle({ kind: 'success', actualMicros: 7, actualTokens: 120 });
    expect(await tokens()).toEqual({ used: 120, reserved: 0 });
    expect(await requests()).toEqual({ used: 1, reserved: 0 });
    // Work without a cost estimate counts as a request only.
    const plain = await Promise.all([1, 2, 3].map(() => h.economics.reserve(modelRequest(p))));
    expect(plain.map((r) => r.ok)).toEqual([true, true, false]);
  });

  it('refuses a model without a known price unless config allows it', async () => {
    const strict = harness();
    const unpriced = costEstimate('mystery-model', undefined, 100);
    const refused = await strict.economics.reserve(modelRequest(budgetPrincipal(ORG), unpriced));
    expect(refused.ok ? null : refused.refusal).toMatchObject({ code: 'unknown_price', status: 400, gate: 'economics' });
    const lenient = harness({ allowUnpriced: true });
    expect((await lenient.economics.reserve(modelRequest(budgetPrincipal(ORG), unpriced))).ok).toBe(true);
    const priced = costEstimate('known', { inputMicrosPerMillion: 1_000_000, outputMicrosPerMillion: 2_000_000 }, 1000, 100);
    expect(priced).toEqual({ model: 'known', maxMicros: 100 + 1800, maxTokens: 1000 });
  });

  it('emits each alert threshold once per period, across replicas', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 12));
    const state = new MemoryHotState({ clock });
    const a = harness({ clock, state });
    const b = harness({ clock, state, audit: a.audit });
    for (const h of [a, b]) h.rules.set(ORG, 'org', ORG, [costRule('month', 1000, [50, 80, 100])]);
    const spend = async (h: typeof a, micros: number) => {
      const r = await h.economics.reserve(modelRequest(budgetPrincipal(ORG), { maxMicros: micros, maxTokens: 1 }));
      if (!r.ok) throw new Error('expected admission');
      await r.settle({ kind: 'success', actualMicros: micros, actualTokens: 1 });
    };
    await spend(a, 400);
    expect(a.audit.events).toHaveLength(0);
    await Promise.all([spend(a, 100), spend(b, 100)]);
    await spend(b, 50);
    const alerts = a.audit.events.filter((e) => e.action === 'budget.alert');
    expect(alerts.map((e) => e.details?.threshold)).toEqual([50]);
    await Promise.all([spend(a, 200), spend(b, 150)]);
    const thresholds = a.audit.events.filter((e) => e.action === 'budget.alert').map((e) => Number(e.details?.threshold));
    expect(thresholds.sort((x, y) => x - y)).toEqual([50, 80, 100]);
    // Next month the line starts again and so do its alerts.
    clock.set(Date.UTC(2026, 11, 1, 0, 0, 1));
    await spend(a, 600);
    expect(a.audit.events.filter((e) => e.action === 'budget.alert')).toHaveLength(4);
  });
});

describe('economics gate: one reservation per call', () => {
  const rule = (metric: 'cost' | 'tokens' | 'requests', period: 'day' | 'month' | 'total', cap: number) => ({ metric, period, cap, alertThresholds: [] });

  it('holds money, tokens and requests of a call in one reservation, each line taking its own amount', () => {
    const h = harness();
    h.rules.set(ORG, 'org', ORG, [rule('cost', 'month', ONE), rule('tokens', 'day', 10_000), rule('requests', 'day', 100)]);
    const plan = h.economics.plan(modelRequest(budgetPrincipal(ORG), { maxMicros: 700, maxTokens: 70 }));
    if (!plan.ok) throw new Error('expected a plan');
    expect(plan.reservations).toHaveLength(1);
    expect(plan.reservations[0]?.amounts).toEqual([700, 70, 1]);
    expect(plan.reservations[0]?.lines.map((l) => [l.key.split(':')[3], l.amountIndex])).toEqual([['cost', 0], ['tokens', 1], ['requests', 2]]);
  });

  it('splits more than eight lines over reservations and charges every line its own actual', async () => {
    const h = harness();
    const p = budgetPrincipal(ORG, 'usr_many', 'key_many');
    const all = [rule('cost', 'month', ONE), rule('tokens', 'day', 10_000), rule('requests', 'day', 100), rule('cost', 'total', ONE)];
    h.rules.set(ORG, 'org', ORG, all).set(ORG, 'user', 'usr_many', all).set(ORG, 'key', 'key_many', all);
    const request = modelRequest(p, { maxMicros: 900, maxTokens: 90 });
    const plan = h.economics.plan(request);
    if (!plan.ok) throw new Error('expected a plan');
    expect(plan.reservations.map((r) => r.lines.length)).toEqual([8, 4]);
    const r = await h.economics.reserve(request);
    if (!r.ok) throw new Error('expected admission');
    await r.settle({ kind: 'success', actualMicros: 321, actualTokens: 32 });
    const keys = plan.reservations.flatMap((res) => res.lines.map((l) => l.key));
    const used = await Promise.all(keys.map(async (key) => [key.split(':').slice(0, 4).join(':'), (await h.state.budgetUsage(budgetScope(ORG), key)).used]));
    expect(used).toEqual(
      ['org:' + ORG, 'user:usr_many', 'key:key_many'].flatMap((subject) => [
        [`budget:${subject}:cost`, 321],
        [`budget:${subject}:tokens`, 32],
        [`budget:${subject}:requests`, 1],
        [`budget:${subject}:cost`, 321],
      ]),
    );
  });
});

describe('economics gate: round trips', () => {
  it('reserves every metric in one hot-state step and settles them in one; alerts read no line', async () => {
    const h = harness();
    h.rules.set(ORG, 'org', ORG, [costRule('month', 1000, [50]), { metric: 'tokens', period: 'day', cap: 10_000, alertThresholds: [] }, { metric: 'requests', period: 'day', cap: 100, alertThresholds: [] }]);
    const calls: string[] = [];
    const counted = countingState(h.state, calls);
    const economics = new Economics({ state: counted, rules: h.rules, defaults: NO_DEFAULTS, clock: h.clock, audit: h.audit });
    for (let i = 0; i < 6; i += 1) {
      calls.length = 0;
      const r = await economics.reserve(modelRequest(budgetPrincipal(ORG), { maxMicros: 100, maxTokens: 10 }));
      if (!r.ok) throw new Error('expected admission');
      expect(calls).toEqual(['admit']);
      calls.length = 0;
      await r.settle({ kind: 'success', actualMicros: 100, actualTokens: 10 });
      // The 50 % alert (500 of 1000) costs one marker write, once; no settlement reads a line.
      expect(calls).toEqual(i === 4 ? ['settleReservations', 'setIfAbsent'] : ['settleReservations']);
    }
    // The alert fired at the settlement that crossed it, with the usage that settlement reported.
    expect(h.audit.events.filter((e) => e.action === 'budget.alert').map((e) => e.details?.used)).toEqual([500]);
  });
});

describe('economics gate: default budgets', () => {
  const defaults: DefaultBudgets = { org: [], user: [costRule('month', 300_000)], key: [] };

  it('concurrent first requests of a new user on two replicas cannot exceed the default cap', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 12));
    const state = new MemoryHotState({ clock });
    // Two replicas, each with a cold cache and the same config defaults, sharing one hot state.
    const one = harness({ clock, state, defaults, rules: new StaticRules() });
    const two = harness({ clock, state, defaults, rules: new StaticRules() });
    const p = budgetPrincipal(ORG, 'usr_new');
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? one : two).economics.reserve(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1 }))),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(3);
    const key = lineKey('user', 'usr_new', 'cost', periodWindow('month', clock.now()).label);
    expect(await state.budgetUsage(budgetScope(ORG), key)).toEqual({ used: 0, reserved: 300_000 });
  });

  it('an explicit budget replaces the default of the same metric and period and keeps the same counter', async () => {
    const h = harness({ defaults });
    const p = budgetPrincipal(ORG, 'usr_c');
    const first = await h.economics.reserve(modelRequest(p, { maxMicros: 250_000, maxTokens: 1 }));
    expect(first.ok).toBe(true);
    h.rules.set(ORG, 'user', 'usr_c', [costRule('month', 400_000)]);
    expect((await h.economics.reserve(modelRequest(p, { maxMicros: 150_000, maxTokens: 1 }))).ok).toBe(true);
    expect((await h.economics.reserve(modelRequest(p, { maxMicros: 1, maxTokens: 1 }))).ok).toBe(false);
  });
});

describe('economics gate: leaks and outages', () => {
  it('the reconciler frees reservations nobody settled once their ttl has passed', async () => {
    const h = harness({ reservationTtlMs: 60_000 });
    const reconciler = new BudgetReconciler({ state: h.state, tracker: h.economics.tracker, clock: h.clock, reservationTtlMs: 60_000 });
    for (let i = 0; i < 3; i += 1) expect((await h.economics.reserve(modelRequest(budgetPrincipal(ORG), { maxMicros: TEN_CENTS, maxTokens: 1 }))).ok).toBe(true);
    expect(await reconciler.reconcileOnce()).toBe(0);
    h.clock.advance(60_001);
    expect(await reconciler.reconcileOnce()).toBe(3);
    expect(await h.usage()).toEqual({ used: 0, reserved: 0 });
    expect(h.economics.tracker.scopes()).toEqual([budgetScope(ORG)]);
    // Once everything it reserved there is past its deadline and reaped, the scope is forgotten.
    h.clock.advance(120_000);
    await reconciler.reconcileOnce();
    expect(h.economics.tracker.scopes()).toEqual([]);
  });

  it('a refusal caused by leaked reservations reaps them and admits', async () => {
    const h = harness({ reservationTtlMs: 60_000 });
    const p = budgetPrincipal(ORG);
    for (let i = 0; i < 10; i += 1) await h.economics.reserve(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1 }));
    expect((await h.economics.reserve(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1 }))).ok).toBe(false);
    h.clock.advance(60_001);
    expect((await h.economics.reserve(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1 }))).ok).toBe(true);
    expect(await h.usage()).toEqual({ used: 0, reserved: TEN_CENTS });
  });

  it('the retry after reaping works when the lines of other metrics of the call fit and its money line does not', async () => {
    const h = harness({ reservationTtlMs: 60_000 });
    h.rules.set(ORG, 'org', ORG, [costRule('month', 300), { metric: 'requests', period: 'day', cap: 100, alertThresholds: [] }]);
    const p = budgetPrincipal(ORG);
    for (let i = 0; i < 3; i += 1) expect((await h.economics.reserve(modelRequest(p, { maxMicros: 100, maxTokens: 1 }))).ok).toBe(true);
    h.clock.advance(60_001);
    // The request line fits, the money line refuses; after the reap the whole reservation is tried again.
    const retried = await h.economics.reserve(modelRequest(p, { maxMicros: 100, maxTokens: 1 }));
    expect(retried.ok).toBe(true);
    if (retried.ok) await retried.settle({ kind: 'success', actualMicros: 60, actualTokens: 1 });
    expect(await h.usage()).toEqual({ used: 60, reserved: 0 });
  });

  it('answers 503 dependency_unavailable and reserves nothing when the hot state is down', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 12));
    const switchable = switchableState(new MemoryHotState({ clock }));
    const h = harness({ clock, state: switchable.state });
    h.rules.set(ORG, 'org', ORG, [costRule('month', ONE), { metric: 'tokens', period: 'month', cap: 10_000, alertThresholds: [] }]);
    const p = budgetPrincipal(ORG);
    switchable.setDown(true);
    const refused = await h.economics.reserve(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 10 }));
    expect(refused.ok ? null : refused.refusal).toMatchObject({ code: 'dependency_unavailable', status: 503, gate: 'economics' });
    switchable.setDown(false);
    expect(await h.usage()).toEqual({ used: 0, reserved: 0 });
    expect((await h.economics.reserve(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 10 }))).ok).toBe(true);
  });

  it('a settlement that cannot reach the hot state leaves the reservation for the reconciler, charged nothing', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 22, 12));
    const switchable = switchableState(new MemoryHotState({ clock }));
    const h = harness({ clock, state: switchable.state, reservationTtlMs: 60_000 });
    const r = await h.economics.reserve(modelRequest(budgetPrincipal(ORG), { maxMicros: TEN_CENTS, maxTokens: 10 }));
    if (!r.ok) throw new Error('expected admission');
    switchable.setDown(true);
    await r.settle({ kind: 'success', actualMicros: 5, actualTokens: 1 });
    switchable.setDown(false);
    expect(await h.usage()).toEqual({ used: 0, reserved: TEN_CENTS });
    clock.advance(60_001);
    const reconciler = new BudgetReconciler({ state: h.state, tracker: h.economics.tracker, clock, reservationTtlMs: 60_000 });
    expect(await reconciler.reconcileOnce()).toBe(1);
    expect(await h.usage()).toEqual({ used: 0, reserved: 0 });
    const failed = await h.economics.metrics.settlements.counter.get();
    expect(failed.values.find((v) => v.labels.result === 'failed')?.value).toBe(1);
  });

  it('an org without budgets reserves nothing; a budget given to it later applies to its next request', async () => {
    const h = harness();
    const other = 'org_without_budgets';
    const p = budgetPrincipal(other);
    expect(h.economics.plan(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1 }))).toMatchObject({ ok: true, reservations: [] });
    h.rules.set(other, 'user', p.userId ?? '', [costRule('month', TEN_CENTS)]);
    const plan = h.economics.plan(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1 }));
    expect(plan.ok && plan.reservations.map((r) => r.amounts)).toEqual([[TEN_CENTS, 1, 1]]);
  });

  it('keeps a subject\'s resolved lines only while its rules and periods last: a new day, a changed budget', async () => {
    const clock = new ManualClock(Date.UTC(2026, 11, 1, 23, 59, 59, 500));
    const h = harness({ clock });
    const p = budgetPrincipal(ORG);
    h.rules.set(ORG, 'org', ORG, [costRule('day', ONE)]);
    const keysOf = (): string[] => {
      const plan = h.economics.plan(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1 }));
      return plan.ok ? plan.reservations.flatMap((r) => r.lines.map((l) => `${l.key} cap ${l.cap}`)) : [];
    };
    expect(keysOf()).toEqual([`${lineKey('org', ORG, 'cost', 'day:2026-12-01')} cap ${ONE}`]);
    expect(keysOf()).toEqual([`${lineKey('org', ORG, 'cost', 'day:2026-12-01')} cap ${ONE}`]);
    clock.advance(500);
    expect(keysOf()).toEqual([`${lineKey('org', ORG, 'cost', 'day:2026-12-02')} cap ${ONE}`]);
    h.rules.set(ORG, 'org', ORG, [costRule('day', 2 * ONE)]);
    expect(keysOf()).toEqual([`${lineKey('org', ORG, 'cost', 'day:2026-12-02')} cap ${2 * ONE}`]);
  });

  it('keeps at most MAX_CACHED_SUBJECTS subjects\' resolved lines, then starts over and resolves them again', () => {
    // A default key budget gives every key id lines of its own, so each new key is a new cached subject.
    const h = harness({ defaults: { org: [], user: [], key: [costRule('day', ONE)] } });
    const keyLine = (keyId: string) => {
      const lines = h.economics.linesFor(modelRequest(budgetPrincipal(ORG, 'usr_test', keyId)), ORG);
      const line = lines.find((l) => l.subject.kind === 'key');
      if (line === undefined) throw new Error(`no key line for ${keyId}`);
      return line;
    };
    const first = keyLine('key_0');
    // The org and key_0 are cached; fill the cache to exactly its bound with other keys.
    for (let i = 1; i <= MAX_CACHED_SUBJECTS - 2; i += 1) keyLine(`key_${i}`);
    expect(keyLine('key_0')).toBe(first);
    // One subject more clears the cache: key_0's lines are resolved again, equal but new.
    keyLine('key_overflow');
    const again = keyLine('key_0');
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });

  it('counts Retry-After of an exhausted budget from the moment of the refusal', async () => {
    const clock = new ManualClock(Date.UTC(2026, 11, 1, 23, 0, 0));
    const h = harness({ clock });
    const p = budgetPrincipal(ORG);
    h.rules.set(ORG, 'org', ORG, [costRule('day', TEN_CENTS)]);
    expect((await h.economics.reserve(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1 }))).ok).toBe(true);
    const first = await h.economics.reserve(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1 }));
    // Five minutes on (inside the held reservation's ttl, so it still holds the budget).
    clock.advance(5 * 60 * 1000);
    const later = await h.economics.reserve(modelRequest(p, { maxMicros: TEN_CENTS, maxTokens: 1 }));
    expect(!first.ok && first.refusal.retryAfterSeconds).toBe(3600);
    expect(!later.ok && later.refusal.retryAfterSeconds).toBe(3300);
  });

  it('anonymous callers have no org and no budget lines', async () => {
    const h = harness();
    const anon = { ...budgetPrincipal(ORG), orgId: null, userId: null, kind: 'anonymous' as const };
    const r = await h.economics.reserve(modelRequest(anon, { maxMicros: TEN_CENTS, maxTokens: 1 }));
    expect(r.ok).toBe(true);
    if (r.ok) await r.settle({ kind: 'success', actualMicros: 1, actualTokens: 1 });
  });
});
