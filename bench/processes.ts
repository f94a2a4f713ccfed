/**
 * Runs a measured server in its own process, so its CPU time and peak RSS are its own and not mixed
 * with the load generator's. The child prints one JSON line with its URL once it listens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface ProcessStats {
  cpuUserMicros: number;
  cpuSystemMicros: number;
  rssBytes: number;
  maxRssBytes: number;
}

export interface ChildServer {
  url: string;
  pid: number;
  /** Everything the child's first line said (`url` and whatever else the child announces). */
  announced: Record<string, unknown>;
  stop(): Promise<void>;
}

export interface SimulatorProcess extends ChildServer {
  stats(): Promise<ProcessStats>;
}

const START_TIMEOUT_MS = 15_000;

/**
 * Resolves a sibling entry point: the compiled `.js` when running from dist/, else the `.ts` source
 * run through tsx (for `npx tsx bench/run.ts` during development).
 */
export function entryPoint(relative: string): { script: string; execArgv: string[] } {
  const compiled = fileURLToPath(new URL(relative, import.meta.url));
  if (existsSync(compiled)) return { script: compiled, execArgv: [] };
  return { script: compiled.replace(/\.js$/, '.ts'), execArgv: ['--import', 'tsx'] };
}

/** SIGTERM, then SIGKILL if the child is still there after `forceAfterMs`; resolves once it exited. */
export function stopChild(child: ChildProcess, forceAfterMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const force = setTimeout(() => child.kill('SIGKILL'), forceAfterMs);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Spawns `node <script> <args>` and waits for its `{"url": …}` line. */
export async function startChildServer(script: string, execArgv: readonly string[], args: readonly string[]): Promise<ChildServer> {
  const child: ChildProcess = spawn(process.execPath, [...execArgv, script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const stdout = child.stdout;
  if (stdout === null) throw new Error('child process has no stdout');
  const lines = createInterface({ input: stdout });
  const announced = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not report its URL within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    child.once('exit', (code) => reject(new Error(`${script} exited early with code ${String(code)}`)));
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (typeof parsed.url === 'string') resolve(parsed);
        else reject(new Error('child did not print a url'));
      } catch {
        reject(new Error('child printed a line that is not JSON'));
      }
    });
  });
  // Keep draining stdout so the child never blocks on a full pipe.
  lines.on('line', () => undefined);
  return {
    url: String(announced.url),
    pid: child.pid ?? -1,
    announced,
    stop: () => stopChild(child, 5_000),
  };
}

export async function startSimulatorProcess(args: readonly string[] = []): Promise<SimulatorProcess> {
  const { script, execArgv } = entryPoint('./simulator/main.js');
  const server = await startChildServer(script, execArgv, ['--record', '0', ...args]);
  return {
    ...server,
    stats: async () => {
      const response = await fetch(`${server.url}/_sim/stats`);
      return (await response.json()) as ProcessStats;
    },
  };
}

/** CPU ms spent between two samples of the same process. */
export function cpuMsBetween(before: ProcessStats, after: ProcessStats): number {
  return (after.cpuUserMicros - before.cpuUserMicros + after.cpuSystemMicros - before.cpuSystemMicros) / 1000;
}
