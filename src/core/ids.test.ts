import { describe, expect, it } from 'vitest';
import { isWellFormedId, newId } from './ids.js';

describe('ids', () => {
  it('are well formed, prefixed and never repeat, across many refills of the random pool', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i += 1) {
      const id = newId('req');
      expect(isWellFormedId(id, 'req')).toBe(true);
      seen.add(id);
    }
    expect(seen.size).toBe(20_000);
  });

  it('carry 96 random bits: no byte position is stuck', () => {
    const ids = Array.from({ length: 2_000 }, () => Buffer.from(newId('key').slice(4), 'base64url'));
    for (let position = 0; position < 12; position += 1) {
      const values = new Set(ids.map((bytes) => bytes[position]));
      expect(values.size).toBeGreaterThan(200);
    }
  });
});
