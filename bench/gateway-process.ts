/**
 * The built `portcullis` gateway as the benchmarks run it: `portcullis init` into a fresh folder,
 * the config adjusted for the measurement, `portcullis start` in its own process (so its CPU and
 * peak RSS are its own, read from /proc), and a member key minted through the admin API with the
 * bootstrap credential — exactly what an operator would do.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { stopChild, type ProcessStats } from './processes.js';

// The bundled command `npm start` and the `portcullis` bin run (scripts/bundle.mjs).
const CLI = fileURLToPath(new URL('../portcullis/main.js', import.meta.url));
const START_TIMEOUT_MS = 30_000;

export interface GatewayProcess {
  url: string;
  pid: number;
  /** A member key of a fresh org, with the `models` scope. */
  memberToken: string;
  stats(): ProcessStats;
  stop(): Promise<void>;
}

export interface GatewayProcessOptions {
  /** Config sections merged over what `portcullis init` wrote (models, admission, logging…). */
  config: Record<string, unknown>;
  /** Environment of both `init` and `start`, e.g. DATABASE_URL and REDIS_URL for the distributed deployment. */
  env?: Record<string, string>;
  /** Budgets of the member's org (the body of `PUT /api/orgs/:orgId/budgets`), set before the key is minted. */
  budgets?: unknown[];
}

function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of ['PORTCULLIS_CONFIG', 'PORTCULLIS_PORT', 'PORTCULLIS_DATA_DIR', 'DATABASE_URL', 'REDIS_URL', 'PORTCULLIS_TOKEN', 'PORTCULLIS_URL']) delete env[key];
  return { ...env, PORTCULLIS_LOG_LEVEL: 'warn', ...extra };
}

/** `portcullis init` in its own process: the data folder (embedded store migrated, first admin) a start opens. */
export async function runInit(dataDir: string, env: Record<string, string>): Promise<void> {
  // init creates the first platform admin in the record store the gateway will use.
  const child = spawn(process.execPath, [CLI, 'init', '--data-dir', dataDir], { env: childEnv(env), stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`portcullis init exited with ${String(code)}`);
}

/** Process ids whose parent is `pid` (Linux /proc): the worker processes of a supervising gateway. */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return children;
}

/**
 * CPU and RSS of the gateway and its worker processes together (a single-process gateway has none).
 * The peak is the sum of each process's own peak: an upper bound, since they need not peak at once.
 */
export function gatewayStats(pid: number): ProcessStats {
  const all = [pid, ...childPids(pid)].map(procStats);
  return {
    cpuUserMicros: all.reduce((sum, s) => sum + s.cpuUserMicros, 0),
    cpuSystemMicros: all.reduce((sum, s) => sum + s.cpuSystemMicros, 0),
    rssBytes: all.reduce((sum, s) => sum + s.rssBytes, 0),
    maxRssBytes: all.reduce((sum, s) => sum + s.maxRssBytes, 0),
  };
}

/** CPU and peak RSS of a child read from /proc (Linux), so the gateway needs no stats endpoint. */
export function procStats(pid: number): ProcessStats {
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

async function adminCall(url: string, path: string, token: string, body: unknown, method: 'POST' | 'PUT' = 'POST'): Promise<Record<string, unknown>> {
  const response = await fetch(new URL(path, url), { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
  return (await response.json()) as Record<string, unknown>;
}

/** Org (with its budgets) and member key with the `models` scope, through the admin API with the bootstrap credential. */
async function memberKey(url: string, dataDir: string, budgets: unknown[]): Promise<string> {
  const admin = /PORTCULLIS_TOKEN=(\S+)/.exec(readFileSync(join(dataDir, 'admin-credential.txt'), 'utf8'))?.[1];
  if (admin === undefined) throw new Error('no bootstrap credential found');
  const org = await adminCall(url, '/api/orgs', admin, { name: 'Bench' });
  const orgId = org.id;
  if (typeof orgId !== 'string') throw new Error('org creation returned no id');
  if (budgets.length > 0) await adminCall(url, `/api/orgs/${orgId}/budgets`, admin, { budgets }, 'PUT');
  const key = await adminCall(url, `/api/orgs/${orgId}/keys`, admin, { name: 'bench', scopes: ['models'] });
  const token = key.token ?? key.key ?? key.secret;
  if (typeof token !== 'string') throw new Error('key creation returned no token');
  return token;
}

function waitForListening(child: ReturnType<typeof spawn>): Promise<string> {
  let output = '';
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not start in time')), START_TIMEOUT_MS);
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${String(code)} before listening: ${output.slice(-500)}`));
    });
  });
}

export async function startGatewayProcess(options: GatewayProcessOptions): Promise<GatewayProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  try {
    const env = options.env ?? {};
    await runInit(dataDir, env);
    const configPath = join(dataDir, 'portcullis.yaml');
    const config = parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(configPath, stringify({ ...config, ...options.config }));
    // e.g. PORTCULLIS_BENCH_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the gateway alone.
    const nodeArgs = (process.env.PORTCULLIS_BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== '');
    const child = spawn(process.execPath, [...nodeArgs, CLI, 'start', '--config', configPath], { env: childEnv({ ...env, PORTCULLIS_PORT: '0' }), stdio: ['ignore', 'pipe', 'pipe'] });
    const stop = async (): Promise<void> => {
      await stopChild(child, 10_000);
      rmSync(dataDir, { recursive: true, force: true });
    };
    let url: string;
    try {
      url = await waitForListening(child);
    } catch (error) {
      await stop();
      throw error;
    }
    const pid = child.pid ?? -1;
    let memberToken: string;
    try {
      memberToken = await memberKey(url, dataDir, options.budgets ?? []);
    } catch (error) {
      await stop();
      throw error;
    }
    return { url, pid, memberToken, stats: () => gatewayStats(pid), stop };
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
}
