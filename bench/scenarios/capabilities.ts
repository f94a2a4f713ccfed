/**
 * The sandbox credential broker: (1) capability opens + route checks per second on one core (the
 * decision every redemption makes before any I/O), and (2) the egress proxy's added latency: the
 * load generator to the simulator directly and through `/egress/{grant}/…` (capability redeemed,
 * credential injected, guarded connect, streamed back), in alternating rounds.
 *
 * The proxy runs in the benchmark process (with an in-memory hot state and an embedded record
 * store), so its CPU is shared with the load generator; the latency difference is the figure.
 */
import { randomBytes } from 'node:crypto';
import { MemoryAuditSink } from '../../src/audit/sink.js';
import { classifyRoute, openCapability, sealCapability, type CapabilityClaims } from '../../src/capabilities/index.js';
import { CapabilityKeyring } from '../../src/capabilities/keyring.js';
import { TrustedHops, createCapabilityService } from '../../src/capabilities/http/index.js';
import { systemClock } from '../../src/core/clock.js';
import { Secret } from '../../src/config/secrets.js';
import { createTestHttpApp } from '../../src/http/testing.js';
import { openTestRecordStore } from '../../src/store/db/testing.js';
import { MemoryHotState } from '../../src/store/state/index.js';
import { alternate, measureOps, pairedRatio } from '../ab.js';
import { startSimulatorProcess } from '../processes.js';
import { markdownTable, type BenchContext, type Scenario, type ScenarioReport } from '../scenario.js';
import { median, round } from '../stats.js';
import { HTTP_CASES, MEASUREMENT_HEADERS, measureHttp, measurementRow, type HttpMeasurement } from './simulator-direct.js';

const CONTAINER = 'ctr-bench';

function claimsFor(origin: string, now: number): CapabilityClaims {
  return {
    purpose: 'capability',
    capabilityId: 'cap_benchbenchbenchbe',
    userId: 'usr_benchbenchbenchbe',
    orgId: 'org_benchbenchbenchbe',
    sessionId: 'ses_benchbenchbenchbe',
    binding: { type: 'container', containerId: CONTAINER },
    grants: [
      { name: 'sim', origin, methods: ['POST'], pathPrefixes: ['/v1/'], credential: { ref: 'sim', header: 'authorization', scheme: 'Bearer' }, routeClass: 'provider_model' },
      { name: 'ingest', origin, methods: ['POST'], pathPrefixes: ['/api/sessions/ses_benchbenchbenchbe/events'], credential: { ref: 'sim', header: 'authorization' }, routeClass: 'session_ingest' },
    ],
    issuedAt: now,
    expiresAt: now + 60 * 60 * 1000,
  };
}

async function opensPerSecond(context: BenchContext): Promise<{ markdown: string; data: Record<string, unknown> }> {
  const keyring = new CapabilityKeyring([{ id: 'bench', secret: new Uint8Array(randomBytes(32)), createdAt: Date.now() - 1000 }]);
  const origin = 'https://api.example.com';
  const token = sealCapability(claimsFor(origin, Date.now()), keyring);
  const url = `${origin}/v1/chat/completions`;
  const openAndClassify = async () => {
    const opened = openCapability(token, { keyring, binding: { type: 'container', containerId: CONTAINER }, now: Date.now() });
    if (!opened.ok) throw new Error(`capabilities bench: token refused (${opened.reason})`);
    const route = classifyRoute(opened.claims, 'POST', url, { grantName: 'sim' });
    if (!route.ok) throw new Error(`capabilities bench: route refused (${route.reason})`);
  };
  const classifyOnly = async () => {
    classifyRoute(claimsFor(origin, 0), 'POST', url, { grantName: 'sim' });
  };
  await measureOps(openAndClassify, context.settings.warmupMs);
  const roundMs = Math.max(200, Math.round(context.settings.measureMs / 2));
  const samples = await alternate(
    context.settings.rounds,
    { name: 'open+route', run: () => measureOps(openAndClassify, roundMs) },
    { name: 'route only', run: () => measureOps(classifyOnly, roundMs) },
  );
  const both = median(samples.a.map((s) => s.opsPerSecond));
  const routeOnly = median(samples.b.map((s) => s.opsPerSecond));
  return {
    markdown: markdownTable(
      ['operation', 'per second (median)', 'µs each'],
      [
        ['open (AES-256-GCM + strict schema) + route check', round(both), round(1e6 / both)],
        ['route check alone', round(routeOnly), round(1e6 / routeOnly)],
      ],
    ),
    data: { openAndRoutePerSecond: both, routeOnlyPerSecond: routeOnly, roundMs },
  };
}

async function proxyLatency(context: BenchContext): Promise<{ markdown: string; data: Record<string, unknown> }> {
  const simulator = await startSimulatorProcess();
  const store = await openTestRecordStore();
  const state = new MemoryHotState();
  const keyring = new CapabilityKeyring([{ id: 'bench', secret: new Uint8Array(randomBytes(32)), createdAt: Date.now() - 1000 }]);
  const host = new URL(simulator.url).hostname;
  const service = createCapabilityService({
    config: {
      keyring,
      maxLifetimeMs: keyring.maxLifetimeMs,
      credentials: new Map([['sim', new Secret(Buffer.from('sim-upstream-credential-0123456789abcdef'), 'bench')]]),
      devHttpHosts: [host],
      trustedHops: new TrustedHops(['127.0.0.1']),
      egress: { allowLoopback: true, allowPrivate: false, timeoutMs: 30_000 },
    },
    db: store.db,
    state,
    audit: new MemoryAuditSink(),
    clock: systemClock,
    // Audit one in a thousand successes, as a busy deployment would.
    redeemSampleEvery: 1000,
  });
  const { app, registry } = createTestHttpApp();
  const measurements: { direct: HttpMeasurement[]; proxied: HttpMeasurement[] } = { direct: [], proxied: [] };
  try {
    await service.start();
    await service.register(app, registry);
    const gateway = await app.listen({ host: '127.0.0.1', port: 0 });
    const token = sealCapability(claimsFor(new URL(simulator.url).origin, Date.now()), keyring);
    const headers = { authorization: `Bearer ${token}`, 'x-portcullis-container': CONTAINER };
    const cases = HTTP_CASES.filter((c) => c.connections === 1 || c.name === 'plain');
    for (const testCase of cases) {
      context.log(`  ${testCase.name} × ${testCase.connections}: direct vs egress proxy`);
      const proxiedCase = { ...testCase, path: `/egress/sim${testCase.path}` };
      const samples = await alternate(
        Math.max(2, Math.floor(context.settings.rounds / 2)),
        { name: 'direct', run: () => measureHttp(simulator.url, testCase, context) },
        { name: 'proxied', run: () => measureHttp(gateway, proxiedCase, context, headers) },
      );
      const best = (list: HttpMeasurement[]) => list.slice().sort((x, y) => x.load.latency.p50Ms - y.load.latency.p50Ms)[Math.floor(list.length / 2)] ?? list[0];
      const direct = best(samples.a);
      const proxied = best(samples.b);
      if (direct !== undefined) measurements.direct.push(direct);
      if (proxied !== undefined) measurements.proxied.push(proxied);
    }
  } finally {
    await app.close();
    await service.close();
    await state.close();
    await store.close();
    await simulator.stop();
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
    'Capability opens + route checks per second (one core, warm), and the egress proxy (redeem, inject, guarded connect, stream back) next to going direct to the simulator, alternating rounds.',
  async run(context: BenchContext): Promise<ScenarioReport> {
    const ops = await opensPerSecond(context);
    const proxy = await proxyLatency(context);
    return {
      markdown: [ops.markdown, '', proxy.markdown, '', 'The proxy runs inside the benchmark process (CPU shared with the load generator).'].join('\n'),
      data: { ops: ops.data, proxy: proxy.data },
    };
  },
};
