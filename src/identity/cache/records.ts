/**
 * The few record-store reads and writes the identity cache and its events need — a narrow port so
 * the cache can be tested without a database and the queries live in one place.
 */
import type { Db, OrgRole, UserType } from '../../store/db/index.js';

/** What the hot path needs to know about a user; the pepper never leaves the process. */
export interface CachedUser {
  pepper: string;
  userType: UserType;
  disabled: boolean;
  platformAdmin: boolean;
}

export interface RevokedKey {
  keyId: string;
  /** ms since the epoch; after this the key cannot verify anyway, so the entry may be dropped. */
  expiresAt: number;
}

export interface IdentityRecords {
  loadUser(userId: string): Promise<CachedUser | null>;
  loadRole(orgId: string, userId: string): Promise<OrgRole | null>;
  /** Revoked keys that have not expired yet at `now`. */
  loadRevokedKeys(now: Date): Promise<RevokedKey[]>;
  /** Idempotent: revoking a revoked key again changes nothing. */
  recordKeyRevocation(keyId: string, expiresAt: Date, revokedAt: Date): Promise<void>;
  /** False when the user does not exist. */
  setPepper(userId: string, pepper: string): Promise<boolean>;
}

/** Bounds every read of the deny-list at start and on resync. */
const MAX_REVOCATIONS_LOADED = 1_000_000;

export function createDbIdentityRecords(db: Db): IdentityRecords {
  return {
    async loadUser(userId) {
      const row = await db
        .selectFrom('users')
        .select(['pepper', 'user_type', 'disabled', 'platform_admin'])
        .where('id', '=', userId)
        .executeTakeFirst();
      if (row === undefined) return null;
      return { pepper: row.pepper, userType: row.user_type, disabled: row.disabled, platformAdmin: row.platform_admin };
    },
    async loadRole(orgId, userId) {
      const row = await db
        .selectFrom('memberships')
        .select('role')
        .where('org_id', '=', orgId)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return row?.role ?? null;
    },
    async loadRevokedKeys(now) {
      const rows = await db
        .selectFrom('revocations')
        .select(['subject', 'expires_at'])
        .where('kind', '=', 'key')
        .where('expires_at', '>', now)
        .limit(MAX_REVOCATIONS_LOADED)
        .execute();
      return rows.map((row) => ({ keyId: row.subject, expiresAt: new Date(row.expires_at).getTime() }));
    },
    async recordKeyRevocation(keyId, expiresAt, revokedAt) {
      await db
        .insertInto('revocations')
        .values({ kind: 'key', subject: keyId, revoked_at: revokedAt, expires_at: expiresAt })
        .onConflict((oc) => oc.columns(['kind', 'subject']).doNothing())
        .execute();
    },
    async setPepper(userId, pepper) {
      const result = await db.updateTable('users').set({ pepper }).where('id', '=', userId).executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },
  };
}
