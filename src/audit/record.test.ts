import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { GENESIS_HASH, assertSigningKey, checkpointSignatureValid, hashRecord, signCheckpoint, type UnhashedRecord } from './record.js';
import { TEST_AUDIT_KEY, testAuditKeys } from './testing.js';

const base: UnhashedRecord = {
  seq: '7',
  id: 'aud_AAAAAAAAAAAAAAAA',
  at: new Date(Date.UTC(2026, 0, 1)),
  actor: 'usr_1',
  orgId: 'org_1',
  action: 'key.revoke',
  target: 'key_1',
  outcome: 'success',
  details: { reason: 'rotation', count: 2 },
  prevHash: GENESIS_HASH,
};

describe('hashRecord', () => {
  it('is a stable sha256 hex digest', () => {
    expect(hashRecord(base)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashRecord({ ...base, details: { count: 2, reason: 'rotation' } })).toBe(hashRecord(base));
  });

  it('changes when any single field changes', () => {
    const original = hashRecord(base);
    const edits: Array<Partial<UnhashedRecord>> = [
      { seq: '8' },
      { id: 'aud_BBBBBBBBBBBBBBBB' },
      { at: new Date(base.at.getTime() + 1) },
      { actor: 'usr_2' },
      { orgId: null },
      { action: 'key.create' },
      { target: null },
      { outcome: 'denied' },
      { details: { reason: 'rotation', count: 3 } },
      { details: { reason: 'rotation', count: '2' } },
      { prevHash: 'f'.repeat(64) },
    ];
    for (const edit of edits) expect(hashRecord({ ...base, ...edit })).not.toBe(original);
  });

  it('never confuses two different actor/target splits (fields are delimited, not concatenated)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), (a, b, c) => {
        // Moving a non-empty b from the end of actor to the start of target is a different record.
        fc.pre(b.length > 0);
        expect(hashRecord({ ...base, actor: a + b, target: c })).not.toBe(hashRecord({ ...base, actor: a, target: b + c }));
      }),
    );
  });
});

describe('checkpoint signatures', () => {
  it('verify with the key that signed them and no other', () => {
    const checkpoint = signCheckpoint(TEST_AUDIT_KEY, '10', 'a'.repeat(64), new Date(0));
    expect(checkpointSignatureValid(testAuditKeys(), checkpoint)).toBe(true);
    expect(checkpointSignatureValid(new Map([[TEST_AUDIT_KEY.id, 'another-secret-that-is-long-enough-1234']]), checkpoint)).toBe(false);
    expect(checkpointSignatureValid(new Map(), checkpoint)).toBe(false);
  });

  it('break when seq, hash, time or key id change', () => {
    const checkpoint = signCheckpoint(TEST_AUDIT_KEY, '10', 'a'.repeat(64), new Date(0));
    const keys = testAuditKeys({ id: 'other', secret: TEST_AUDIT_KEY.secret });
    expect(checkpointSignatureValid(keys, { ...checkpoint, seq: '11' })).toBe(false);
    expect(checkpointSignatureValid(keys, { ...checkpoint, hash: 'b'.repeat(64) })).toBe(false);
    expect(checkpointSignatureValid(keys, { ...checkpoint, at: new Date(1) })).toBe(false);
    expect(checkpointSignatureValid(keys, { ...checkpoint, signature: checkpoint.signature.slice(0, -2) })).toBe(false);
    // Same secret under another id still verifies: the id selects the key, it is not a secret.
    expect(checkpointSignatureValid(keys, { ...checkpoint, keyId: 'other' })).toBe(true);
  });

  it('refuses weak signing keys', () => {
    expect(() => assertSigningKey({ id: 'k1', secret: 'short' })).toThrow(/at least 32/);
    expect(() => assertSigningKey({ id: 'bad id!', secret: 'x'.repeat(32) })).toThrow(/key id/);
    expect(() => assertSigningKey({ id: 'k1', secret: new Uint8Array(32) })).not.toThrow();
  });
});
