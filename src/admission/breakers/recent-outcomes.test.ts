import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RecentOutcomes, outcomesCounted } from './recent-outcomes.js';

describe('recent outcomes of a dependency', () => {
  it('count threshold ÷ ratio outcomes, so that threshold failures in a row always reach the ratio', () => {
    expect(outcomesCounted({ failureThreshold: 5, failureRatio: 0.5 })).toBe(10);
    expect(outcomesCounted({ failureThreshold: 3, failureRatio: 0.3 })).toBe(10);
    expect(outcomesCounted({ failureThreshold: 5, failureRatio: 1 })).toBe(5);
    expect(outcomesCounted({ failureThreshold: 5, failureRatio: 0 })).toBe(0);
    expect(outcomesCounted({ failureThreshold: 10_000, failureRatio: 0.01 })).toBe(1024);
    for (const [failureThreshold, failureRatio] of [[5, 0.5], [3, 0.3], [7, 0.7], [1, 0.05], [9, 0.9]] as const) {
      const recent = new RecentOutcomes();
      const length = outcomesCounted({ failureThreshold, failureRatio });
      for (let i = 0; i < 5_000; i += 1) recent.record(false, length);
      for (let i = 1; i < failureThreshold; i += 1) {
        recent.record(true, length);
        expect(recent.reaches(failureRatio)).toBe(false);
      }
      recent.record(true, length);
      expect(recent.reaches(failureRatio)).toBe(true);
    }
  });

  it('say what a naive list of the last outcomes says', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(fc.boolean(), { maxLength: 60 }), fc.double({ min: 0.01, max: 1, noNaN: true }), (length, outcomes, ratio) => {
        const recent = new RecentOutcomes();
        for (const failed of outcomes) recent.record(failed, length);
        const last = outcomes.slice(-length);
        const failures = last.filter(Boolean).length;
        expect(recent.reaches(ratio)).toBe(last.length > 0 && failures + 1e-9 >= ratio * last.length);
      }),
    );
  });

  it('start afresh when cleared or when the settings change the length; a ratio of 0 always reaches', () => {
    const recent = new RecentOutcomes();
    for (let i = 0; i < 4; i += 1) recent.record(true, 4);
    expect(recent.reaches(1)).toBe(true);
    recent.clear();
    expect(recent.reaches(0.1)).toBe(false);
    recent.record(true, 4);
    recent.record(false, 6);
    expect(recent.reaches(0.5)).toBe(false);
    expect(recent.reaches(0)).toBe(true);
  });
});
