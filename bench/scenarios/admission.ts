/**
 * Admission decisions: how many `admit()` decisions per second the pipeline makes and how long one
 * takes (p50/p99), on the in-process store and on Redis, plus how many hot-state round trips an
 * admitted request and its settlement cost, counted per method. Every HotState method is one round
 * trip on Redis (one Lua script or command), so counting method calls counts round trips.
 *
 * Two profiles: `counter gates` (rate limit, backpressure, in-flight slot) and `full` (the same plus
 * a circuit-breaker dependency and economics with cost, token and request budgets on the org, user
 * and key, as a priced model call has).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { MemoryAuditSink } from '../../src/audit/sink.js';
import { systemClock } from '../../src/core/clock.js';
import { Economics, type BudgetRule } from '../../src/admission/economics/index.js';
import { StaticRules } from '../../src/admission/economics/testing.js';
import { createPipeline } from '../../src/admission/pipeline.js';
import { admissionPrincipal, admissionRequest, testAdmissionConfig } from '../../src/admission/testing.js';
import type { AdmissionRequest } from '../../src/admission/types.js';
import type { Principal } from '../../src/identity/principal.js';
import { MemoryHotState, type HotState } from '../../src/store/state/index.js';
import { RedisHotState } from '../../src/store/state/redis/redis-hot-state.js';
import { markdownTable, type BenchContext, type Scenario, type ScenarioReport } from '../scenario.js';
import { round, summarise } from '../stats.js';

const CONCURRENCY = 32;
const SETTLED = { kind: 'success', actualMicros: 40, actualTokens: 20 } as const;
const PROFILES = ['counter gates', 'full'] as const;
const LIMIT = { burst: 1_000_000, burstWindowSeconds: 60, hourly: 10_000_000 };
type Profile = (typeof PROFILES)[number];

/** Counts calls per method name (= Redis round trips). */
function counting(inner: HotState): { state: HotState; counts: Map<string, number>; reset(): void } {
  const counts = new Map<string, number>();
  const state = new Proxy(inner, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return (...args: unknown[]) => {
        counts.set(property, (counts.get(property) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { state, counts, reset: () => counts.clear() };
}

/** Large budgets on every subject and metric, so every line is touched and none refuses. */
function budgetsFor(principals: Principal[]): StaticRules {
  const rules = new StaticRules();
  const all: BudgetRule[] = [
    { metric: 'cost', period: 'month', cap: Number.MAX_SAFE_INTEGER, alertThresholds: [] },
    { metric: 'tokens', period: 'day', cap: Number.MAX_SAFE_INTEGER, alertThresholds: [] },
    { metric: 'requests', period: 'day', cap: Number.MAX_SAFE_INTEGER, alertThresholds: [] },
  ];
  for (const p of principals) {
    const orgId = p.orgId ?? '';
    rules.set(orgId, 'org', orgId, all);
    if (p.userId !== null) rules.set(orgId, 'user', p.userId, all);
    if (p.keyId !== undefined) rules.set(orgId, 'key', p.keyId, all);
  }
  return rules;
}

async function measure(store: string, profile: Profile, inner: HotState, context: BenchContext) {
  const counted = counting(inner);
  const config = testAdmissionConfig({ backpressure: { concurrencyPerReplica: 100_000 } });
  const principals = Array.from({ length: 64 }, () => admissionPrincipal('registered', { orgId: `org_bench_${randomBytes(4).toString('hex')}` }));
  const economics =
    profile === 'full'
      ? new Economics({ state: counted.state, rules: budgetsFor(principals), defaults: { org: [], user: [], key: [] }, clock: systemClock, audit: new MemoryAuditSink() })
      : undefined;
  const pipeline = createPipeline({
    state: counted.state,
    config: () => config,
    // One limit object, as the live config hands out (limits are replaced, never rebuilt per request).
    limits: () => LIMIT,
    ...(economics === undefined ? {} : { economics }),
  });
  const request = (principal: Principal): AdmissionRequest =>
    profile === 'full'
      ? admissionRequest(principal, { cost: { model: 'bench', maxMicros: 1000, maxTokens: 500 }, dependency: 'provider:bench' })
      : admissionRequest(principal);

  // Round trips of one admitted request, alone, by method, after one warm-up request (first use
  // of a principal and a dependency loads scripts and state that later requests do not load again).
  const first = principals[0] ?? admissionPrincipal('registered');
  const warm = await pipeline.admit(request(first));
  if (warm.ok) await warm.ticket.settle(SETTLED);
  await new Promise((resolve) => setTimeout(resolve, 20));
  counted.reset();
  const single = await pipeline.admit(request(first));
  if (!single.ok) throw new Error(`admission bench: a request was refused (${single.refusal.code})`);
  const admitTrips = new Map(counted.counts);
  counted.reset();
  await single.ticket.settle(SETTLED);
  const settleTrips = new Map(counted.counts);

  const latencies: number[] = [];
  let decisions = 0;
  let refused = 0;
  const runFor = async (ms: number, record: boolean) => {
    const until = performance.now() + ms;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, worker) => {
        let i = worker;
        while (performance.now() < until) {
          const principal = principals[i % principals.length] ?? admissionPrincipal('registered');
          i += CONCURRENCY;
          const started = performance.now();
          const result = await pipeline.admit(request(principal));
          const elapsed = performance.now() - started;
          if (record) {
            latencies.push(elapsed);
            decisions += 1;
            if (!result.ok) refused += 1;
          }
          if (result.ok) await result.ticket.settle(SETTLED);
        }
      }),
    );
  };
  await runFor(context.settings.warmupMs, false);
  const started = performance.now();
  await runFor(context.settings.measureMs, true);
  const seconds = (performance.now() - started) / 1000;
  const summary = summarise(latencies);
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  return {
    store,
    profile,
    decisionsPerSecond: decisions / seconds,
    refused,
    p50Ms: summary.p50Ms,
    p99Ms: summary.p99Ms,
    admitRoundTrips: Object.fromEntries(admitTrips),
    settleRoundTrips: Object.fromEntries(settleTrips),
    totalAdmitRoundTrips: sum(admitTrips),
    totalSettleRoundTrips: sum(settleTrips),
  };
}

async function measureStore(store: string, state: HotState, context: BenchContext) {
  const rows = [];
  for (const profile of PROFILES) rows.push(await measure(store, profile, state, context));
  return rows;
}

export const admissionDecisions: Scenario = {
  name: 'admission',
  title: 'Admission decisions',
  description: `Pipeline admit() with ${CONCURRENCY} concurrent callers (settle outside the timing), in-process store vs Redis, for the counter gates alone and for a full priced request (circuit dependency, cost/token/request budgets on org, user and key); hot-state round trips per admitted request and per settlement, by method.`,
  async run(context: BenchContext): Promise<ScenarioReport> {
    const rows: Awaited<ReturnType<typeof measure>>[] = [];
    const memory = new MemoryHotState();
    rows.push(...(await measureStore('memory', memory, context)));
    await memory.close();
    const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    let redisNote = '';
    let redis: RedisHotState | undefined;
    try {
      redis = await RedisHotState.connect({ url, prefix: `pc-bench-${randomBytes(4).toString('hex')}` });
    } catch {
      redisNote = `Redis at ${new URL(url).host} was unreachable; only the in-process store was measured.`;
    }
    if (redis !== undefined) {
      try {
        rows.push(...(await measureStore('redis', redis, context)));
      } finally {
        await redis.close();
      }
    }
    context.log(`  admission: ${rows.map((r) => `${r.store}/${r.profile} ${round(r.decisionsPerSecond)}/s`).join(', ')}`);
    const trips = (m: Record<string, number>) => Object.entries(m).map(([k, v]) => `${k}×${v}`).join(', ');
    const markdown = [
      markdownTable(
        ['store', 'profile', 'decisions/s', 'p50 ms', 'p99 ms', 'admit round trips', 'settle round trips'],
        rows.map((r) => [
          r.store,
          r.profile,
          round(r.decisionsPerSecond),
          round(r.p50Ms),
          round(r.p99Ms),
          `${r.totalAdmitRoundTrips} (${trips(r.admitRoundTrips)})`,
          `${r.totalSettleRoundTrips} (${trips(r.settleRoundTrips)})`,
        ]),
      ),
      ...(redisNote === '' ? [] : ['', redisNote]),
    ].join('\n');
    return { markdown, data: { concurrency: CONCURRENCY, rows } };
  },
};
