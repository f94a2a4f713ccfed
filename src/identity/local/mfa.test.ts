import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import { createAead } from '../../core/aead.js';
import { AppError } from '../../core/errors.js';
import { ManualClock } from '../../core/clock.js';
import type { RecordStore } from '../../store/db/record-store.js';
import { openTestRecordStore } from '../../store/db/testing.js';
import { createMfaService, type MfaService } from './mfa.js';
import { createPasswordHasher, TEST_ARGON2ID } from './password.js';
import { seedLocalUser } from './testing.js';
import { totpCodeForStep, totpStepAt } from './totp.js';

function secretOf(uri: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const char of new URL(uri).searchParams.get('secret') ?? '') bits += alphabet.indexOf(char).toString(2).padStart(5, '0');
  const bytes: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

describe('MFA service', () => {
  let store: RecordStore;
  const clock = new ManualClock(Date.UTC(2026, 5, 1, 8, 0, 1));
  const aead = createAead({ activeKeyId: 'k', keys: { k: randomBytes(32) } });
  let mfa: MfaService;
  const hasher = createPasswordHasher(TEST_ARGON2ID);

  beforeAll(async () => {
    store = await openTestRecordStore();
    mfa = createMfaService({ db: store.db, aead, clock, issuer: 'Portcullis' });
  });
  afterAll(async () => {
    await store.close();
  });

  async function enrolled(): Promise<{ userId: string; secret: Buffer; recoveryCodes: string[] }> {
    const user = await seedLocalUser(store.db, hasher);
    const result = await mfa.enrol(user.id, user.email);
    if (!result.ok) throw new Error('enrol failed');
    const secret = secretOf(result.otpauthUri);
    expect(await mfa.confirm(user.id, totpCodeForStep(secret, totpStepAt(clock.now())))).toBe(true);
    clock.advance(30_000);
    return { userId: user.id, secret, recoveryCodes: result.recoveryCodes };
  }

  it('accepts the same TOTP code exactly once under concurrency', async () => {
    const { userId, secret } = await enrolled();
    const code = totpCodeForStep(secret, totpStepAt(clock.now()));
    const results = await Promise.all(Array.from({ length: 8 }, () => mfa.verify(userId, { code })));
    expect(results.filter((result) => result.ok)).toHaveLength(1);
  });

  it('accepts the same recovery code exactly once under concurrency', async () => {
    const { userId, recoveryCodes } = await enrolled();
    const recoveryCode = recoveryCodes[2] ?? '';
    const results = await Promise.all(Array.from({ length: 8 }, () => mfa.verify(userId, { recoveryCode })));
    expect(results.filter((result) => result.ok)).toHaveLength(1);
  });

  it('refuses an older step once a newer one was used', async () => {
    const { userId, secret } = await enrolled();
    const step = totpStepAt(clock.now());
    expect((await mfa.verify(userId, { code: totpCodeForStep(secret, step + 1) })).ok).toBe(true);
    expect((await mfa.verify(userId, { code: totpCodeForStep(secret, step) })).ok).toBe(false);
  });

  it('re-enrolment replaces a pending enrolment but never a confirmed one', async () => {
    const user = await seedLocalUser(store.db, hasher);
    const first = await mfa.enrol(user.id, user.email);
    const second = await mfa.enrol(user.id, user.email);
    expect(first.ok && second.ok).toBe(true);
    if (!first.ok || !second.ok) return;
    // The first (replaced) secret no longer confirms.
    expect(await mfa.confirm(user.id, totpCodeForStep(secretOf(first.otpauthUri), totpStepAt(clock.now())))).toBe(false);
    expect(await mfa.confirm(user.id, totpCodeForStep(secretOf(second.otpauthUri), totpStepAt(clock.now())))).toBe(true);
    expect(await mfa.enrol(user.id, user.email)).toEqual({ ok: false, reason: 'already_enabled' });
  });

  it('a sealed secret moved to another user does not open', async () => {
    const a = await enrolled();
    const b = await enrolled();
    const row = await store.db.selectFrom('mfa').select('totp_secret_sealed').where('user_id', '=', a.userId).executeTakeFirstOrThrow();
    await store.db.updateTable('mfa').set({ totp_secret_sealed: row.totp_secret_sealed }).where('user_id', '=', b.userId).execute();
    await expect(mfa.verify(b.userId, { code: totpCodeForStep(a.secret, totpStepAt(clock.now())) })).rejects.toBeInstanceOf(AppError);
  });
});
