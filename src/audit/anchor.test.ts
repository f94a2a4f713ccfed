import { describe, expect, it } from 'vitest';
import { MAX_ANCHOR_BYTES, parseAuditAnchor } from './anchor.js';
import { signCheckpoint } from './record.js';
import { TEST_AUDIT_KEY } from './testing.js';

const checkpoint = signCheckpoint(TEST_AUDIT_KEY, '42', 'b'.repeat(64), new Date('2026-12-03T10:00:00.123Z'));
const published = { seq: checkpoint.seq, hash: checkpoint.hash, at: checkpoint.at.toISOString(), keyId: checkpoint.keyId, signature: checkpoint.signature };

describe('parseAuditAnchor', () => {
  it('takes the published object, or the whole log line that carries it, with its time intact', () => {
    for (const text of [JSON.stringify(published), `${JSON.stringify({ level: 30, msg: 'audit checkpoint signed', auditCheckpoint: published })}\n`]) {
      const parsed = parseAuditAnchor(text);
      if (!parsed.ok) throw new Error(parsed.message);
      expect(parsed.anchor).toEqual(checkpoint);
    }
  });

  it('refuses what is not one signed checkpoint, saying why', () => {
    const cases: [string, RegExp][] = [
      ['not json', /not JSON/],
      ['[]', /not a signed checkpoint/],
      [JSON.stringify({ ...published, seq: '0' }), /seq/],
      [JSON.stringify({ ...published, seq: 42 }), /seq/],
      [JSON.stringify({ ...published, hash: 'B'.repeat(64) }), /hash/],
      [JSON.stringify({ ...published, at: 'yesterday' }), /at/],
      [JSON.stringify({ ...published, extra: true }), /not a signed checkpoint/],
      [JSON.stringify({ auditCheckpoint: { ...published, signature: undefined } }), /signature/],
      [' '.repeat(MAX_ANCHOR_BYTES + 1), /larger than/],
    ];
    for (const [text, reason] of cases) {
      const parsed = parseAuditAnchor(text);
      expect(parsed.ok, text.slice(0, 40)).toBe(false);
      if (!parsed.ok) expect(parsed.message).toMatch(reason);
    }
  });
});
