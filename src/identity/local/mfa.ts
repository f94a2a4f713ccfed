/**
 * TOTP second factor for local users: enrol (secret sealed at rest, URI and recovery codes shown
 * once), confirm with a first valid code, verify at sign-in, disable with a current code.
 *
 * Replay: the last accepted time step is written with a conditional UPDATE (`last_step < step`),
 * so of two requests carrying the same code — even on two replicas — exactly one wins.
 * Recovery codes are consumed the same way: the new list is written only if the stored list is
 * still the one the code was checked against.
 */
import { sql } from 'kysely';
import type { Aead } from '../../core/aead.js';
import type { Clock } from '../../core/clock.js';
import type { Db } from '../../store/db/schema.js';
import { consumeRecoveryCode, generateRecoveryCodes } from './recovery-codes.js';
import { generateTotpSecret, matchTotpStep, totpUri } from './totp.js';

export type MfaProof = { code: string } | { recoveryCode: string };

export type MfaCheck = { ok: true; via: 'totp' | 'recovery_code'; recoveryCodesLeft: number } | { ok: false };

export type EnrolResult = { ok: true; otpauthUri: string; recoveryCodes: string[] } | { ok: false; reason: 'already_enabled' };

export interface MfaService {
  /** True when the user has a confirmed second factor. */
  isEnabled(userId: string): Promise<boolean>;
  enrol(userId: string, account: string): Promise<EnrolResult>;
  /** Activates a pending enrolment; false for a wrong code or when nothing is pending. */
  confirm(userId: string, code: string): Promise<boolean>;
  verify(userId: string, proof: MfaProof): Promise<MfaCheck>;
  /** Removes the factor; requires a current TOTP code. */
  disable(userId: string, code: string): Promise<boolean>;
}

export interface MfaDeps {
  db: Db;
  aead: Aead;
  clock: Clock;
  issuer: string;
}

function secretAad(userId: string): string {
  return `portcullis:mfa:totp:${userId}`;
}

function parseLastStep(value: string | null): number | null {
  if (value === null) return null;
  const step = Number(value);
  return Number.isSafeInteger(step) ? step : null;
}

function parseHashes(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

export function createMfaService(deps: MfaDeps): MfaService {
  const { db, aead, clock } = deps;

  async function row(userId: string) {
    return db.selectFrom('mfa').selectAll().where('user_id', '=', userId).executeTakeFirst();
  }

  /** Matches a code and atomically records its step; true only for the one caller that wins. */
  async function acceptTotp(userId: string, sealed: string, lastStep: string | null, code: string, requireEnabled: boolean): Promise<boolean> {
    const secret = aead.open(sealed, secretAad(userId));
    const step = matchTotpStep(secret, code, clock.now(), parseLastStep(lastStep));
    secret.fill(0);
    if (step === null) return false;
    const result = await db
      .updateTable('mfa')
      .set({ last_step: step })
      .where('user_id', '=', userId)
      .where('enabled', '=', requireEnabled)
      .where((eb) => eb.or([eb('last_step', 'is', null), eb('last_step', '<', String(step))]))
      .executeTakeFirst();
    return result.numUpdatedRows === 1n;
  }

  return {
    async isEnabled(userId) {
      return (await row(userId))?.enabled === true;
    },

    async enrol(userId, account) {
      const existing = await row(userId);
      if (existing?.enabled === true) return { ok: false, reason: 'already_enabled' };
      const secret = generateTotpSecret();
      const sealed = aead.seal(secret, secretAad(userId));
      const otpauthUri = totpUri(secret, account, deps.issuer);
      secret.fill(0);
      const recovery = generateRecoveryCodes();
      const values = { totp_secret_sealed: sealed, enabled: false, recovery_codes: JSON.stringify(recovery.hashes), last_step: null };
      // A pending (unconfirmed) enrolment is simply replaced; a confirmed one is never overwritten.
      const result = await db
        .insertInto('mfa')
        .values({ user_id: userId, ...values, created_at: new Date(clock.now()) })
        .onConflict((oc) => oc.column('user_id').doUpdateSet(values).where('mfa.enabled', '=', false))
        .executeTakeFirst();
      if (result.numInsertedOrUpdatedRows === 0n) return { ok: false, reason: 'already_enabled' };
      return { ok: true, otpauthUri, recoveryCodes: recovery.codes };
    },

    async confirm(userId, code) {
      const current = await row(userId);
      if (current === undefined || current.enabled) return false;
      if (!(await acceptTotp(userId, current.totp_secret_sealed, current.last_step, code, false))) return false;
      const result = await db.updateTable('mfa').set({ enabled: true }).where('user_id', '=', userId).where('enabled', '=', false).executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },

    async verify(userId, proof) {
      const current = await row(userId);
      if (current?.enabled !== true) return { ok: false };
      const hashes = parseHashes(current.recovery_codes);
      if ('code' in proof) {
        const ok = await acceptTotp(userId, current.totp_secret_sealed, current.last_step, proof.code, true);
        return ok ? { ok: true, via: 'totp', recoveryCodesLeft: hashes.length } : { ok: false };
      }
      const remaining = consumeRecoveryCode(hashes, proof.recoveryCode);
      if (remaining === null) return { ok: false };
      const result = await db
        .updateTable('mfa')
        .set({ recovery_codes: JSON.stringify(remaining) })
        .where('user_id', '=', userId)
        .where('enabled', '=', true)
        .where(sql<boolean>`recovery_codes = ${JSON.stringify(hashes)}::jsonb`)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n ? { ok: true, via: 'recovery_code', recoveryCodesLeft: remaining.length } : { ok: false };
    },

    async disable(userId, code) {
      const current = await row(userId);
      if (current?.enabled !== true) return false;
      if (!(await acceptTotp(userId, current.totp_secret_sealed, current.last_step, code, true))) return false;
      const result = await db.deleteFrom('mfa').where('user_id', '=', userId).executeTakeFirst();
      return result.numDeletedRows === 1n;
    },
  };
}
