import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { actualCost, estimateCost, formatMoney, parseMoney, reachedPercent, safeSum, tokenCost } from './money.js';
import { counterExpiresAt, periodWindow, secondsUntilReset } from './periods.js';

describe('integer money maths', () => {
  it('prices tokens per million in micro-units, rounding a partial micro-unit up', () => {
    // 2.50 per million tokens = 2,500,000 micro per million → 2.5 micro per token.
    expect(tokenCost(1, 2_500_000)).toBe(3);
    expect(tokenCost(2, 2_500_000)).toBe(5);
    expect(tokenCost(1_000_000, 2_500_000)).toBe(2_500_000);
    expect(tokenCost(0, 2_500_000)).toBe(0);
    expect(tokenCost(123, 0)).toBe(0);
  });

  it('bounds a call by its dearer rate when the input share is unknown', () => {
    const price = { inputMicrosPerMillion: 1_000_000, outputMicrosPerMillion: 4_000_000 };
    expect(estimateCost(price, 1000)).toBe(4000);
    // Known prompt: 200 input tokens at 1/M, the other 800 at 4/M.
    expect(estimateCost(price, 1000, 200)).toBe(200 + 3200);
    expect(actualCost(price, 200, 300)).toBe(200 + 1200);
  });

  it('never under-estimates: the estimate is at least the cost of any split of the tokens', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.integer({ min: 0, max: 200_000_000 }),
        fc.integer({ min: 0, max: 200_000_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        (maxTokens, inRate, outRate, split) => {
          const price = { inputMicrosPerMillion: inRate, outputMicrosPerMillion: outRate };
          const input = Math.min(split, maxTokens);
          const bound = estimateCost(price, maxTokens);
          expect(Number.isSafeInteger(bound)).toBe(true);
          expect(bound + 1).toBeGreaterThanOrEqual(actualCost(price, input, maxTokens - input));
          expect(estimateCost(price, maxTokens, input)).toBe(actualCost(price, input, maxTokens - input));
        },
      ),
    );
  });

  it('refuses floats, negatives and values beyond the safe integer range', () => {
    expect(() => tokenCost(1.5, 10)).toThrow();
    expect(() => tokenCost(-1, 10)).toThrow();
    expect(() => tokenCost(10, 0.1)).toThrow();
    expect(() => tokenCost(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)).toThrow();
    expect(() => safeSum(Number.MAX_SAFE_INTEGER, 1)).toThrow();
    expect(() => estimateCost({ inputMicrosPerMillion: 1, outputMicrosPerMillion: 1 }, Number.NaN)).toThrow();
  });

  it('parses and formats decimal money exactly', () => {
    expect(parseMoney('1')).toBe(1_000_000);
    expect(parseMoney('1.00')).toBe(1_000_000);
    expect(parseMoney('0.1')).toBe(100_000);
    expect(parseMoney('0.000001')).toBe(1);
    expect(() => parseMoney('0.0000001')).toThrow();
    expect(() => parseMoney('-1')).toThrow();
    expect(() => parseMoney('1e3')).toThrow();
    expect(formatMoney(1_234_567)).toBe('1.234567');
    expect(formatMoney(5)).toBe('0.000005');
  });

  it('compares percentages of a cap exactly, even where used × 100 passes 2^53', () => {
    expect(reachedPercent(80, 100, 80)).toBe(true);
    expect(reachedPercent(79, 100, 80)).toBe(false);
    expect(reachedPercent(1, 3, 33)).toBe(true);
    expect(reachedPercent(1, 3, 34)).toBe(false);
    const big = Number.MAX_SAFE_INTEGER - 1;
    expect(reachedPercent(big, Number.MAX_SAFE_INTEGER, 100)).toBe(false);
    expect(reachedPercent(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 100)).toBe(true);
  });
});

describe('UTC periods', () => {
  const at = Date.UTC(2026, 10, 30, 23, 59, 59, 500);

  it('labels days and months in UTC and ends them at the next UTC boundary', () => {
    expect(periodWindow('day', at)).toEqual({ label: 'day:2026-11-30', startsAt: Date.UTC(2026, 10, 30), endsAt: Date.UTC(2026, 11, 1) });
    expect(periodWindow('month', at)).toEqual({ label: 'month:2026-11', startsAt: Date.UTC(2026, 10, 1), endsAt: Date.UTC(2026, 11, 1) });
    expect(periodWindow('month', Date.UTC(2026, 11, 31, 12)).endsAt).toBe(Date.UTC(2027, 0, 1));
    expect(periodWindow('total', at).label).toBe('total');
  });

  it('reports the reset in whole seconds, and none for total', () => {
    expect(secondsUntilReset(periodWindow('day', at).endsAt, at)).toBe(1);
    expect(secondsUntilReset(periodWindow('total', at).endsAt, at)).toBeUndefined();
    expect(counterExpiresAt(periodWindow('day', at), at)).toBeGreaterThan(Date.UTC(2026, 11, 1));
  });
});
