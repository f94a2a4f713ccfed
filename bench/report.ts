/**
 * The benchmark report: machine, runtime and date, then one section per scenario; written as
 * markdown (for people, and printed) and JSON (for tools and for comparing runs).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, freemem, loadavg, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import type { BenchSettings, Scenario, ScenarioReport } from './scenario.js';

export interface MachineInfo {
  cpuModel: string;
  cpuCount: number;
  totalMemoryBytes: number;
  freeMemoryBytes: number;
  platform: string;
  osRelease: string;
  node: string;
  /** 1-minute load average when the run started: other work on the machine skews every figure. */
  loadAverage1m: number;
}

export function machineInfo(): MachineInfo {
  const cores = cpus();
  return {
    cpuModel: cores[0]?.model.trim() ?? 'unknown',
    cpuCount: cores.length,
    totalMemoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    platform: platform(),
    osRelease: release(),
    node: process.version,
    loadAverage1m: loadavg()[0] ?? Number.NaN,
  };
}

export interface ScenarioOutcome {
  scenario: Scenario;
  /** null when the scenario failed; `error` then says why. */
  report: ScenarioReport | null;
  error?: string;
  elapsedMs: number;
}

export interface BenchReport {
  date: string;
  machine: MachineInfo;
  settings: BenchSettings;
  outcomes: ScenarioOutcome[];
}

const gib = (bytes: number) => (bytes / 1024 ** 3).toFixed(1);

export function renderMarkdown(report: BenchReport): string {
  const { machine, settings } = report;
  const lines = [
    '# Portcullis benchmark report',
    '',
    `- Date: ${report.date}`,
    `- Machine: ${machine.cpuCount} × ${machine.cpuModel}, ${gib(machine.totalMemoryBytes)} GiB RAM, ${machine.platform} ${machine.osRelease}`,
    `- Node.js: ${machine.node}`,
    `- Load average (1 min) at start: ${machine.loadAverage1m.toFixed(2)} on ${machine.cpuCount} CPUs${machine.loadAverage1m > machine.cpuCount ? ' — the machine was busy with other work; absolute figures are depressed, ratios less so' : ''}`,
    `- Settings: ${settings.measureMs} ms per measured run, ${settings.warmupMs} ms warm-up, ${settings.rounds} A/B rounds (PORTCULLIS_BENCH_SCALE / PORTCULLIS_BENCH_ROUNDS to change)`,
    '',
    'Comparisons are ratios measured side by side in this run, in alternating rounds; absolute figures depend on the machine.',
  ];
  for (const outcome of report.outcomes) {
    lines.push('', `## ${outcome.scenario.title} (\`${outcome.scenario.name}\`)`, '', outcome.scenario.description, '');
    if (outcome.report === null) lines.push(`**Failed:** ${outcome.error ?? 'unknown error'}`);
    else lines.push(outcome.report.markdown);
    lines.push('', `_${(outcome.elapsedMs / 1000).toFixed(1)} s_`);
  }
  return `${lines.join('\n')}\n`;
}

export function renderJson(report: BenchReport): string {
  return `${JSON.stringify(
    {
      date: report.date,
      machine: report.machine,
      settings: report.settings,
      scenarios: report.outcomes.map((o) => ({
        name: o.scenario.name,
        title: o.scenario.title,
        elapsedMs: o.elapsedMs,
        ...(o.report === null ? { error: o.error ?? 'unknown error' } : { data: o.report.data }),
      })),
    },
    null,
    2,
  )}\n`;
}

export async function writeReport(directory: string, report: BenchReport): Promise<{ markdown: string; paths: string[] }> {
  await mkdir(directory, { recursive: true });
  const markdown = renderMarkdown(report);
  const markdownPath = join(directory, 'latest.md');
  const jsonPath = join(directory, 'latest.json');
  await writeFile(markdownPath, markdown);
  await writeFile(jsonPath, renderJson(report));
  return { markdown, paths: [markdownPath, jsonPath] };
}
