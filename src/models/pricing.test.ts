import { describe, expect, it } from 'vitest';
import { costMicros, tokenCount } from './pricing.js';

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

  it('bills audio per started second and is zero without a price', () => {
    expect(costMicros({ inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, audioSeconds: 2.2 }, { inputPerMTok: 0, outputPerMTok: 0, audioPerSecond: 100 })).toBe(300);
    expect(costMicros({ inputTokens: 5, outputTokens: 5, cachedInputTokens: 0, audioSeconds: 0 }, null)).toBe(0);
  });

  it('treats untrusted provider numbers as counts or zero', () => {
    expect(tokenCount(7)).toBe(7);
    for (const bad of [-1, 1.5, '7', null, undefined, Number.MAX_SAFE_INTEGER + 2]) expect(tokenCount(bad)).toBe(0);
  });
});
