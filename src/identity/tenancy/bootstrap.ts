/**
 * First start: create the first platform-admin user, a default org they own, and an admin key, and
 * hand the key back exactly once. Runs only when no platform admin exists. Replicas starting
 * together are safe: the check and the inserts run in one transaction behind a transaction-scoped
 * advisory lock, so exactly one of them creates anything and the rest see `created: false`.
 */
import { sql } from 'kysely';
import type { AuditSink } from '../../audit/sink.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { newId } from '../../core/ids.js';
import type { Db } from '../../store/db/schema.js';
import { newPepper } from './users.js';
import type { KeyTokenSigner } from './ports.js';

export interface BootstrapOptions {
  email?: string;
  orgName?: string;
  orgSlug?: string;
  /** Key lifetime; the signer's default (and maximum) apply otherwise. */
  ttlMs?: number;
  audit?: AuditSink;
  clock?: Clock;
}

export type BootstrapResult =
  | { created: true; userId: string; orgId: string; keyId: string; token: string; expiresAt: Date }
  | { created: false };

export const BOOTSTRAP_SCOPES = ['admin', 'models', 'tasks', 'capabilities:issue'];

export async function bootstrapPlatformAdmin(db: Db, signer: KeyTokenSigner, options: BootstrapOptions = {}): Promise<BootstrapResult> {
  const clock = options.clock ?? systemClock;
  const result = await db.transaction().execute(async (trx): Promise<BootstrapResult> => {
    await sql`SELECT pg_advisory_xact_lock(hashtext('portcullis.bootstrap:' || current_schema()))`.execute(trx);
    const existing = await trx.selectFrom('users').select('id').where('platform_admin', '=', true).limit(1).executeTakeFirst();
    if (existing !== undefined) return { created: false };
    const userId = newId('usr');
    const orgId = newId('org');
    const keyId = newId('key');
    const pepper = newPepper();
    await trx
      .insertInto('users')
      .values({
        id: userId,
        email: (options.email ?? 'admin@localhost').trim().toLowerCase(),
        display_name: 'Platform admin',
        user_type: 'privileged',
        platform_admin: true,
        password_hash: null,
        pepper,
        disabled: false,
      })
      .execute();
    await trx
      .insertInto('orgs')
      .values({ id: orgId, name: options.orgName ?? 'Default', slug: options.orgSlug ?? 'default' })
      .execute();
    await trx.insertInto('memberships').values({ org_id: orgId, user_id: userId, role: 'owner' }).execute();
    // Signed inside the transaction: a signing failure leaves no admin without a credential.
    const signed = await signer.sign({
      keyId,
      userId,
      orgId,
      scopes: BOOTSTRAP_SCOPES,
      pepper,
      ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
    });
    await trx
      .insertInto('api_keys')
      .values({
        id: keyId,
        org_id: orgId,
        user_id: userId,
        name: 'bootstrap admin key',
        scopes: JSON.stringify(BOOTSTRAP_SCOPES),
        created_at: new Date(clock.now()),
        expires_at: signed.expiresAt,
        revoked_at: null,
        created_by: 'system',
      })
      .execute();
    return { created: true, userId, orgId, keyId, token: signed.token, expiresAt: signed.expiresAt };
  });
  if (result.created && options.audit !== undefined) {
    await options.audit.record({
      actor: 'system',
      orgId: result.orgId,
      action: 'platform.bootstrap',
      target: result.userId,
      outcome: 'success',
      details: { keyId: result.keyId },
    });
  }
  return result;
}
