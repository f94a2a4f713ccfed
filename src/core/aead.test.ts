import { randomBytes } from 'node:crypto';
import { describe, it, expect } from 'vitest';
import { createAead } from './aead.js';
import { AppError } from './errors.js';

const keyA = randomBytes(32);
const keyB = randomBytes(32);

describe('aead', () => {
  it('round-trips and binds the associated data', () => {
    const aead = createAead({ activeKeyId: 'k1', keys: { k1: keyA } });
    const sealed = aead.seal('top secret', 'ctx:1');
    expect(sealed.startsWith('v1.k1.')).toBe(true);
    expect(sealed).not.toContain('top secret');
    expect(aead.open(sealed, 'ctx:1').toString('utf8')).toBe('top secret');
    expect(() => aead.open(sealed, 'ctx:2')).toThrow(AppError);
  });

  it('uses a fresh nonce for every seal', () => {
    const aead = createAead({ activeKeyId: 'k1', keys: { k1: keyA } });
    expect(aead.seal('x', 'a')).not.toBe(aead.seal('x', 'a'));
  });

  it('opens values sealed with an older key after rotation', () => {
    const before = createAead({ activeKeyId: 'k1', keys: { k1: keyA } });
    const sealed = before.seal('value', 'ad');
    const after = createAead({ activeKeyId: 'k2', keys: new Map([['k1', keyA], ['k2', keyB]]) });
    expect(after.open(sealed, 'ad').toString()).toBe('value');
    expect(after.keyIdOf(after.seal('value', 'ad'))).toBe('k2');
    const withoutOld = createAead({ activeKeyId: 'k2', keys: { k2: keyB } });
    expect(() => withoutOld.open(sealed, 'ad')).toThrow(AppError);
  });

  it('refuses tampered and malformed values without echoing them', () => {
    const aead = createAead({ activeKeyId: 'k1', keys: { k1: keyA } });
    const sealed = aead.seal('value', 'ad');
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[3]!, 'base64url');
    ct[0] = (ct[0]! ^ 1) & 0xff;
    const tampered = [parts[0], parts[1], parts[2], ct.toString('base64url'), parts[4]].join('.');
    for (const bad of [tampered, 'garbage', 'v2.k1.a.b.c', `${sealed}.x`, '', 'v1.k1.AAAA.AAAA.AAAA']) {
      try {
        aead.open(bad, 'ad');
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(AppError);
        expect((error as AppError).code).toBe('internal');
        expect(String((error as AppError).cause)).not.toContain(parts[3]!);
      }
    }
  });

  it('fails at construction on a bad keyring', () => {
    expect(() => createAead({ activeKeyId: 'k1', keys: { k1: randomBytes(16) } })).toThrow(/32 bytes/);
    expect(() => createAead({ activeKeyId: 'k9', keys: { k1: keyA } })).toThrow(/not in the keyring/);
    expect(() => createAead({ activeKeyId: 'bad id', keys: { 'bad id': keyA } })).toThrow(/invalid/);
  });
});
