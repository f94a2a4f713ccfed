/**
 * `npm run bench`: runs the registered scenarios in order, writes bench/reports/latest.{md,json}
 * and prints the markdown. Not a test: it measures and reports, it does not pass or fail on figures
 * (the exit code is non-zero only when a scenario could not run).
 *
 * Environment:
 *   PORTCULLIS_BENCH_SCALE       multiplies run lengths (default 1 ≈ under a minute; 5 for steadier figures)
 *   PORTCULLIS_BENCH_ROUNDS      A/B rounds for side-by-side scenarios (default 6)
 *   PORTCULLIS_BENCH_ONLY        comma-separated scenario names to run
 *   PORTCULLIS_BENCH_REPORT_DIR  where to write the report (default bench/reports)
 */
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { machineInfo, writeReport, type ScenarioOutcome } from './report.js';
import type { BenchSettings } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';

const BASE_MEASURE_MS = 3_000;
const BASE_WARMUP_MS = 500;

function numberFromEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`${name} must be a number between ${min} and ${max}; got "${raw.slice(0, 20)}"`);
  }
  return value;
}

function settingsFromEnv(): BenchSettings {
  const scale = numberFromEnv('PORTCULLIS_BENCH_SCALE', 1, 0.05, 20);
  return {
    measureMs: Math.round(BASE_MEASURE_MS * scale),
    warmupMs: Math.round(BASE_WARMUP_MS * scale),
    rounds: Math.round(numberFromEnv('PORTCULLIS_BENCH_ROUNDS', 6, 2, 100)),
  };
}

function selectedScenarios() {
  const only = process.env.PORTCULLIS_BENCH_ONLY;
  if (only === undefined || only.trim() === '') return SCENARIOS;
  const names = new Set(only.split(',').map((name) => name.trim()).filter((name) => name !== ''));
  const unknown = [...names].filter((name) => !SCENARIOS.some((scenario) => scenario.name === name));
  if (unknown.length > 0) {
    throw new Error(`PORTCULLIS_BENCH_ONLY names unknown scenarios: ${unknown.join(', ')} (known: ${SCENARIOS.map((s) => s.name).join(', ')})`);
  }
  return SCENARIOS.filter((scenario) => names.has(scenario.name));
}

async function main(): Promise<number> {
  const settings = settingsFromEnv();
  const machine = machineInfo();
  const scenarios = selectedScenarios();
  const log = (line: string) => console.error(line);
  const outcomes: ScenarioOutcome[] = [];
  for (const scenario of scenarios) {
    log(`bench: ${scenario.name}`);
    const started = performance.now();
    try {
      const report = await scenario.run({ settings, log });
      outcomes.push({ scenario, report, elapsedMs: performance.now() - started });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log(`bench: ${scenario.name} failed: ${message}`);
      outcomes.push({ scenario, report: null, error: message, elapsedMs: performance.now() - started });
    }
  }
  const directory = resolve(process.env.PORTCULLIS_BENCH_REPORT_DIR ?? 'bench/reports');
  const { markdown, paths } = await writeReport(directory, { date: new Date().toISOString(), machine, settings, outcomes });
  console.log(markdown);
  log(`bench: report written to ${paths.join(' and ')}`);
  return outcomes.some((outcome) => outcome.report === null) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
