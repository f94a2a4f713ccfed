/**
 * The baseline: the load generator straight against the provider simulator (in its own process), at
 * 1 and 50 connections, plain and streaming chat. Through-Portcullis scenarios reuse `HTTP_CASES`
 * and `measureHttp` so both sides are measured the same way.
 */
import { runLoad, type LoadResult } from '../load.js';
import { cpuMsBetween, startSimulatorProcess, type ProcessStats } from '../processes.js';
import { markdownTable, type BenchContext, type Scenario, type ScenarioReport } from '../scenario.js';
import { round } from '../stats.js';

export interface HttpCase {
  name: string;
  path: string;
  body: string;
  connections: number;
}

const chatBody = (stream: boolean): string =>
  JSON.stringify({
    model: 'sim-chat',
    max_tokens: 64,
    messages: [{ role: 'user', content: 'Summarise the benchmark in one sentence.' }],
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });

export const HTTP_CASES: readonly HttpCase[] = [
  { name: 'plain', path: '/v1/chat/completions', body: chatBody(false), connections: 1 },
  { name: 'plain', path: '/v1/chat/completions', body: chatBody(false), connections: 50 },
  { name: 'stream', path: '/v1/chat/completions', body: chatBody(true), connections: 1 },
  { name: 'stream', path: '/v1/chat/completions', body: chatBody(true), connections: 50 },
];

export interface HttpMeasurement {
  case: string;
  connections: number;
  load: LoadResult;
  /** CPU of the measured server process during the measured run, ms; null when not observable. */
  serverCpuMs: number | null;
  serverPeakRssBytes: number | null;
}

/**
 * One warm-up run, then one measured run; server CPU is sampled around the measured run only.
 * `probe` reads the measured process's counters (the simulator's `/_sim/stats`, or the gateway's).
 */
export async function measureHttp(
  url: string,
  testCase: HttpCase,
  context: BenchContext,
  headers: Record<string, string> = {},
  probe?: () => Promise<ProcessStats>,
): Promise<HttpMeasurement> {
  const request = {
    url,
    path: testCase.path,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json', ...headers },
    body: testCase.body,
    connections: testCase.connections,
  };
  await runLoad({ ...request, durationMs: context.settings.warmupMs });
  const before = probe === undefined ? null : await probe();
  const load = await runLoad({ ...request, durationMs: context.settings.measureMs });
  const after = probe === undefined ? null : await probe();
  return {
    case: testCase.name,
    connections: testCase.connections,
    load,
    serverCpuMs: before === null || after === null ? null : cpuMsBetween(before, after),
    serverPeakRssBytes: after === null ? null : after.maxRssBytes,
  };
}

export function measurementRow(m: HttpMeasurement): (string | number)[] {
  const { load } = m;
  const cpuPercent = m.serverCpuMs === null ? '–' : round((m.serverCpuMs / load.durationMs) * 100);
  const cpuPerRequest = m.serverCpuMs === null || load.requests === 0 ? '–' : round((m.serverCpuMs * 1000) / load.requests);
  const rss = m.serverPeakRssBytes === null ? '–' : round(m.serverPeakRssBytes / 1024 / 1024);
  return [
    m.case,
    m.connections,
    round(load.requestsPerSecond),
    round(load.latency.p50Ms),
    round(load.latency.p90Ms),
    round(load.latency.p99Ms),
    round(load.firstByte.p50Ms),
    load.errors,
    cpuPercent,
    cpuPerRequest,
    rss,
  ];
}

export const MEASUREMENT_HEADERS = [
  'case', 'conns', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'TTFB p50 ms', 'errors', 'server CPU %', 'server CPU µs/req', 'server peak RSS MiB',
] as const;

export const simulatorDirect: Scenario = {
  name: 'simulator-direct',
  title: 'Provider simulator, direct (baseline)',
  description:
    'Load generator straight to the simulator (separate process), chat completions, 1 and 50 keep-alive connections, plain and SSE streaming (usage in the last chunk). Latency is time to last byte.',
  async run(context: BenchContext): Promise<ScenarioReport> {
    const simulator = await startSimulatorProcess();
    const measurements: HttpMeasurement[] = [];
    try {
      // A fresh process runs cold (JIT, connection setup): one pass over every case before measuring
      // keeps the first case from paying for warming the others.
      for (const testCase of HTTP_CASES) {
        await runLoad({ url: simulator.url, path: testCase.path, method: 'POST', headers: { 'content-type': 'application/json' }, body: testCase.body, connections: testCase.connections, durationMs: context.settings.warmupMs });
      }
      for (const testCase of HTTP_CASES) {
        context.log(`  ${testCase.name} × ${testCase.connections} connections`);
        measurements.push(await measureHttp(simulator.url, testCase, context, {}, () => simulator.stats()));
      }
    } finally {
      await simulator.stop();
    }
    return {
      markdown: markdownTable(MEASUREMENT_HEADERS, measurements.map(measurementRow)),
      data: {
        measurements: measurements.map((m) => ({
          case: m.case,
          connections: m.connections,
          requests: m.load.requests,
          errors: m.load.errors,
          statuses: m.load.statuses,
          durationMs: m.load.durationMs,
          requestsPerSecond: m.load.requestsPerSecond,
          latencyMs: m.load.latency,
          firstByteMs: m.load.firstByte,
          serverCpuMs: m.serverCpuMs,
          serverPeakRssBytes: m.serverPeakRssBytes,
        })),
      },
    };
  },
};
