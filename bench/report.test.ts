import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { machineInfo, writeReport, type BenchReport } from './report.js';
import { markdownTable, type Scenario } from './scenario.js';

const scenario = (name: string): Scenario => ({
  name,
  title: `Title ${name}`,
  description: 'what it measures',
  run: async () => ({ markdown: '', data: {} }),
});

describe('bench report', () => {
  it('writes markdown and JSON with machine, settings, figures and failures', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'portcullis-bench-'));
    try {
      const report: BenchReport = {
        date: '2026-01-01T00:00:00.000Z',
        machine: machineInfo(),
        settings: { measureMs: 3000, warmupMs: 500, rounds: 6 },
        outcomes: [
          { scenario: scenario('ok'), report: { markdown: markdownTable(['a', 'b'], [[1, 2]]), data: { ratio: 0.5 } }, elapsedMs: 1200 },
          { scenario: scenario('broken'), report: null, error: 'could not start', elapsedMs: 10 },
        ],
      };
      const { markdown } = await writeReport(directory, report);
      expect(markdown).toContain('| a | b |\n| --- | --- |\n| 1 | 2 |');
      expect(markdown).toContain(`Node.js: ${process.version}`);
      expect(markdown).toContain('**Failed:** could not start');
      expect(await readFile(join(directory, 'latest.md'), 'utf8')).toBe(markdown);
      const json = JSON.parse(await readFile(join(directory, 'latest.json'), 'utf8'));
      expect(json.scenarios).toEqual([
        { name: 'ok', title: 'Title ok', elapsedMs: 1200, data: { ratio: 0.5 } },
        { name: 'broken', title: 'Title broken', elapsedMs: 10, error: 'could not start' },
      ]);
      expect(json.machine.node).toBe(process.version);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
