import { describe, expect, it } from 'vitest';
import { cpuMsBetween, startSimulatorProcess } from './processes.js';

describe('simulator as a child process', () => {
  it('starts, reports its URL and own process stats, and stops', async () => {
    const sim = await startSimulatorProcess();
    try {
      expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const before = await sim.stats();
      const response = await fetch(`${sim.url}/v1/models`);
      expect(response.status).toBe(200);
      const after = await sim.stats();
      expect(after.maxRssBytes).toBeGreaterThan(0);
      expect(cpuMsBetween(before, after)).toBeGreaterThanOrEqual(0);
      expect((await sim.stats()) as unknown).toHaveProperty('pid', sim.pid);
    } finally {
      await sim.stop();
    }
    await expect(fetch(`${sim.url}/v1/models`)).rejects.toThrow();
  });
});
