/**
 * The sandbox credential broker: (1) capability opens + route checks per second on one core (the
 * decision every redemption makes before any I/O; a token's first open, and the memoised open of
 * every later request with it), and (2) the egress proxy next to going to the
 * simulator directly: the load generator through `/egress/{grant}/…` (capability redeemed,
 * credential injected, guarded connect, streamed back), in alternating rounds. The proxy runs in a
 * process of its own (bench/egress-proxy-process.ts: in-memory hot state, the embedded store of a
 * folder `portcullis init` made), so its CPU and peak RSS are its own.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyRoute, openCapability, sealCapability } from '../../src/capabilities/index.js';
import { CapabilityKeyring } from '../../src/capabilities/keyring.js';
import { alternate, measureOps, pairedRatio } from '../ab.js';
import { BENCH_CONTAINER, benchClaims } from '../capability-claims.js';
import { procStats, runInit } from '../gateway-process.js';
import { entryPoint, startChildServer, startSimulatorProcess } from '../processes.js';
import { markdownTable, type BenchContext, type Scenario, type ScenarioReport } from '../scenario.js';
import { median, round } from '../stats.js';
import { HTTP_CASES, MEASUREMENT_HEADERS, measureHttp, measurementRow, type HttpMeasurement } from './simulator-direct.js';

async function opensPerSecond(context: BenchContext): Promise<{ markdown: string; data: Record<string, unknown> }> {
  const keys = [{ id: 'bench', secret: new Uint8Array(randomBytes(32)), createdAt: Date.now() - 1000 }];
  // The same keys twice: one keyring opens every token in full, the other remembers what it opened.
  const firstOpens = new CapabilityKeyring(keys, { openedMemoEntries: 0 });
  const keyring = new CapabilityKeyring(keys);
  const origin = 'https://api.example.com';
  const token = sealCapability(benchClaims(origin, Date.now()), keyring);
  const url = `${origin}/v1/chat/completions`;
  const openAndClassifyWith = (ring: CapabilityKeyring) => async () => {
    const opened = openCapability(token, { keyring: ring, binding: { type: 'container', containerId: BENCH_CONTAINER }, now: Date.now() });
    if (!opened.ok) throw new Error(`capabilities bench: token refused (${opened.reason})`);
    const route = classifyRoute(opened.claims, 'POST', url, { grantName: 'sim' });
    if (!route.ok) throw new Error(`capabilities bench: route refused (${route.reason})`);
  };
  const openAndClassify = openAndClassifyWith(firstOpens);
  const reopenAndClassify = openAndClassifyWith(keyring);
  const classifyOnly = async () => {
    classifyRoute(benchClaims(origin, 0), 'POST', url, { grantName: 'sim' });
  };
  await measureOps(openAndClassify, context.settings.warmupMs);
  await measureOps(reopenAndClassify, context.settings.warmupMs);
  const roundMs = Math.max(200, Math.round(context.settings.measureMs / 2));
  const opens = await alternate(
    context.settings.rounds,
    { name: 'open+route', run: () => measureOps(openAndClassify, roundMs) },
    { name: 'reopen+route', run: () => measureOps(reopenAndClassify, roundMs) },
  );
  const routes = await alternate(
    context.settings.rounds,
    { name: 'reopen+route', run: () => measureOps(reopenAndClassify, roundMs) },
    { name: 'route only', run: () => measureOps(classifyOnly, roundMs) },
  );
  const both = median(opens.a.map((s) => s.opsPerSecond));
  const again = median([...opens.b, ...routes.a].map((s) => s.opsPerSecond));
  const routeOnly = median(routes.b.map((s) => s.opsPerSecond));
  return {
    markdown: markdownTable(
      ['operation', 'per second (median)', 'µs each'],
      [
        ['first open (AES-256-GCM + strict schema) + route check', round(both), round(1e6 / both)],
        ['open again (memoised: SHA-256 + clock checks) + route check', round(again), round(1e6 / again)],
        ['route check alone', round(routeOnly), round(1e6 / routeOnly)],
      ],
    ),
    data: { openAndRoutePerSecond: both, reopenAndRoutePerSecond: again, routeOnlyPerSecond: routeOnly, roundMs },
  };
}

async function proxyLatency(context: BenchContext): Promise<{ markdown: string; data: Record<string, unknown> }> {
  const simulator = await startSimulatorProcess();
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-egress-'));
  const measurements: { direct: HttpMeasurement[]; proxied: HttpMeasurement[] } = { direct: [], proxied: [] };
  try {
    const { script, execArgv } = entryPoint('./egress-proxy-process.js');
    await runInit(dataDir, {});
    const proxy = await startChildServer(script, execArgv, [new URL(simulator.url).origin, dataDir]);
    try {
      const headers = { authorization: `Bearer ${String(proxy.announced.token)}`, 'x-portcullis-container': String(proxy.announced.container) };
      const cases = HTTP_CASES.filter((c) => c.connections === 1 || c.name === 'plain');
      for (const testCase of cases) {
        context.log(`  ${testCase.name} × ${testCase.connections}: direct vs egress proxy`);
        const proxiedCase = { ...testCase, path: `/egress/sim${testCase.path}` };
        const samples = await alternate(
          Math.max(2, Math.floor(context.settings.rounds / 2)),
          { name: 'direct', run: () => measureHttp(simulator.url, testCase, context, {}, () => simulator.stats()) },
          { name: 'proxied', run: () => measureHttp(proxy.url, proxiedCase, context, headers, async () => procStats(proxy.pid)) },
        );
        const best = (list: HttpMeasurement[]) => list.slice().sort((x, y) => x.load.latency.p50Ms - y.load.latency.p50Ms)[Math.floor(list.length / 2)] ?? list[0];
        const direct = best(samples.a);
        const proxied = best(samples.b);
        if (direct !== undefined) measurements.direct.push(direct);
        if (proxied !== undefined) measurements.proxied.push(proxied);
      }
    } finally {
      await proxy.stop();
    }
  } finally {
    await simulator.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  const rows: (string | number)[][] = [];
  const added: Record<string, unknown>[] = [];
  measurements.direct.forEach((direct, index) => {
    const proxied = measurements.proxied[index];
    if (proxied === undefined) return;
    rows.push(['direct', ...measurementRow(direct)], ['egress proxy', ...measurementRow(proxied)]);
    added.push({
      case: direct.case,
      connections: direct.connections,
      addedP50Ms: proxied.load.latency.p50Ms - direct.load.latency.p50Ms,
      addedP99Ms: proxied.load.latency.p99Ms - direct.load.latency.p99Ms,
      throughputRatio: proxied.load.requestsPerSecond / Math.max(1e-9, direct.load.requestsPerSecond),
      proxiedErrors: proxied.load.errors,
      proxiedStatuses: proxied.load.statuses,
    });
  });
  const summary = added
    .map((a) => `${String(a.case)} × ${String(a.connections)}: +${round(Number(a.addedP50Ms))} ms p50, +${round(Number(a.addedP99Ms))} ms p99, throughput ${round(Number(a.throughputRatio))}× direct`)
    .join('; ');
  return {
    markdown: [markdownTable(['path', ...MEASUREMENT_HEADERS], rows), '', `Added by the egress proxy: ${summary}.`].join('\n'),
    data: { added, pairedP50Ratio: pairedRatio(measurements.proxied.map((m) => m.load.latency.p50Ms), measurements.direct.map((m) => m.load.latency.p50Ms)) },
  };
}

export const capabilities: Scenario = {
  name: 'capabilities',
  title: 'Sandbox credential broker',
  description:
    'Capability opens + route checks per second (one core, warm), and the egress proxy (redeem, inject, guarded connect, stream back; its own process) next to going direct to the simulator, alternating rounds.',
  async run(context: BenchContext): Promise<ScenarioReport> {
    const ops = await opensPerSecond(context);
    const proxy = await proxyLatency(context);
    return {
      markdown: [ops.markdown, '', proxy.markdown, '', 'The proxy runs in its own process; server CPU and peak RSS are the simulator\'s (direct) and the proxy\'s.'].join('\n'),
      data: { ops: ops.data, proxy: proxy.data },
    };
  },
};
