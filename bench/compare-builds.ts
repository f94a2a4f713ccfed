/**
 * Compares builds of the gateway on this machine, the way bench/README.md ("Sixth pass") says a
 * change has to be measured here: `node dist/bench/compare-builds.js <build> <build> …`, each a
 * built `dist/` folder (say a copy of this one with one part changed) optionally followed by
 * `#variant`. Every round starts a fresh embedded gateway per build (in turn, the order reversed
 * every other round), warms it, measures one case, and stops it; the gateway is pinned to one core
 * and the simulator and this process to the other when `taskset` is there. It prints each round
 * and the median of the per-round ratios against the first build. A tool, not a scenario of
 * `npm run bench`: it reports, it never decides.
 *
 * Variants: `nobudget` (the member's org has no budgets), `throttle-exempt` (the chat route listed
 * under admission.routes.bypass), `node-args=a,b` (node options of the gateway process).
 * Environment: COMPARE_CASE (plain | stream), COMPARE_CONNECTIONS (1 | 50), COMPARE_ROUNDS (6),
 * COMPARE_MS (3000 per measured run), COMPARE_DEPLOYMENT (embedded | distributed: real Redis and
 * PostgreSQL, a throwaway database and key prefix per measured gateway; Redis is left unpinned).
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createDistributedStores, storesEnv } from './distributed-stores.js';
import type { startGatewayProcess as StartGateway } from './gateway-process.js';
import { runLoad } from './load.js';
import { startSimulatorProcess } from './processes.js';
import { gatewayConfig, ORG_BUDGETS } from './scenarios/model-gateway.js';
import { HTTP_CASES } from './scenarios/simulator-direct.js';
import { median, round } from './stats.js';

export interface BuildSpec {
  dist: string;
  budgets: boolean;
  throttleExempt: boolean;
  nodeArgs: string[];
}

/** `path[#variant]`; unknown variants are refused rather than silently measured as the plain build. */
export function parseBuildSpec(spec: string): BuildSpec {
  const [dist = '', variant] = spec.split('#', 2);
  if (dist === '') throw new Error(`no build folder in "${spec}"`);
  const parsed: BuildSpec = { dist: resolve(dist), budgets: true, throttleExempt: false, nodeArgs: [] };
  if (variant === undefined) return parsed;
  if (variant === 'nobudget') return { ...parsed, budgets: false };
  if (variant === 'throttle-exempt') return { ...parsed, throttleExempt: true };
  if (variant.startsWith('node-args=')) return { ...parsed, nodeArgs: variant.slice('node-args='.length).split(',').filter((a) => a !== '') };
  throw new Error(`unknown variant "${variant}" (nobudget, throttle-exempt, node-args=a,b)`);
}

interface Sample {
  rps: number;
  cpuMicrosPerCall: number;
  p50Ms: number;
  peakRssMb: number;
}

/** Pins a process and its threads to one core; false when taskset is missing or refuses. */
function pin(pid: number, core: number): boolean {
  try {
    execFileSync('taskset', ['-a', '-pc', String(core), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

type Deployment = 'embedded' | 'distributed';

/** COMPARE_DEPLOYMENT; anything else is refused rather than measured as the embedded default. */
export function parseDeployment(value: string | undefined): Deployment {
  if (value === undefined) return 'embedded';
  if (value !== 'embedded' && value !== 'distributed') throw new Error(`COMPARE_DEPLOYMENT must be embedded or distributed, not "${value}"`);
  return value;
}

async function measureBuild(spec: BuildSpec, deployment: Deployment, simulatorUrl: string, testCase: (typeof HTTP_CASES)[number], durationMs: number): Promise<Sample> {
  const stores = deployment === 'distributed' ? await createDistributedStores() : null;
  try {
    return await measureBuildOn(spec, stores === null ? {} : storesEnv(stores), simulatorUrl, testCase, durationMs);
  } finally {
    await stores?.remove();
  }
}

async function measureBuildOn(spec: BuildSpec, env: Record<string, string>, simulatorUrl: string, testCase: (typeof HTTP_CASES)[number], durationMs: number): Promise<Sample> {
  const module = (await import(pathToFileURL(`${spec.dist}/bench/gateway-process.js`).href)) as { startGatewayProcess: typeof StartGateway };
  const config = gatewayConfig(simulatorUrl);
  if (spec.throttleExempt) config.admission = { ...(config.admission as Record<string, unknown>), routes: { guard: [], bypass: ['^/v1/chat/completions$'] } };
  const saved = process.env.PORTCULLIS_BENCH_GATEWAY_NODE_ARGS;
  process.env.PORTCULLIS_BENCH_GATEWAY_NODE_ARGS = spec.nodeArgs.join(' ');
  const gateway = await module.startGatewayProcess({ config, env, budgets: spec.budgets ? ORG_BUDGETS : [] }).finally(() => {
    if (saved === undefined) delete process.env.PORTCULLIS_BENCH_GATEWAY_NODE_ARGS;
    else process.env.PORTCULLIS_BENCH_GATEWAY_NODE_ARGS = saved;
  });
  try {
    pin(gateway.pid, 1);
    const load = (ms: number) =>
      runLoad({ url: gateway.url, path: testCase.path, method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${gateway.memberToken}` }, body: testCase.body, connections: testCase.connections, durationMs: ms, warmupMs: 300 });
    await load(2_000);
    const before = gateway.stats();
    const result = await load(durationMs);
    const after = gateway.stats();
    const cpuMicros = after.cpuUserMicros - before.cpuUserMicros + after.cpuSystemMicros - before.cpuSystemMicros;
    return { rps: result.requestsPerSecond, cpuMicrosPerCall: cpuMicros / Math.max(1, result.requests), p50Ms: result.latency.p50Ms, peakRssMb: after.maxRssBytes / 1024 / 1024 };
  } finally {
    await gateway.stop();
  }
}

async function main(): Promise<void> {
  const specs = process.argv.slice(2).map(parseBuildSpec);
  if (specs.length < 2) throw new Error('usage: node dist/bench/compare-builds.js <dist>[#variant] <dist>[#variant] …');
  const caseName = process.env.COMPARE_CASE ?? 'plain';
  const connections = Number(process.env.COMPARE_CONNECTIONS ?? 50);
  const testCase = HTTP_CASES.find((c) => c.name === caseName && c.connections === connections);
  if (testCase === undefined) throw new Error(`no case ${caseName} × ${connections} (plain | stream, 1 | 50)`);
  const rounds = Number(process.env.COMPARE_ROUNDS ?? 6);
  const durationMs = Number(process.env.COMPARE_MS ?? 3_000);
  const deployment = parseDeployment(process.env.COMPARE_DEPLOYMENT);
  const simulator = await startSimulatorProcess();
  const pinned = pin(simulator.pid, 0) && pin(process.pid, 0);
  console.log(pinned ? 'gateway on core 1; simulator and load generator on core 0' : 'not pinned (taskset unavailable): expect more spread');
  const samples: Sample[][] = specs.map(() => []);
  try {
    for (let r = 0; r < rounds; r += 1) {
      const order = specs.map((_, i) => i);
      if (r % 2 === 1) order.reverse();
      for (const i of order) {
        const spec = specs[i];
        if (spec === undefined) continue;
        const sample = await measureBuild(spec, deployment, simulator.url, testCase, durationMs);
        samples[i]?.push(sample);
        console.log(`round ${r} ${process.argv[i + 2] ?? ''}: ${round(sample.rps)} req/s, ${round(sample.cpuMicrosPerCall)} µs CPU per call, p50 ${round(sample.p50Ms)} ms, peak RSS ${round(sample.peakRssMb)} MiB`);
      }
    }
  } finally {
    await simulator.stop();
  }
  const first = samples[0] ?? [];
  specs.forEach((_, i) => {
    const own = samples[i] ?? [];
    const paired = (pick: (s: Sample) => number) => median(own.map((s, k) => pick(s) / pick(first[k] ?? s)));
    const label = process.argv[i + 2] ?? '';
    console.log(`${label}: median ${round(median(own.map((s) => s.rps)))} req/s, ${round(median(own.map((s) => s.cpuMicrosPerCall)))} µs CPU per call; against the first, paired: ${round(paired((s) => s.rps))}× throughput, ${round(paired((s) => s.cpuMicrosPerCall))}× CPU per call`);
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
