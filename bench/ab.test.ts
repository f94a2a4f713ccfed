import { describe, expect, it } from 'vitest';
import { alternate, measureOps, pairedRatio } from './ab.js';

describe('A/B helpers', () => {
  it('alternates which side runs first', async () => {
    const order: string[] = [];
    const result = await alternate(
      4,
      { name: 'a', run: async () => order.push('a') },
      { name: 'b', run: async () => order.push('b') },
    );
    expect(order).toEqual(['a', 'b', 'b', 'a', 'a', 'b', 'b', 'a']);
    expect(result.a).toHaveLength(4);
    expect(result.b).toHaveLength(4);
  });

  it('takes the median of per-round ratios', () => {
    expect(pairedRatio([2, 4, 100], [1, 2, 1])).toBe(2);
  });

  it('counts operations over a bounded time', async () => {
    const sample = await measureOps(async () => undefined, 30);
    expect(sample.operations).toBeGreaterThan(0);
    expect(sample.durationMs).toBeGreaterThanOrEqual(30);
    expect(sample.opsPerSecond).toBeGreaterThan(0);
  });
});
