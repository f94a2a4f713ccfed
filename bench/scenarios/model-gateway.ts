/**
 * The model gateway's overhead: the built `portcullis start` (embedded deployment, its own process)
 * routes a priced model to the simulator (its own process), with API-key authentication, the whole
 * admission pipeline and metering on. Direct-to-simulator and through-Portcullis run side by side in
 * alternating rounds, so the ratios compare runs made moments apart on the same (shared) machine.
 * Admission limits are raised so the rate limiter does not refuse the load: the point is overhead.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { alternate, pairedRatio } from '../ab.js';
import { runLoad } from '../load.js';
import { startSimulatorProcess, type ProcessStats } from '../processes.js';
import { markdownTable, type BenchContext, type Scenario, type ScenarioReport } from '../scenario.js';
import { median, round } from '../stats.js';
import { HTTP_CASES, measureHttp, type HttpMeasurement } from './simulator-direct.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const START_TIMEOUT_MS = 30_000;
const HIGH_LIMIT = { burst: 1_000_000, burstWindowSeconds: 1, hourly: null };

/** The targets of issue 4, part 7. */
const TARGETS = { ratioEmbedded: 0.35, addedP50MsAt1: 0.25, peakRssMb: 200 };

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of ['PORTCULLIS_CONFIG', 'PORTCULLIS_PORT', 'PORTCULLIS_DATA_DIR', 'DATABASE_URL', 'REDIS_URL', 'PORTCULLIS_TOKEN', 'PORTCULLIS_URL']) delete env[key];
  return { ...env, PORTCULLIS_LOG_LEVEL: 'warn', ...extra };
}

async function runInit(dataDir: string): Promise<void> {
  const child = spawn(process.execPath, [CLI, 'init', '--data-dir', dataDir], { env: childEnv({}), stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`portcullis init exited with ${String(code)}`);
}

/** CPU and peak RSS of a child read from /proc (Linux), so the gateway needs no stats endpoint. */
function procStats(pid: number): ProcessStats {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name: utime and stime are fields 14 and 15 of the full line (11 and 12 here).
  const ticksToMicros = 10_000; // USER_HZ is 100 on Linux.
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024;
  return {
    cpuUserMicros: Number(fields[11] ?? 0) * ticksToMicros,
    cpuSystemMicros: Number(fields[12] ?? 0) * ticksToMicros,
    rssBytes: kb('VmRSS'),
    maxRssBytes: kb('VmHWM'),
  };
}

interface Gateway {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function startGateway(configPath: string): Promise<Gateway> {
  // e.g. PORTCULLIS_BENCH_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the gateway alone.
  const nodeArgs = (process.env.PORTCULLIS_BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== '');
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'start', '--config', configPath], { env: childEnv({ PORTCULLIS_PORT: '0' }), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not start in time')), START_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${String(code)} before listening`));
    });
  });
  return {
    url,
    pid: child.pid ?? -1,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

async function adminCall(url: string, path: string, token: string, body: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(new URL(path, url), { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
  return (await response.json()) as Record<string, unknown>;
}

/** Org and member key with the `models` scope, through the admin API with the bootstrap credential. */
async function memberKey(url: string, dataDir: string): Promise<string> {
  const admin = /PORTCULLIS_TOKEN=(\S+)/.exec(readFileSync(join(dataDir, 'admin-credential.txt'), 'utf8'))?.[1];
  if (admin === undefined) throw new Error('no bootstrap credential found');
  const org = await adminCall(url, '/api/orgs', admin, { name: 'Bench' });
  const orgId = org.id;
  if (typeof orgId !== 'string') throw new Error('org creation returned no id');
  const key = await adminCall(url, `/api/orgs/${orgId}/keys`, admin, { name: 'bench', scopes: ['models'] });
  const token = key.token ?? key.key ?? key.secret;
  if (typeof token !== 'string') throw new Error('key creation returned no token');
  return token;
}

interface Pair {
  direct: HttpMeasurement[];
  gateway: HttpMeasurement[];
}

const mb = (bytes: number | null): number | null => (bytes === null ? null : round(bytes / 1024 / 1024));

export const modelGateway: Scenario = {
  name: 'model-gateway',
  title: 'Model gateway: through Portcullis vs direct (embedded)',
  description:
    'Built `portcullis start` (embedded: in-memory hot state, PGlite records) in its own process, API-key auth, full admission pipeline and metering, a priced model routed to the simulator (own process); direct and through-Portcullis alternate per round. Gateway CPU and peak RSS from /proc.',
  async run(context: BenchContext): Promise<ScenarioReport> {
    const load1 = loadavg();
    const simulator = await startSimulatorProcess();
    const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
    let gateway: Gateway | null = null;
    const results = new Map<string, Pair>();
    try {
      await runInit(dataDir);
      const configPath = join(dataDir, 'portcullis.yaml');
      const config = parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
      config.models = {
        providers: [{ id: 'sim', kind: 'openai_compatible', baseUrl: `${simulator.url}/v1` }],
        models: [{ alias: 'sim-chat', provider: 'sim', upstreamModel: 'sim-chat', price: { inputPerMTok: 2_500_000, outputPerMTok: 10_000_000 }, maxOutputTokens: 1000 }],
        egress: { allowLoopback: true, allowPrivate: false },
      };
      config.admission = {
        rateLimits: { anonymous: HIGH_LIMIT, registered: HIGH_LIMIT, paid: HIGH_LIMIT, privileged: HIGH_LIMIT },
        backpressure: { concurrencyPerReplica: 100_000 },
      };
      config.logging = { level: 'warn' };
      writeFileSync(configPath, stringify(config));
      gateway = await startGateway(configPath);
      const token = await memberKey(gateway.url, dataDir);
      const pid = gateway.pid;
      const probe = (): Promise<ProcessStats> => Promise.resolve(procStats(pid));
      const auth = { authorization: `Bearer ${token}` };
      const gatewayUrl = gateway.url;
      // Warm both processes over every case before measuring.
      for (const testCase of HTTP_CASES) {
        for (const [url, headers] of [[simulator.url, {}], [gatewayUrl, auth]] as const) {
          await runLoad({ url, path: testCase.path, method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: testCase.body, connections: testCase.connections, durationMs: context.settings.warmupMs });
        }
      }
      for (const testCase of HTTP_CASES) {
        context.log(`  ${testCase.name} × ${testCase.connections} connections (${context.settings.rounds} A/B rounds)`);
        const samples = await alternate(
          context.settings.rounds,
          { name: 'direct', run: () => measureHttp(simulator.url, testCase, context, {}, () => simulator.stats()) },
          { name: 'gateway', run: () => measureHttp(gatewayUrl, testCase, context, auth, probe) },
        );
        results.set(`${testCase.name}/${testCase.connections}`, { direct: samples.a, gateway: samples.b });
      }
    } finally {
      if (gateway !== null) await gateway.stop();
      await simulator.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
    const load2 = loadavg();

    const rows: (string | number)[][] = [];
    const data: Record<string, unknown>[] = [];
    let peakRss = 0;
    for (const [name, pair] of results) {
      const [caseName, conns] = name.split('/');
      const rps = (ms: HttpMeasurement[]) => ms.map((m) => m.load.requestsPerSecond);
      const p50 = (ms: HttpMeasurement[]) => ms.map((m) => m.load.latency.p50Ms);
      const ratio = pairedRatio(rps(pair.gateway), rps(pair.direct));
      const added = pair.gateway.map((m, i) => m.load.latency.p50Ms - (pair.direct[i]?.load.latency.p50Ms ?? 0));
      const addedP50 = median(added);
      const errors = pair.gateway.reduce((sum, m) => sum + m.load.errors, 0);
      const requests = pair.gateway.reduce((sum, m) => sum + m.load.requests, 0);
      const cpuPerReq = median(pair.gateway.map((m) => (m.serverCpuMs === null || m.load.requests === 0 ? 0 : (m.serverCpuMs * 1000) / m.load.requests)));
      const cpuPercent = median(pair.gateway.map((m) => (m.serverCpuMs === null ? 0 : (m.serverCpuMs / m.load.durationMs) * 100)));
      const rss = Math.max(...pair.gateway.map((m) => m.serverPeakRssBytes ?? 0));
      peakRss = Math.max(peakRss, rss);
      const g = pair.gateway;
      rows.push([
        caseName ?? name, conns ?? '', round(median(rps(pair.direct))), round(median(rps(g))), round(ratio),
        round(median(p50(pair.direct))), round(median(p50(g))), round(addedP50),
        round(median(g.map((m) => m.load.latency.p90Ms))), round(median(g.map((m) => m.load.latency.p99Ms))),
        `${errors}/${requests}`, round(cpuPercent), round(cpuPerReq), mb(rss) ?? '–',
      ]);
      data.push({
        case: caseName, connections: Number(conns), throughputRatio: ratio, addedP50Ms: addedP50, gatewayErrors: errors, gatewayRequests: requests,
        gatewayStatuses: g.map((m) => m.load.statuses), gatewayCpuMsPerRequest: cpuPerReq / 1000, gatewayCpuPercent: cpuPercent, gatewayPeakRssBytes: rss,
        direct: pair.direct.map((m) => ({ rps: m.load.requestsPerSecond, latencyMs: m.load.latency })),
        gateway: g.map((m) => ({ rps: m.load.requestsPerSecond, latencyMs: m.load.latency, firstByteMs: m.load.firstByte })),
      });
    }

    const figure = (caseName: string, conns: number) => data.find((d) => d.case === caseName && d.connections === conns);
    const verdict = (met: boolean): string => (met ? 'met' : 'NOT met');
    const targetRows: (string | number)[][] = [];
    for (const caseName of ['plain', 'stream']) {
      const ratio = Number(figure(caseName, 50)?.throughputRatio ?? 0);
      targetRows.push([`${caseName}, 50 conns, embedded: throughput ≥ ${TARGETS.ratioEmbedded}× direct`, round(ratio), verdict(ratio >= TARGETS.ratioEmbedded), ratio >= TARGETS.ratioEmbedded ? '' : `gap ${round(TARGETS.ratioEmbedded - ratio)}×`]);
    }
    const added1 = Number(figure('plain', 1)?.addedP50Ms ?? Number.POSITIVE_INFINITY);
    targetRows.push([`plain, 1 conn, embedded: added p50 ≤ ${TARGETS.addedP50MsAt1} ms`, round(added1), verdict(added1 <= TARGETS.addedP50MsAt1), added1 <= TARGETS.addedP50MsAt1 ? '' : `gap ${round(added1 - TARGETS.addedP50MsAt1)} ms`]);
    const rssMb = peakRss / 1024 / 1024;
    targetRows.push([`peak RSS < ${TARGETS.peakRssMb} MB`, round(rssMb), verdict(rssMb < TARGETS.peakRssMb), rssMb < TARGETS.peakRssMb ? '' : `gap ${round(rssMb - TARGETS.peakRssMb)} MB`]);
    targetRows.push(['distributed (Redis + PostgreSQL): throughput ≥ 0.25× direct', '–', 'not measured', 'distributed variant not implemented in this scenario']);

    const markdown = [
      markdownTable(
        ['case', 'conns', 'direct req/s', 'gateway req/s', 'ratio', 'direct p50 ms', 'gateway p50 ms', 'added p50 ms', 'gateway p90 ms', 'gateway p99 ms', 'gateway non-2xx/requests', 'gateway CPU %', 'gateway CPU µs/req', 'gateway peak RSS MB'],
        rows,
      ),
      '',
      'Targets (issue 4 part 7):',
      '',
      markdownTable(['target', 'measured', 'verdict', 'gap'], targetRows),
      '',
      `Medians over ${context.settings.rounds} alternating rounds; ratio and added p50 are medians of per-round pairs. Shared machine: load average ${load1.map((v) => round(v)).join(' / ')} at start, ${load2.map((v) => round(v)).join(' / ')} at end (1/5/15 min).`,
    ].join('\n');
    return { markdown, data: { loadAverage: { start: load1, end: load2 }, targets: TARGETS, peakRssBytes: peakRss, cases: data } };
  },
};
