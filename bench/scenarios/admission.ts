/**
 * Admission decisions: how many `admit()` decisions per second the pipeline makes and how long one
 * takes (p50/p99), on the in-process store and on Redis, plus how many hot-state round trips an
 * admitted request costs, counted per gate. Every HotState method is one round trip on Redis (one
 * Lua script or command), so counting method calls counts round trips. Economics is not included
 * (it is its own gate, benchmarked with the model path); this is the counter gates + slot.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createPipeline } from '../../src/admission/pipeline.js';
import { admissionPrincipal, admissionRequest, testAdmissionConfig } from '../../src/admission/testing.js';
import { MemoryHotState, RedisHotState, type HotState } from '../../src/store/state/index.js';
import { markdownTable, type BenchContext, type Scenario, type ScenarioReport } from '../scenario.js';
import { round, summarise } from '../stats.js';

const CONCURRENCY = 32;
const SETTLED = { kind: 'success', actualMicros: 0, actualTokens: 0 } as const;

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

async function measureStore(name: string, store: HotState, context: BenchContext) {
  const counted = counting(store);
  const config = testAdmissionConfig({ backpressure: { concurrencyPerReplica: 100_000 } });
  const pipeline = createPipeline({ state: counted.state, config: () => config, limits: () => ({ burst: 1_000_000, burstWindowSeconds: 60, hourly: null }) });
  const principals = Array.from({ length: 64 }, () => admissionPrincipal('registered', { orgId: `org_bench_${randomBytes(4).toString('hex')}` }));

  // Round trips of one admitted request, alone, by method.
  counted.reset();
  const single = await pipeline.admit(admissionRequest(principals[0] ?? admissionPrincipal('registered')));
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
          const result = await pipeline.admit(admissionRequest(principal));
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
    store: name,
    decisionsPerSecond: decisions / seconds,
    refused,
    p50Ms: summary.p50Ms,
    p99Ms: summary.p99Ms,
    admitRoundTrips: Object.fromEntries(admitTrips),
    settleRoundTrips: Object.fromEntries(settleTrips),
    counterGateRoundTrips: admitTrips.get('hitWindows') ?? 0,
    totalAdmitRoundTrips: sum(admitTrips),
    totalSettleRoundTrips: sum(settleTrips),
  };
}

export const admissionDecisions: Scenario = {
  name: 'admission',
  title: 'Admission decisions',
  description: `Pipeline admit() with ${CONCURRENCY} concurrent callers (rate limit, backpressure, slot; settle outside the timing), in-process store vs Redis; hot-state round trips per admitted request by method.`,
  async run(context: BenchContext): Promise<ScenarioReport> {
    const rows: Awaited<ReturnType<typeof measureStore>>[] = [];
    const memory = new MemoryHotState();
    rows.push(await measureStore('memory', memory, context));
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
        rows.push(await measureStore('redis', redis, context));
      } finally {
        await redis.close();
      }
    }
    context.log(`  admission: ${rows.map((r) => `${r.store} ${round(r.decisionsPerSecond)}/s`).join(', ')}`);
    const trips = (m: Record<string, number>) => Object.entries(m).map(([k, v]) => `${k}×${v}`).join(', ');
    const markdown = [
      markdownTable(
        ['store', 'decisions/s', 'p50 ms', 'p99 ms', 'counter-gate round trips', 'admit round trips', 'settle round trips'],
        rows.map((r) => [r.store, round(r.decisionsPerSecond), round(r.p50Ms), round(r.p99Ms), r.counterGateRoundTrips, `${r.totalAdmitRoundTrips} (${trips(r.admitRoundTrips)})`, `${r.totalSettleRoundTrips} (${trips(r.settleRoundTrips)})`]),
      ),
      '',
      'Counter gates (burst window + hourly cap) are one `hitWindows` round trip together. The backpressure read (`budgetUsage`) and the atomic in-flight slot (`reserve`) are one each; settlement releases the slot in one. A request with a `dependency` adds one `get` for the circuit breaker.',
      ...(redisNote === '' ? [] : ['', redisNote]),
    ].join('\n');
    return { markdown, data: { concurrency: CONCURRENCY, stores: rows } };
  },
};
