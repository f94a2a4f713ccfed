import { describe, it, expect } from 'vitest';
import { createPasswordHasher, TEST_ARGON2ID } from './password.js';
import { checkPasswordPolicy } from './password-policy.js';

describe('password hasher', () => {
  const hasher = createPasswordHasher(TEST_ARGON2ID);

  it('hashes with argon2id and verifies', async () => {
    const hash = await hasher.hash('a long enough passphrase');
    expect(hash.startsWith('$argon2id$v=19$m=1024,')).toBe(true);
    expect(await hasher.verify(hash, 'a long enough passphrase')).toBe(true);
    expect(await hasher.verify(hash, 'a long enough passphrasE')).toBe(false);
  });

  it('normalises unicode so composed and decomposed forms match', async () => {
    const hash = await hasher.hash('caf\u00e9 au lait please');
    expect(await hasher.verify(hash, 'cafe\u0301 au lait please')).toBe(true);
  });

  it('refuses over-long input and non-argon2id hashes without throwing', async () => {
    const hash = await hasher.hash('a long enough passphrase');
    expect(await hasher.verify(hash, 'x'.repeat(257))).toBe(false);
    expect(await hasher.verify('$2b$10$abcdefghijklmnopqrstuv', 'whatever')).toBe(false);
    expect(await hasher.verify('garbage', 'whatever')).toBe(false);
    await expect(hasher.hash('x'.repeat(257))).rejects.toThrow();
  });

  it('flags hashes made with other parameters for rehashing', async () => {
    const hash = await hasher.hash('a long enough passphrase');
    expect(hasher.needsRehash(hash)).toBe(false);
    const stronger = createPasswordHasher({ ...TEST_ARGON2ID, timeCost: 2 });
    expect(stronger.needsRehash(hash)).toBe(true);
    expect(stronger.needsRehash('$2b$10$whatever')).toBe(true);
  });

  it('dummy verification always fails', async () => {
    expect(await hasher.verifyDummy('anything at all')).toBe(false);
    expect(await hasher.verifyDummy('x'.repeat(10_000))).toBe(false);
  });

  it('refuses weak parameters at construction', () => {
    expect(() => createPasswordHasher({ memoryCost: 64, timeCost: 1, parallelism: 1 })).toThrow(/too weak/);
  });
});

describe('password policy', () => {
  it('accepts a reasonable passphrase', () => {
    expect(checkPasswordPolicy('purple elephant runs', { email: 'ann@example.com' })).toEqual({ ok: true });
  });

  it.each([
    ['short', 'short pass'],
    ['too long', 'a'.repeat(200) + 'b'.repeat(57)],
    ['control char', 'purple elephant\u0000runs'],
    ['repetitive', 'aaaaaaaaaaaaaaaa'],
    ['repetitive pair', 'abababababababab'],
    ['sequence', '123456789012'],
    ['reverse sequence', 'zyxwvutsrqponm'],
    ['common', 'Password1234'],
    ['email', 'annabelle@example.com!!'],
    ['email local part', 'annabelle12345'],
  ])('refuses %s', (_name, password) => {
    const result = checkPasswordPolicy(password, { email: 'annabelle@example.com' });
    expect(result.ok).toBe(false);
  });

  it('counts characters, not UTF-16 units, for the minimum', () => {
    expect(checkPasswordPolicy('🔒🔑🚪🔒🔑🚪🔒🔑🚪🔒🔑').ok).toBe(false);
    expect(checkPasswordPolicy('🔒🔑🚪🔒🔑🚪🔒🔑🚪🔒🔑🚪').ok).toBe(true);
  });
});
