/**
 * Closed-loop HTTP load generator: N keep-alive connections (an undici Pool), each sending the next
 * request as soon as the previous response body has been read, for a duration or a request count.
 * Latency is time to last byte, so for a stream it covers the whole stream; time to first byte
 * (response headers) is reported alongside. Bounded in connections, time and samples, and refuses
 * any target that is not a loopback address: this tool is for measuring our own processes.
 */
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { summarise, type LatencySummary } from './stats.js';

export interface LoadOptions {
  /** Origin, e.g. `http://127.0.0.1:7070`; must be loopback. */
  url: string;
  path: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  /** Stop after this long (measured part, after warm-up)... */
  durationMs?: number;
  /** ...or after this many measured requests, whichever comes first. */
  requests?: number;
  /** Requests in this leading period are sent but not measured. Default 0. */
  warmupMs?: number;
  /** Status that counts as success. Default 200. */
  expectStatus?: number;
}

export interface LoadResult {
  connections: number;
  requests: number;
  errors: number;
  /** Response statuses seen, plus `error` for transport failures. */
  statuses: Record<string, number>;
  durationMs: number;
  requestsPerSecond: number;
  latency: LatencySummary;
  firstByte: LatencySummary;
  bytesReceived: number;
}

export const MAX_CONNECTIONS = 1_024;
export const MAX_DURATION_MS = 10 * 60_000;
const MAX_SAMPLES = 5_000_000;

/** True for 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}

function validate(options: LoadOptions): URL {
  const url = new URL(options.url);
  if (url.protocol !== 'http:') throw new Error('load: only plain http to loopback is supported');
  if (!isLoopbackHost(url.hostname)) throw new Error('load: the target must be a loopback address');
  if (!Number.isInteger(options.connections) || options.connections < 1 || options.connections > MAX_CONNECTIONS) {
    throw new Error(`load: connections must be an integer in 1..${MAX_CONNECTIONS}`);
  }
  if (options.durationMs === undefined && options.requests === undefined) throw new Error('load: give durationMs or requests');
  const total = (options.durationMs ?? 0) + (options.warmupMs ?? 0);
  if (total > MAX_DURATION_MS) throw new Error(`load: duration plus warm-up must stay under ${MAX_DURATION_MS} ms`);
  if (options.requests !== undefined && (!Number.isInteger(options.requests) || options.requests < 1 || options.requests > MAX_SAMPLES)) {
    throw new Error(`load: requests must be an integer in 1..${MAX_SAMPLES}`);
  }
  return url;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const origin = validate(options).origin;
  const pool = new Pool(origin, { connections: options.connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const expectStatus = options.expectStatus ?? 200;
  const requestLimit = Math.min(options.requests ?? MAX_SAMPLES, MAX_SAMPLES);
  const latencies = new Float64Array(requestLimit);
  const firstBytes = new Float64Array(requestLimit);
  const statuses: Record<string, number> = {};
  let measured = 0;
  let errors = 0;
  let bytesReceived = 0;

  const warmupEnd = performance.now() + (options.warmupMs ?? 0);
  // Without a duration the run still has a hard ceiling so a stuck target cannot hold it forever.
  const measureEnd = warmupEnd + (options.durationMs ?? MAX_DURATION_MS);
  let lastEnded = warmupEnd;
  let stopped = false;
  const hardStop = setTimeout(() => {
    stopped = true;
  }, measureEnd - performance.now() + 5_000);

  const dispatch = {
    path: options.path,
    method: options.method ?? 'GET',
    headers: options.headers ?? {},
    ...(options.body === undefined ? {} : { body: options.body }),
  } as const;

  const worker = async (): Promise<void> => {
    while (!stopped) {
      const started = performance.now();
      if (started >= measureEnd) return;
      let status = 'error';
      let firstByte = 0;
      try {
        const response = await pool.request(dispatch);
        firstByte = performance.now() - started;
        status = String(response.statusCode);
        for await (const chunk of response.body) bytesReceived += (chunk as Buffer).length;
      } catch {
        // A transport failure counts as an error and is recorded under `error`.
      }
      const ended = performance.now();
      if (started < warmupEnd) continue;
      if (measured >= requestLimit || stopped) return;
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status !== String(expectStatus)) errors += 1;
      latencies[measured] = ended - started;
      firstBytes[measured] = firstByte;
      measured += 1;
      if (ended > lastEnded) lastEnded = ended;
      if (measured >= requestLimit) stopped = true;
    }
  };

  try {
    await Promise.all(Array.from({ length: options.connections }, worker));
  } finally {
    clearTimeout(hardStop);
    await pool.close();
  }
  // The measured window runs from the end of warm-up to the last measured response.
  const durationMs = Math.max(1, lastEnded - warmupEnd);
  return {
    connections: options.connections,
    requests: measured,
    errors,
    statuses,
    durationMs,
    requestsPerSecond: (measured / durationMs) * 1000,
    latency: summarise(latencies.subarray(0, measured)),
    firstByte: summarise(firstBytes.subarray(0, measured)),
    bytesReceived,
  };
}
