import { describe, expect, it } from 'vitest';
import { median, percentile, round, summarise } from './stats.js';

describe('bench stats', () => {
  it('uses nearest-rank percentiles', () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 0.5)).toBe(50);
    expect(percentile(sorted, 0.99)).toBe(99);
    expect(percentile(sorted, 1)).toBe(100);
    expect(percentile(new Float64Array(0), 0.5)).toBeNaN();
  });

  it('summarises unsorted samples', () => {
    const summary = summarise([5, 1, 3, 2, 4]);
    expect(summary).toMatchObject({ count: 5, p50Ms: 3, maxMs: 5, meanMs: 3 });
    expect(median([9, 1, 5])).toBe(5);
    expect(round(1234.56)).toBe(1235);
    expect(round(0.123456)).toBe(0.123);
  });
});
