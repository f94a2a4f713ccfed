import { describe, expect, it } from 'vitest';
import { costMicros, maxCostMicros, tokenCount } from './pricing.js';

describe('costMicros', () => {
  const price = { inputPerMTok: 2_500_000, outputPerMTok: 10_000_000, cachedInputPerMTok: 1_250_000 };

  it('is exact integer micro-units, rounded up once at the end', () => {
    expect(costMicros({ inputTokens: 1_000_000, outputTokens: 0, cachedInputTokens: 0, audioSeconds: 0 }, price)).toBe(2_500_000);
    expect(costMicros({ inputTokens: 3, outputTokens: 16, cachedInputTokens: 0, audioSeconds: 0 }, price)).toBe(Math.ceil((3 * 2_500_000 + 16 * 10_000_000) / 1_000_000));
    expect(costMicros({ inputTokens: 1, outputTokens: 0, cachedInputTokens: 0, audioSeconds: 0 }, { inputPerMTok: 1, outputPerMTok: 1 })).toBe(1);
  });

  it('bills cached input at the cached price, never more cached tokens than input', () => {
    expect(costMicros({ inputTokens: 1000, outputTokens: 0, cachedInputTokens: 400, audioSeconds: 0 }, price)).toBe(Math.ceil((600 * 2_500_000 + 400 * 1_250_000) / 1_000_000));
    expect(costMicros({ inputTokens: 10, outputTokens: 0, cachedInputTokens: 99, audioSeconds: 0 }, price)).toBe(Math.ceil((10 * 1_250_000) / 1_000_000));
  });

  it('bills cache writes at their own rates (long entries at theirs), each part taken from what input is left', () => {
    const caching = { inputPerMTok: 3_000_000, outputPerMTok: 15_000_000, cachedInputPerMTok: 300_000, cacheWriteInputPerMTok: 3_750_000, cacheWriteLongInputPerMTok: 6_000_000 };
    const usage = { inputTokens: 1000, outputTokens: 0, cachedInputTokens: 100, cacheWriteInputTokens: 200, cacheWriteLongInputTokens: 300, audioSeconds: 0 };
    expect(costMicros(usage, caching)).toBe(Math.ceil((400 * 3_000_000 + 100 * 300_000 + 200 * 3_750_000 + 300 * 6_000_000) / 1_000_000));
    // More parts reported than input: no token is billed twice, the dearer parts get what is left.
    expect(costMicros({ ...usage, inputTokens: 250 }, caching)).toBe(Math.ceil((100 * 300_000 + 150 * 3_750_000) / 1_000_000));
    // Without write rates, writes cost the input rate; without a long rate, the write rate.
    expect(costMicros(usage, price)).toBe(Math.ceil((900 * 2_500_000 + 100 * 1_250_000) / 1_000_000));
    expect(costMicros(usage, { ...caching, cacheWriteLongInputPerMTok: undefined })).toBe(Math.ceil((400 * 3_000_000 + 100 * 300_000 + 500 * 3_750_000) / 1_000_000));
  });

  it('bounds a call at its dearest input rate, whatever the caller caches', () => {
    const caching = { inputPerMTok: 3_000_000, outputPerMTok: 15_000_000, cachedInputPerMTok: 300_000, cacheWriteInputPerMTok: 3_750_000, cacheWriteLongInputPerMTok: 6_000_000 };
    const bound = { inputTokens: 1000, outputTokens: 10, cachedInputTokens: 0, audioSeconds: 0 };
    expect(maxCostMicros(bound, caching)).toBe(Math.ceil((1000 * 6_000_000 + 10 * 15_000_000) / 1_000_000));
    expect(maxCostMicros(bound, price)).toBe(costMicros(bound, price));
    for (const parts of [{ cachedInputTokens: 1000 }, { cacheWriteInputTokens: 1000 }, { cacheWriteLongInputTokens: 1000 }, { cacheWriteInputTokens: 500, cacheWriteLongInputTokens: 500 }]) {
      expect(costMicros({ ...bound, ...parts }, caching)).toBeLessThanOrEqual(maxCostMicros(bound, caching));
    }
    expect(maxCostMicros(bound, null)).toBe(0);
  });

  it('bills audio tokens at the audio rates, each side never more audio than tokens', () => {
    const audio = { inputPerMTok: 2_500_000, outputPerMTok: 10_000_000, audioInputPerMTok: 40_000_000, audioOutputPerMTok: 80_000_000 };
    expect(costMicros({ inputTokens: 100, outputTokens: 50, cachedInputTokens: 0, audioInputTokens: 60, audioOutputTokens: 30, audioSeconds: 0 }, audio)).toBe(
      Math.ceil((40 * 2_500_000 + 60 * 40_000_000 + 20 * 10_000_000 + 30 * 80_000_000) / 1_000_000),
    );
    expect(costMicros({ inputTokens: 10, outputTokens: 5, cachedInputTokens: 0, audioInputTokens: 99, audioOutputTokens: 99, audioSeconds: 0 }, audio)).toBe(Math.ceil((10 * 40_000_000 + 5 * 80_000_000) / 1_000_000));
    // Without audio rates, audio tokens cost the text rates.
    expect(costMicros({ inputTokens: 100, outputTokens: 50, cachedInputTokens: 0, audioInputTokens: 60, audioOutputTokens: 30, audioSeconds: 0 }, price)).toBe(Math.ceil((100 * 2_500_000 + 50 * 10_000_000) / 1_000_000));
    // The bound prices both sides at their dearest rates.
    expect(maxCostMicros({ inputTokens: 100, outputTokens: 50, cachedInputTokens: 0, audioSeconds: 0 }, audio)).toBe(Math.ceil((100 * 40_000_000 + 50 * 80_000_000) / 1_000_000));
  });

  it('bills audio per started second and is zero without a price', () => {
    expect(costMicros({ inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, audioSeconds: 2.2 }, { inputPerMTok: 0, outputPerMTok: 0, audioPerSecond: 100 })).toBe(300);
    expect(costMicros({ inputTokens: 5, outputTokens: 5, cachedInputTokens: 0, audioSeconds: 0 }, null)).toBe(0);
  });

  it('treats untrusted provider numbers as counts or zero', () => {
    expect(tokenCount(7)).toBe(7);
    for (const bad of [-1, 1.5, '7', null, undefined, Number.MAX_SAFE_INTEGER + 2]) expect(tokenCount(bad)).toBe(0);
  });
});
