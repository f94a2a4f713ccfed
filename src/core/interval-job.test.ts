import { describe, expect, it } from 'vitest';
import { startIntervalJob } from './interval-job.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('startIntervalJob', () => {
  it('never overlaps a slow run, survives failures, and stop waits for the run in progress', async () => {
    let concurrent = 0;
    let maxConcurrent = 0;
    let runs = 0;
    let finished = 0;
    const job = startIntervalJob('test', 5, async () => {
      runs++;
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await sleep(30);
      concurrent--;
      finished++;
      if (runs === 1) throw new Error('first run fails');
    });
    await sleep(120);
    await job.stop();
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(maxConcurrent).toBe(1);
    expect(finished).toBe(runs);
    const after = runs;
    await sleep(30);
    expect(runs).toBe(after);
  });
});
