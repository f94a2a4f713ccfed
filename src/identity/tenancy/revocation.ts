/**
 * Durable key revocation inside a caller's transaction: the key row is marked revoked and a
 * deny-list entry is written (kept until the key would have expired anyway), so a replica that
 * starts later, or missed the pub/sub message, still refuses the key. Publishing happens after
 * commit, by the caller, so no replica hears of a revocation that then rolled back.
 */
import type { Transaction } from 'kysely';
import type { Database } from '../../store/db/schema.js';

export interface RevokedKey {
  id: string;
  expiresAt: Date;
}

export async function revokeKeysInTransaction(trx: Transaction<Database>, keys: readonly RevokedKey[], now: Date): Promise<void> {
  if (keys.length === 0) return;
  await trx
    .updateTable('api_keys')
    .set({ revoked_at: now })
    .where(
      'id',
      'in',
      keys.map((k) => k.id),
    )
    .where('revoked_at', 'is', null)
    .execute();
  await trx
    .insertInto('revocations')
    .values(keys.map((k) => ({ kind: 'key', subject: k.id, revoked_at: now, expires_at: k.expiresAt })))
    .onConflict((oc) => oc.columns(['kind', 'subject']).doNothing())
    .execute();
}
