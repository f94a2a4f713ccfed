import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HitLog } from './sliding-log.js';

/** The obvious model: every hit kept as it came, filtered on every question. */
class NaiveLog {
  hits: { at: number; cost: number }[] = [];
  add(at: number, cost: number): void {
    this.hits.push({ at, cost });
  }
  trim(now: number, windowMs: number): void {
    this.hits = this.hits.filter((h) => h.at > now - windowMs);
  }
  total(): number {
    return this.hits.reduce((sum, h) => sum + h.cost, 0);
  }
  freedAfter(need: number): number | undefined {
    let freed = 0;
    for (const h of this.hits) {
      freed += h.cost;
      if (freed >= need) return h.at;
    }
    return undefined;
  }
}

describe('HitLog', () => {
  it('counts hits of one millisecond as one entry that expires as a whole', () => {
    const log = new HitLog();
    log.add(1_000, 1);
    log.add(1_000, 2);
    log.add(1_001, 4);
    expect(log.total).toBe(7);
    expect(log.freedAfter(3)).toBe(1_000);
    expect(log.freedAfter(4)).toBe(1_001);
    log.trim(2_000, 1_000);
    expect(log.total).toBe(4);
    expect(log.oldestAt()).toBe(1_001);
    log.trim(2_001, 1_000);
    expect(log.isEmpty()).toBe(true);
    expect(log.total).toBe(0);
    expect(log.oldestAt()).toBeUndefined();
  });

  it('answers like a log that keeps every hit, through trims and compactions', () => {
    const step = fc.record({ advance: fc.integer({ min: 0, max: 3 }), cost: fc.integer({ min: 0, max: 5 }), need: fc.integer({ min: 1, max: 40 }) });
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 3_000 }), fc.integer({ min: 1, max: 50 }), (steps, windowMs) => {
        const log = new HitLog();
        const naive = new NaiveLog();
        let now = 1_000_000;
        for (const { advance, cost, need } of steps) {
          now += advance;
          log.trim(now, windowMs);
          naive.trim(now, windowMs);
          if (cost > 0) {
            log.add(now, cost);
            naive.add(now, cost);
          }
          expect(log.total).toBe(naive.total());
          expect(log.oldestAt()).toBe(naive.hits[0]?.at);
          expect(log.freedAfter(need)).toBe(naive.freedAfter(need));
          expect(log.isEmpty()).toBe(naive.hits.length === 0);
        }
      }),
      { numRuns: 60 },
    );
  });
});
