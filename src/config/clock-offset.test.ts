import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { clockOffsetFromEnv, offsetClock } from './clock-offset.js';
import { ConfigError } from './errors.js';

describe('PORTCULLIS_CLOCK_OFFSET_MS', () => {
  it('shifts only the injected clock, by a bounded whole number of milliseconds', () => {
    expect(clockOffsetFromEnv({})).toBe(0);
    expect(clockOffsetFromEnv({ PORTCULLIS_CLOCK_OFFSET_MS: '-120000' })).toBe(-120_000);
    expect(clockOffsetFromEnv({ PORTCULLIS_CLOCK_OFFSET_MS: ' 120000 ' })).toBe(120_000);
    const base = new ManualClock(1_000_000);
    expect(offsetClock(base, -120_000).now()).toBe(880_000);
    expect(offsetClock(base, 0)).toBe(base);
  });

  it('refuses anything else at start, naming the variable', () => {
    for (const bad of ['1.5', '1e5', 'abc', '86400001', '-86400001', '0x10']) {
      expect(() => clockOffsetFromEnv({ PORTCULLIS_CLOCK_OFFSET_MS: bad })).toThrow(ConfigError);
      expect(() => clockOffsetFromEnv({ PORTCULLIS_CLOCK_OFFSET_MS: bad })).toThrow(/PORTCULLIS_CLOCK_OFFSET_MS/);
    }
  });
});
