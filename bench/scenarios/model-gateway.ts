/**
 * The model gateway's overhead: the built `portcullis start` in its own process routes a priced
 * model to the simulator (its own process), with API-key authentication, the whole admission
 * pipeline and metering on — on the embedded deployment (memory hot state, PGlite), on the
 * distributed one (real Redis and PostgreSQL), and on the distributed one with a gateway process
 * per CPU under one start (`server.workers: auto`). Direct-to-simulator and through-Portcullis
 * run side by side in alternating rounds, so the ratios compare runs made moments apart on the same
 * (shared) machine. Admission limits are raised so the rate limiter does not refuse the load: the
 * point is overhead, not refusals.
 */
import { loadavg } from 'node:os';
import { alternate, pairedRatio } from '../ab.js';
import { createDistributedStores, storesEnv, type DistributedStores } from '../distributed-stores.js';
import { procStats, startGatewayProcess, type GatewayProcess } from '../gateway-process.js';
import { runLoad } from '../load.js';
import { entryPoint, startChildServer, startSimulatorProcess, type ProcessStats, type SimulatorProcess } from '../processes.js';
import { markdownTable, type BenchContext, type Scenario, type ScenarioReport } from '../scenario.js';
import { median, round } from '../stats.js';
import { HTTP_CASES, measureHttp, type HttpMeasurement } from './simulator-direct.js';

const HIGH_LIMIT = { burst: 1_000_000, burstWindowSeconds: 1, hourly: null };
/**
 * The bench org's budgets: every call reserves its most on three lines (cost this month, tokens and
 * requests today) before the provider is called, and settles them after, as a budgeted org's calls
 * do. Caps no run can reach: the point is overhead, not refusals.
 */
export const ORG_BUDGETS = [
  { subject: { kind: 'org' }, metric: 'cost', period: 'month', cap: Number.MAX_SAFE_INTEGER, alertThresholds: [] },
  { subject: { kind: 'org' }, metric: 'tokens', period: 'day', cap: Number.MAX_SAFE_INTEGER, alertThresholds: [] },
  { subject: { kind: 'org' }, metric: 'requests', period: 'day', cap: Number.MAX_SAFE_INTEGER, alertThresholds: [] },
];

/** The targets of issue 4, part 7. */
const TARGETS = { ratioEmbedded: 0.35, ratioDistributed: 0.25, addedP50MsAt1: 0.25, peakRssMb: 200 };

/**
 * `distributed-workers`: one `portcullis start` with `server.workers: auto` (a process per CPU).
 * `node floor`: not Portcullis but a bare Fastify + undici proxy (bench/floor-proxy.ts), measured
 * the same way, so the report shows how much of the distance to direct is Node's own.
 */
type Deployment = 'embedded' | 'distributed' | 'distributed-workers' | 'node floor';
/**
 * `distributed-workers` only when PORTCULLIS_BENCH_WORKERS=1: on the 2-core machines this runs on,
 * a second gateway process competes with Redis, the simulator and the load generator for the same
 * two cores and measured slower (bench/README.md), so the default run leaves it out.
 */
const DEPLOYMENTS: readonly Deployment[] = process.env.PORTCULLIS_BENCH_WORKERS === '1' ? ['embedded', 'distributed', 'distributed-workers'] : ['embedded', 'distributed'];
const MEASURED: readonly Deployment[] = [...DEPLOYMENTS, 'node floor'];

/** What one deployment's side of the A/B rounds talks to. */
interface MeasuredServer {
  url: string;
  headers: Record<string, string>;
  stats(): ProcessStats;
  stop(): Promise<void>;
}

async function startFloorProxy(simulatorUrl: string): Promise<MeasuredServer> {
  const { script, execArgv } = entryPoint('./floor-proxy.js');
  const server = await startChildServer(script, execArgv, [simulatorUrl]);
  return { url: server.url, headers: {}, stats: () => procStats(server.pid), stop: () => server.stop() };
}

async function startPortcullis(deployment: Deployment, simulatorUrl: string, stores: DistributedStores | null): Promise<MeasuredServer> {
  const gateway: GatewayProcess = await startGatewayProcess({ config: gatewayConfig(simulatorUrl), env: deploymentEnv(deployment, stores), budgets: ORG_BUDGETS });
  return { url: gateway.url, headers: { authorization: `Bearer ${gateway.memberToken}` }, stats: () => gateway.stats(), stop: () => gateway.stop() };
}

interface Pair {
  direct: HttpMeasurement[];
  gateway: HttpMeasurement[];
}

interface CaseFigures {
  deployment: Deployment;
  case: string;
  connections: number;
  throughputRatio: number;
  addedP50Ms: number;
  gatewayErrors: number;
  gatewayRequests: number;
  gatewayCpuMicrosPerRequest: number;
  gatewayCpuPercent: number;
  gatewayPeakRssBytes: number;
  row: (string | number)[];
  raw: Record<string, unknown>;
}

export function gatewayConfig(simulatorUrl: string): Record<string, unknown> {
  return {
    models: {
      providers: [{ id: 'sim', kind: 'openai_compatible', baseUrl: `${simulatorUrl}/v1` }],
      models: [{ alias: 'sim-chat', provider: 'sim', upstreamModel: 'sim-chat', price: { inputPerMTok: 2_500_000, outputPerMTok: 10_000_000 }, maxOutputTokens: 1000 }],
      egress: { allowLoopback: true, allowPrivate: false },
    },
    admission: {
      rateLimits: { anonymous: HIGH_LIMIT, registered: HIGH_LIMIT, paid: HIGH_LIMIT, privileged: HIGH_LIMIT },
      backpressure: { concurrencyPerReplica: 100_000 },
    },
    logging: { level: 'warn' },
  };
}

function deploymentEnv(deployment: Deployment, stores: DistributedStores | null): Record<string, string> {
  return stores === null ? {} : storesEnv(stores, deployment === 'distributed-workers' ? 'auto' : '1');
}

async function measureDeployment(deployment: Deployment, simulator: SimulatorProcess, context: BenchContext): Promise<Map<string, Pair>> {
  const stores = deployment === 'embedded' || deployment === 'node floor' ? null : await createDistributedStores();
  let gateway: MeasuredServer | null = null;
  const results = new Map<string, Pair>();
  try {
    gateway = deployment === 'node floor' ? await startFloorProxy(simulator.url) : await startPortcullis(deployment, simulator.url, stores);
    const running = gateway;
    const auth = running.headers;
    const probe = () => Promise.resolve(running.stats());
    // Warm both processes over every case before measuring.
    for (const testCase of HTTP_CASES) {
      for (const [url, headers] of [[simulator.url, {}], [running.url, auth]] as const) {
        await runLoad({ url, path: testCase.path, method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: testCase.body, connections: testCase.connections, durationMs: context.settings.warmupMs });
      }
    }
    for (const testCase of HTTP_CASES) {
      context.log(`  ${deployment}: ${testCase.name} × ${testCase.connections} connections (${context.settings.rounds} A/B rounds)`);
      const samples = await alternate(
        context.settings.rounds,
        { name: 'direct', run: () => measureHttp(simulator.url, testCase, context, {}, () => simulator.stats()) },
        { name: 'gateway', run: () => measureHttp(running.url, testCase, context, auth, probe) },
      );
      results.set(`${testCase.name}/${testCase.connections}`, { direct: samples.a, gateway: samples.b });
    }
  } finally {
    if (gateway !== null) await gateway.stop();
    await stores?.remove();
  }
  return results;
}

const mb = (bytes: number): number => round(bytes / 1024 / 1024);

function figuresOf(deployment: Deployment, name: string, pair: Pair): CaseFigures {
  const [caseName = name, conns = '0'] = name.split('/');
  const rps = (ms: HttpMeasurement[]) => ms.map((m) => m.load.requestsPerSecond);
  const p50 = (ms: HttpMeasurement[]) => ms.map((m) => m.load.latency.p50Ms);
  const g = pair.gateway;
  const ratio = pairedRatio(rps(g), rps(pair.direct));
  const addedP50 = median(g.map((m, i) => m.load.latency.p50Ms - (pair.direct[i]?.load.latency.p50Ms ?? 0)));
  const errors = g.reduce((sum, m) => sum + m.load.errors, 0);
  const requests = g.reduce((sum, m) => sum + m.load.requests, 0);
  const cpuPerReq = median(g.map((m) => (m.serverCpuMs === null || m.load.requests === 0 ? 0 : (m.serverCpuMs * 1000) / m.load.requests)));
  const cpuPercent = median(g.map((m) => (m.serverCpuMs === null ? 0 : (m.serverCpuMs / m.load.durationMs) * 100)));
  const rss = Math.max(...g.map((m) => m.serverPeakRssBytes ?? 0));
  return {
    deployment,
    case: caseName,
    connections: Number(conns),
    throughputRatio: ratio,
    addedP50Ms: addedP50,
    gatewayErrors: errors,
    gatewayRequests: requests,
    gatewayCpuMicrosPerRequest: cpuPerReq,
    gatewayCpuPercent: cpuPercent,
    gatewayPeakRssBytes: rss,
    row: [
      deployment, caseName, conns, round(median(rps(pair.direct))), round(median(rps(g))), round(ratio),
      round(median(p50(pair.direct))), round(median(p50(g))), round(addedP50),
      round(median(g.map((m) => m.load.latency.p90Ms))), round(median(g.map((m) => m.load.latency.p99Ms))),
      `${errors}/${requests}`, round(cpuPercent), round(cpuPerReq), mb(rss),
    ],
    raw: {
      statuses: g.map((m) => m.load.statuses),
      direct: pair.direct.map((m) => ({ rps: m.load.requestsPerSecond, latencyMs: m.load.latency })),
      gateway: g.map((m) => ({ rps: m.load.requestsPerSecond, latencyMs: m.load.latency, firstByteMs: m.load.firstByte })),
    },
  };
}

function targetRows(figures: readonly CaseFigures[], unmeasured: Map<Deployment, string>): (string | number)[][] {
  const find = (deployment: Deployment, caseName: string, conns: number) => figures.find((f) => f.deployment === deployment && f.case === caseName && f.connections === conns);
  const verdict = (met: boolean): string => (met ? 'met' : 'NOT met');
  const rows: (string | number)[][] = [];
  for (const deployment of DEPLOYMENTS) {
    const target = deployment === 'embedded' ? TARGETS.ratioEmbedded : TARGETS.ratioDistributed;
    for (const caseName of ['plain', 'stream']) {
      const label = `${caseName}, 50 conns, ${deployment}: throughput ≥ ${target}× direct`;
      const figure = find(deployment, caseName, 50);
      if (figure === undefined) {
        rows.push([label, '–', 'not measured', unmeasured.get(deployment) ?? '']);
        continue;
      }
      const ratio = figure.throughputRatio;
      rows.push([label, round(ratio), verdict(ratio >= target), ratio >= target ? '' : `gap ${round(target - ratio)}×`]);
    }
  }
  const added = find('embedded', 'plain', 1)?.addedP50Ms;
  if (added === undefined) rows.push([`plain, 1 conn, embedded: added p50 ≤ ${TARGETS.addedP50MsAt1} ms`, '–', 'not measured', '']);
  else rows.push([`plain, 1 conn, embedded: added p50 ≤ ${TARGETS.addedP50MsAt1} ms`, round(added), verdict(added <= TARGETS.addedP50MsAt1), added <= TARGETS.addedP50MsAt1 ? '' : `gap ${round(added - TARGETS.addedP50MsAt1)} ms`]);
  for (const deployment of DEPLOYMENTS) {
    const peaks = figures.filter((f) => f.deployment === deployment).map((f) => f.gatewayPeakRssBytes);
    if (peaks.length === 0) continue;
    // "MB" in the target may mean either unit; both are shown, and a verdict that depends on it says so.
    const peak = Math.max(...peaks);
    const mib = peak / 1024 / 1024;
    const mb = peak / 1e6;
    const underMib = mib < TARGETS.peakRssMb;
    const underMb = mb < TARGETS.peakRssMb;
    const [outcome, gap] = underMb ? [verdict(true), ''] : underMib ? ['met in MiB only', `gap ${round(mb - TARGETS.peakRssMb)} MB (decimal)`] : [verdict(false), `gap ${round(mib - TARGETS.peakRssMb)} MiB`];
    rows.push([`peak RSS < ${TARGETS.peakRssMb} MB (${deployment})`, `${mib.toFixed(1)} MiB (${mb.toFixed(1)} MB)`, outcome, gap]);
  }
  return rows;
}

export const modelGateway: Scenario = {
  name: 'model-gateway',
  title: 'Model gateway: through Portcullis vs direct (embedded, distributed, distributed with workers), next to a bare Node proxy',
  description:
    'Built `portcullis start` in its own process — embedded (memory hot state, PGlite), distributed (real Redis + PostgreSQL), and with PORTCULLIS_BENCH_WORKERS=1 also distributed with `server.workers: auto` (one gateway process per CPU under one start) — with API-key auth, the full admission pipeline and metering, a priced model routed to the simulator (own process); direct and through-Portcullis alternate per round. The `node floor` rows are not Portcullis: a bare Fastify + undici proxy of the same simulator (bench/floor-proxy.ts; no auth, admission, metering or metrics), measured the same way — about the best a Node gateway can do on this machine. Gateway CPU and peak RSS from /proc, summed over worker processes (the peak as the sum of each process\'s own peak).',
  async run(context: BenchContext): Promise<ScenarioReport> {
    const load1 = loadavg();
    const simulator = await startSimulatorProcess();
    const figures: CaseFigures[] = [];
    const unmeasured = new Map<Deployment, string>();
    try {
      for (const deployment of MEASURED) {
        try {
          for (const [name, pair] of await measureDeployment(deployment, simulator, context)) figures.push(figuresOf(deployment, name, pair));
        } catch (error) {
          // A missing Redis or PostgreSQL must not hide the embedded figures; the report says why.
          const reason = error instanceof Error ? error.message : String(error);
          unmeasured.set(deployment, reason);
          context.log(`  ${deployment}: not measured (${reason})`);
        }
      }
    } finally {
      await simulator.stop();
    }
    const load2 = loadavg();
    const markdown = [
      markdownTable(
        ['deployment', 'case', 'conns', 'direct req/s', 'gateway req/s', 'ratio', 'direct p50 ms', 'gateway p50 ms', 'added p50 ms', 'gateway p90 ms', 'gateway p99 ms', 'gateway non-2xx/requests', 'gateway CPU %', 'gateway CPU µs/req', 'gateway peak RSS MiB'],
        figures.map((f) => f.row),
      ),
      '',
      'Targets (issue 4 part 7):',
      '',
      markdownTable(['target', 'measured', 'verdict', 'gap'], targetRows(figures, unmeasured)),
      '',
      `Medians over ${context.settings.rounds} alternating rounds; ratio and added p50 are medians of per-round pairs. Shared machine: load average ${load1.map((v) => round(v)).join(' / ')} at start, ${load2.map((v) => round(v)).join(' / ')} at end (1/5/15 min). What dominates the request path and what was changed: bench/README.md.`,
    ].join('\n');
    return {
      markdown,
      data: {
        loadAverage: { start: load1, end: load2 },
        targets: TARGETS,
        unmeasured: Object.fromEntries(unmeasured),
        cases: figures.map(({ row: _row, ...rest }) => rest),
      },
    };
  },
};
