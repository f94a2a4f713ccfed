import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { MemoryAuditSink } from '../audit/sink.js';
import { ManualClock } from '../core/clock.js';
import { MemoryHotState } from '../store/state/memory/memory-hot-state.js';
import type { AdmissionConfig } from './config.js';
import { InFlightSlots } from './gates/slots.js';
import { LiveAdmissionConfig } from './live-config.js';
import { createPipeline, type PipelineDeps } from './pipeline.js';
import { FakeEconomics, admissionPrincipal, admissionRequest, switchableState, testAdmissionConfig } from './testing.js';
import type { AdmissionResult } from './types.js';

function setup(configInput: Record<string, unknown> = {}, extra: Partial<PipelineDeps> = {}) {
  const clock = new ManualClock();
  const memory = new MemoryHotState({ clock });
  const switchable = switchableState(memory);
  const config: AdmissionConfig = testAdmissionConfig(configInput);
  const live = new LiveAdmissionConfig({ base: config, state: switchable.state });
  const audit = new MemoryAuditSink();
  const economics = new FakeEconomics();
  const registry = new Registry();
  const pipeline = createPipeline({ state: switchable.state, config: live.config, limits: live.limits, economics, audit, metrics: registry, clock, ...extra });
  return { clock, memory, switchable, config, live, audit, economics, registry, pipeline, slots: pipeline.slots };
}

function ok(result: AdmissionResult) {
  if (!result.ok) throw new Error(`refused by ${result.refusal.gate}: ${result.refusal.code}`);
  return result;
}

const tightBurst = { rateLimits: { registered: { burst: 5, burstWindowSeconds: 60, hourly: 8 } } };

describe('rate limit gate', () => {
  it('admits exactly the burst, refuses the rest with 429, Retry-After and RateLimit headers', async () => {
    const { pipeline } = setup(tightBurst);
    const principal = admissionPrincipal('registered');
    const results = await Promise.all(Array.from({ length: 20 }, () => pipeline.admit(admissionRequest(principal))));
    const admitted = results.filter((r) => r.ok);
    expect(admitted).toHaveLength(5);
    const refused = results.find((r) => !r.ok);
    if (refused === undefined || refused.ok) throw new Error('expected a refusal');
    expect(refused.refusal).toMatchObject({ gate: 'rate_limit', code: 'rate_limited', status: 429, limit: { window: 'burst', limit: 5 } });
    expect(refused.refusal.retryAfterSeconds).toBe(60);
    expect(refused.headers['RateLimit-Policy']).toBe('"burst";q=5;w=60, "hour";q=8;w=3600');
    expect(refused.headers.RateLimit).toBe('"burst";r=0;t=60');
    expect(admitted[0]?.headers.RateLimit).toMatch(/^"burst";r=\d;t=60$/);
  });

  it('refused requests consume nothing, the window slides, and the hourly cap holds across windows', async () => {
    const { pipeline, clock } = setup(tightBurst);
    const principal = admissionPrincipal('registered');
    const admit = async () => (await pipeline.admit(admissionRequest(principal))).ok;
    for (let i = 0; i < 5; i += 1) expect(await admit()).toBe(true);
    for (let i = 0; i < 10; i += 1) expect(await admit()).toBe(false);
    clock.advance(60_000);
    // 3 more fit the hourly cap of 8, although the burst window has room for 5.
    const next = await Promise.all(Array.from({ length: 5 }, admit));
    expect(next.filter(Boolean)).toHaveLength(3);
    const refused = await pipeline.admit(admissionRequest(principal));
    expect(!refused.ok && refused.refusal.limit).toMatchObject({ window: 'hour', limit: 8 });
    clock.advance(3_600_000);
    expect(await admit()).toBe(true);
  });

  it('uses the defaults per user type and keys principals within their org', async () => {
    const { pipeline } = setup();
    const anon = admissionPrincipal('anonymous');
    const results = await Promise.all(Array.from({ length: 15 }, () => pipeline.admit(admissionRequest(anon))));
    expect(results.filter((r) => r.ok)).toHaveLength(10);
    const privileged = admissionPrincipal('privileged');
    const first = ok(await pipeline.admit(admissionRequest(privileged)));
    expect(first.headers['RateLimit-Policy']).toBe('"burst";q=300;w=60');
    // Same principal id in another org has its own counters.
    const sameIdOtherOrg = { ...anon, orgId: 'org_b', id: anon.id };
    expect((await pipeline.admit(admissionRequest(sameIdOtherOrg))).ok).toBe(true);
  });

  it('applies org and key overrides from live config, newest version only', async () => {
    const { pipeline, live } = setup();
    const principal = admissionPrincipal('registered');
    expect(live.apply('org_a', { version: 2, overrides: { rateLimits: { registered: { burst: 2, burstWindowSeconds: 60, hourly: null } }, keyOverrides: {} } })).toBe(true);
    // A stale message never wins.
    expect(live.apply('org_a', { version: 1, overrides: { rateLimits: {}, keyOverrides: {} } })).toBe(false);
    const results = await Promise.all(Array.from({ length: 4 }, () => pipeline.admit(admissionRequest(principal))));
    expect(results.filter((r) => r.ok)).toHaveLength(2);
    const keyed = admissionPrincipal('registered');
    live.apply('org_a', { version: 3, overrides: { rateLimits: { registered: { burst: 2, burstWindowSeconds: 60, hourly: null } }, keyOverrides: { [keyed.keyId ?? '']: { burst: 3, burstWindowSeconds: 60, hourly: null } } } });
    const keyedResults = await Promise.all(Array.from({ length: 5 }, () => pipeline.admit(admissionRequest(keyed))));
    expect(keyedResults.filter((r) => r.ok)).toHaveLength(3);
  });

  it('a refusal is an audit event with principal, org, route, gate, code and the limit', async () => {
    const { pipeline, audit } = setup(tightBurst);
    const principal = admissionPrincipal('registered');
    for (let i = 0; i < 6; i += 1) await pipeline.admit(admissionRequest(principal));
    expect(audit.events).toHaveLength(1);
    expect(audit.events[0]).toMatchObject({
      actor: `key:${principal.keyId ?? ''}`,
      orgId: 'org_a',
      action: 'admission.refused',
      target: '/v1/chat/completions',
      outcome: 'denied',
      details: { gate: 'rate_limit', code: 'rate_limited', principal: principal.id, 'limit.window': 'burst', 'limit.limit': 5 },
    });
  });
});

describe('route policy in the pipeline', () => {
  it('a bypass route skips throttling; model and task ingress never do', async () => {
    const { pipeline } = setup({ ...tightBurst, routes: { guard: [], bypass: ['^/hooks/', 'tasks', '^/v1/'] } }, { workerCapacity: async () => 1000 });
    const principal = admissionPrincipal('registered');
    const hooks = await Promise.all(Array.from({ length: 10 }, () => pipeline.admit(admissionRequest(principal, { route: '/hooks/stripe' }))));
    expect(hooks.every((r) => r.ok && r.headers.RateLimit === undefined)).toBe(true);
    const models = await Promise.all(Array.from({ length: 10 }, () => pipeline.admit(admissionRequest(principal))));
    expect(models.filter((r) => r.ok)).toHaveLength(5);
    const other = admissionPrincipal('registered');
    const tasks = await Promise.all(Array.from({ length: 10 }, () => pipeline.admit(admissionRequest(other, { route: '/api/orgs/:orgId/tasks', kind: 'task' }))));
    expect(tasks.filter((r) => r.ok)).toHaveLength(5);
    for (const r of tasks) if (!r.ok) expect(r.refusal.gate).toBe('rate_limit');
  });
});

describe('session gate', () => {
  it('refuses anonymous where required (401) and a principal without the permission (403) before any counter', async () => {
    const { pipeline, switchable } = setup();
    const before = switchable.calls();
    const anon = await pipeline.admit(admissionRequest(admissionPrincipal('anonymous'), { allowAnonymous: false }));
    expect(!anon.ok && anon.refusal).toMatchObject({ gate: 'session', code: 'unauthenticated', status: 401 });
    const viewer = admissionPrincipal('registered', { role: 'viewer' });
    const denied = await pipeline.admit(admissionRequest(viewer, { permission: 'models.use' }));
    expect(!denied.ok && denied.refusal).toMatchObject({ gate: 'session', code: 'forbidden', status: 403 });
    expect(switchable.calls()).toBe(before);
    expect((await pipeline.admit(admissionRequest(admissionPrincipal('registered'), { permission: 'models.use' }))).ok).toBe(true);
  });
});

describe('backpressure and slots', () => {
  const small = { backpressure: { concurrencyPerReplica: 10, capacityBuffer: 0, thresholds: { anonymous: 0.6, registered: 0.8, paid: 0.9, hard: 0.95 } } };

  it('refuses each type at its threshold of in-flight load; privileged up to the hard limit', async () => {
    const { pipeline, slots } = setup(small);
    const held: AdmissionResult[] = [];
    const fill = async (type: 'anonymous' | 'registered' | 'paid' | 'privileged') => {
      const result = await pipeline.admit(admissionRequest(admissionPrincipal(type)));
      if (result.ok) held.push(result);
      return result;
    };
    for (let i = 0; i < 6; i += 1) ok(await fill('anonymous'));
    const anon = await fill('anonymous');
    expect(!anon.ok && anon.refusal).toMatchObject({ gate: 'backpressure', code: 'overloaded', status: 503, retryAfterSeconds: 2 });
    ok(await fill('registered'));
    ok(await fill('registered'));
    expect((await fill('registered')).ok).toBe(false);
    ok(await fill('privileged'));
    expect((await fill('privileged')).ok).toBe(false);
    expect(slots.held).toBe(9);
    for (const r of held) if (r.ok) await r.ticket.settle({ kind: 'success', actualMicros: 0, actualTokens: 0 });
    expect(slots.held).toBe(0);
    ok(await fill('anonymous'));
  });

  it('the slot is the exact check: concurrent privileged requests never exceed the hard cap, and the losers consume no rate limit', async () => {
    const { pipeline, slots, memory } = setup({ ...small, rateLimits: { privileged: { burst: 1000, burstWindowSeconds: 60, hourly: null } } });
    const principal = admissionPrincipal('privileged');
    const results = await Promise.all(Array.from({ length: 50 }, () => pipeline.admit(admissionRequest(principal))));
    expect(results.filter((r) => r.ok)).toHaveLength(9);
    for (const r of results) if (!r.ok) expect(r.refusal).toMatchObject({ gate: 'enqueue', code: 'overloaded', status: 503 });
    expect(slots.held).toBe(9);
    // Only the nine admitted requests are in the burst window.
    const window = await memory.hitWindows('budget:org_a', principal.id, [{ name: 'burst', limit: 1000, windowMs: 60_000 }], 0);
    expect(window.remaining).toBe(1000 - 9);
  });

  it('task work is measured against worker capacity and hands the hard cap to the enqueue', async () => {
    let capacity = 10;
    const { pipeline, memory, slots } = setup(small, { workerCapacity: async () => capacity });
    const first = ok(await pipeline.admit(admissionRequest(admissionPrincipal('registered'), { kind: 'task', route: '/api/tasks' })));
    expect(first.enqueueMaxLoad).toBe(9);
    for (let i = 0; i < 8; i += 1) await memory.enqueue('tasks', { id: `t${i}`, payload: '{}' });
    const refused = await pipeline.admit(admissionRequest(admissionPrincipal('registered'), { kind: 'task', route: '/api/tasks' }));
    expect(!refused.ok && refused.refusal.code).toBe('overloaded');
    capacity = 0;
    expect((await pipeline.admit(admissionRequest(admissionPrincipal('privileged'), { kind: 'task', route: '/api/tasks' }))).ok).toBe(false);
    // Task work holds no synchronous slot.
    expect(slots.held).toBe(0);
  });

  it('scales synchronous capacity with live replicas and counts their published load; the slot cap stays per replica', async () => {
    let replicas = 1;
    let others = 0;
    const slots = new InFlightSlots();
    const { pipeline } = setup(small, { slots, load: { replicas: () => replicas, inFlight: () => slots.held + others } });
    for (let i = 0; i < 6; i += 1) ok(await pipeline.admit(admissionRequest(admissionPrincipal('anonymous'))));
    expect((await pipeline.admit(admissionRequest(admissionPrincipal('anonymous')))).ok).toBe(false);
    replicas = 2;
    expect((await pipeline.admit(admissionRequest(admissionPrincipal('anonymous')))).ok).toBe(true);
    // The other replica reports five in flight: 7 + 5 of 20 is past the anonymous share (12).
    others = 5;
    const refused = await pipeline.admit(admissionRequest(admissionPrincipal('anonymous')));
    expect(!refused.ok && refused.refusal).toMatchObject({ gate: 'backpressure', limit: { load: 12, allowed: 12, capacity: 20 } });
    // However many replicas there are, this replica holds at most its own hard cap (9 of 10).
    replicas = 100;
    others = 0;
    const privileged = await Promise.all(Array.from({ length: 5 }, () => pipeline.admit(admissionRequest(admissionPrincipal('privileged')))));
    expect(privileged.filter((r) => r.ok)).toHaveLength(2);
    expect(slots.held).toBe(9);
  });
});

describe('ordering: a refusal costs nothing downstream', () => {
  it('a rate-limit refusal never reaches economics; an economics refusal takes no slot', async () => {
    const { pipeline, economics, slots } = setup(tightBurst);
    const principal = admissionPrincipal('registered');
    for (let i = 0; i < 8; i += 1) await pipeline.admit(admissionRequest(principal));
    expect(economics.reserved).toHaveLength(5);
    economics.refuseWith = { gate: 'economics', code: 'budget_exceeded', status: 402, message: 'org budget reached' };
    const refused = await pipeline.admit(admissionRequest(admissionPrincipal('registered')));
    expect(!refused.ok && refused.refusal.code).toBe('budget_exceeded');
    expect(slots.held).toBe(5);
  });

  it('a slot refusal holds no economics reservation at all (decided before the one store step)', async () => {
    const { pipeline, economics } = setup({ backpressure: { concurrencyPerReplica: 1, capacityBuffer: 0, thresholds: { anonymous: 0.2, registered: 0.5, paid: 0.9, hard: 1 } } });
    const principal = admissionPrincipal('privileged');
    // Two concurrent requests both pass backpressure (nothing admitted yet); one loses the slot.
    const results = await Promise.all([pipeline.admit(admissionRequest(principal)), pipeline.admit(admissionRequest(principal))]);
    const loser = results.find((r) => !r.ok);
    if (loser === undefined || loser.ok) throw new Error('expected one refusal');
    expect(loser.refusal).toMatchObject({ gate: 'enqueue', code: 'overloaded' });
    expect(economics.reserved).toHaveLength(1);
    expect(economics.settled).toEqual([]);
  });

  it('a circuit refusal never reaches economics', async () => {
    const { pipeline, economics } = setup({ circuit: { failureThreshold: 1 } });
    const principal = admissionPrincipal('registered');
    const first = ok(await pipeline.admit(admissionRequest(principal, { dependency: 'provider:openai' })));
    await first.ticket.settle({ kind: 'upstream_failure', reason: 'error' });
    const reserved = economics.reserved.length;
    const refused = await pipeline.admit(admissionRequest(principal, { dependency: 'provider:openai' }));
    expect(!refused.ok && refused.refusal).toMatchObject({ gate: 'circuit', code: 'circuit_open', status: 503 });
    expect(economics.reserved).toHaveLength(reserved);
  });

  it("an upstream's refusal of the request itself never opens the circuit; its errors and timeouts do", async () => {
    const { pipeline } = setup({ circuit: { failureThreshold: 2 } });
    const principal = admissionPrincipal('registered');
    for (let i = 0; i < 10; i += 1) {
      const refusedByUpstream = ok(await pipeline.admit(admissionRequest(principal, { dependency: 'provider:openai' })));
      await refusedByUpstream.ticket.settle({ kind: 'upstream_failure', reason: 'refused' });
    }
    expect(await pipeline.breakers.stateOf('provider:openai')).toBe('closed');
    for (const reason of ['error', 'timeout'] as const) {
      const failed = ok(await pipeline.admit(admissionRequest(principal, { dependency: 'provider:openai' })));
      await failed.ticket.settle({ kind: 'upstream_failure', reason });
    }
    expect(await pipeline.breakers.stateOf('provider:openai')).toBe('open');
  });
});

describe('settlement exactly once', () => {
  const endings = [
    { kind: 'success', actualMicros: 10, actualTokens: 5 },
    { kind: 'unmetered', reason: 'client_abort' },
    { kind: 'unmetered', reason: 'timeout' },
    { kind: 'unmetered', reason: 'no_usage' },
    { kind: 'upstream_failure', reason: 'error' },
    { kind: 'upstream_failure', reason: 'timeout' },
    { kind: 'upstream_failure', reason: 'refused' },
  ] as const;

  for (const ending of endings) {
    it(`${ending.kind}/${'reason' in ending ? ending.reason : 'usage'}: economics settled once, slot freed once, racing settles share it`, async () => {
      const { pipeline, economics, slots } = setup();
      const result = ok(await pipeline.admit(admissionRequest(admissionPrincipal('registered'), { dependency: 'provider:x' })));
      expect(slots.held).toBe(1);
      await Promise.all([result.ticket.settle(ending), result.ticket.settle({ kind: 'unmetered', reason: 'client_abort' }), result.ticket.settle(ending)]);
      await result.ticket.settle(ending);
      expect(result.ticket.settled).toBe(true);
      expect(economics.settled).toEqual([{ requestId: result.ticket.requestId, outcome: ending }]);
      expect(slots.held).toBe(0);
    });
  }

  it('a failing settlement step does not skip the others', async () => {
    const failing = new FakeEconomics();
    const plan = failing.plan.bind(failing);
    failing.plan = (request) => {
      const planned = plan(request);
      return planned.ok ? { ...planned, held: () => async () => Promise.reject(new Error('ledger down')) } : planned;
    };
    const { pipeline, slots } = setup({ circuit: { failureThreshold: 1 } }, { economics: failing });
    const result = ok(await pipeline.admit(admissionRequest(admissionPrincipal('registered'), { dependency: 'provider:x' })));
    await result.ticket.settle({ kind: 'upstream_failure', reason: 'error' });
    expect(slots.held).toBe(0);
    // The breaker step still ran after the failing economics step: one failure opened it.
    expect(await pipeline.breakers.stateOf('provider:x')).toBe('open');
  });
});

describe('hot-state store unavailable', () => {
  it('fails closed with 503 dependency_unavailable and recovers by itself', async () => {
    const { pipeline, switchable, economics, audit } = setup();
    const principal = admissionPrincipal('registered');
    switchable.setDown(true);
    const refused = await pipeline.admit(admissionRequest(principal));
    expect(!refused.ok && refused.refusal).toMatchObject({ gate: 'rate_limit', code: 'dependency_unavailable', status: 503, retryAfterSeconds: 1 });
    expect(economics.reserved).toHaveLength(0);
    expect(audit.events[0]?.details).toMatchObject({ code: 'dependency_unavailable' });
    switchable.setDown(false);
    expect((await pipeline.admit(admissionRequest(principal))).ok).toBe(true);
  });

  it('a store failure in the one step gives the slot back and holds nothing', async () => {
    const { pipeline, switchable, economics, slots } = setup({ backpressure: { concurrencyPerReplica: 1, capacityBuffer: 0, thresholds: { anonymous: 0.2, registered: 0.5, paid: 0.9, hard: 1 } } });
    const principal = admissionPrincipal('privileged');
    switchable.setDown(true);
    const refused = await pipeline.admit(admissionRequest(principal));
    expect(!refused.ok && refused.refusal).toMatchObject({ gate: 'rate_limit', code: 'dependency_unavailable' });
    expect(slots.held).toBe(0);
    expect(economics.reserved).toHaveLength(0);
    switchable.setDown(false);
    // The only slot (cap 1) was given back.
    ok(await pipeline.admit(admissionRequest(principal)));
  });
});

describe('metrics', () => {
  it('counts decisions per gate and user type', async () => {
    const { pipeline, registry } = setup(tightBurst);
    const principal = admissionPrincipal('registered');
    for (let i = 0; i < 6; i += 1) await pipeline.admit(admissionRequest(principal));
    const text = await registry.metrics();
    expect(text).toContain('portcullis_admission_decisions_total{gate="enqueue",user_type="registered",result="pass"} 5');
    expect(text).toContain('portcullis_admission_decisions_total{gate="rate_limit",user_type="registered",result="refuse"} 1');
  });
});
