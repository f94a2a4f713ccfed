/**
 * Side-by-side measurement: the two things compared run in the same process and the same run, in
 * alternating rounds (A B, B A, A B, …), so drift in machine load, CPU frequency or GC pressure hits
 * both sides alike. Results are ratios between sides, never absolute thresholds.
 */
import { performance } from 'node:perf_hooks';
import { median } from './stats.js';

export interface OpsSample {
  operations: number;
  durationMs: number;
  opsPerSecond: number;
  /** CPU time (user + system) this process spent during the sample, in ms. */
  cpuMs: number;
}

/**
 * Runs `operation` back to back for about `durationMs` and counts completions. Work is awaited one
 * at a time: the figure is throughput of one caller on one core, which is what a request sees.
 */
export async function measureOps(operation: () => Promise<unknown>, durationMs: number): Promise<OpsSample> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + durationMs;
  let operations = 0;
  let now = started;
  while (now < deadline) {
    // Check the clock once per small batch: performance.now() is not free next to a microsecond op.
    for (let i = 0; i < 64; i += 1) await operation();
    operations += 64;
    now = performance.now();
  }
  const cpu = process.cpuUsage(cpuBefore);
  const elapsed = now - started;
  return { operations, durationMs: elapsed, opsPerSecond: (operations / elapsed) * 1000, cpuMs: (cpu.user + cpu.system) / 1000 };
}

export interface Side<T> {
  name: string;
  run(): Promise<T>;
}

/** Runs both sides `rounds` times, swapping which goes first every round. Returns samples per side. */
export async function alternate<T>(rounds: number, a: Side<T>, b: Side<T>): Promise<{ a: T[]; b: T[] }> {
  const samples = { a: [] as T[], b: [] as T[] };
  for (let round = 0; round < rounds; round += 1) {
    if (round % 2 === 0) {
      samples.a.push(await a.run());
      samples.b.push(await b.run());
    } else {
      samples.b.push(await b.run());
      samples.a.push(await a.run());
    }
  }
  return samples;
}

/** Median of per-round ratios a/b: each ratio compares two runs made moments apart. */
export function pairedRatio(a: readonly number[], b: readonly number[]): number {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
    const left = a[i];
    const right = b[i];
    if (left !== undefined && right !== undefined && right > 0) ratios.push(left / right);
  }
  return median(ratios);
}
