/**
 * What a benchmark scenario is. Scenarios are registered in bench/scenarios/index.ts; later work adds
 * its own there (through-Portcullis runs, admission decisions, …) and the runner and report pick them up.
 */

export interface BenchSettings {
  /** Length of one measured run or round, in ms. */
  measureMs: number;
  /** Unmeasured lead-in before a measured run, in ms. */
  warmupMs: number;
  /** A/B rounds for side-by-side comparisons (each round runs both sides, order alternating). */
  rounds: number;
}

export interface BenchContext {
  settings: BenchSettings;
  log(line: string): void;
}

export interface ScenarioReport {
  /** Markdown section body (tables and notes), without the heading. */
  markdown: string;
  /** Machine-readable figures for latest.json. */
  data: Record<string, unknown>;
}

export interface Scenario {
  name: string;
  title: string;
  /** One line on what is measured and why, shown in the report. */
  description: string;
  run(context: BenchContext): Promise<ScenarioReport>;
}

/** A markdown table; numbers are printed as given (round them first). */
export function markdownTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (cells: readonly (string | number)[]) => `| ${cells.map(String).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}
