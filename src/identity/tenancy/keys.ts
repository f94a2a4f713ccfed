/**
 * API key lifecycle. A key's database row holds its id and metadata only; the signed token is
 * returned once, to the caller of create, and exists nowhere else. A key never does more than its
 * holder may do now: at use the verifier narrows it to the holder's CURRENT role (membership
 * events), and at creation its scopes may not exceed the creator's own credential.
 */
import type { Transaction } from 'kysely';
import { AppError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { Database } from '../../store/db/schema.js';
import type { Principal } from '../principal.js';
import { actorDetails, actorOf, OrgGate } from './access.js';
import { can, grantableScopes } from './permissions.js';
import type { TenancyDeps } from './ports.js';
import { revokeKeysInTransaction } from './revocation.js';
import { keyView, type KeyView } from './views.js';

/** What a key may do when its creator names no scopes: use the data plane, nothing administrative. */
export const DEFAULT_KEY_SCOPES = ['models', 'tasks'];

export interface CreateKeyInput {
  name: string;
  /** DEFAULT_KEY_SCOPES when absent. */
  scopes?: string[];
  /** Lifetime; the signer's default when absent, refused above its configured maximum. */
  ttlSeconds?: number;
  /** Alternative to ttlSeconds, for people. */
  ttlDays?: number;
  /** Holder of the key; the caller when absent. Naming someone else needs keys.create_for_others. */
  userId?: string;
}

export interface CreatedKey {
  key: KeyView;
  /** Shown once. Never stored, logged or audited. */
  token: string;
}

export interface ListKeysOptions {
  /** Only this holder's keys. Someone else's needs keys.list_any. */
  userId?: string;
  includeRevoked?: boolean;
}

export class KeyService {
  private readonly gate: OrgGate;

  constructor(private readonly deps: TenancyDeps) {
    this.gate = new OrgGate(deps.db, deps.audit);
  }

  async create(actor: Principal, orgId: string, input: CreateKeyInput): Promise<CreatedKey> {
    const holder = input.userId ?? actor.userId;
    if (holder === null) throw new AppError('forbidden');
    const action = holder === actor.userId ? 'keys.create_own' : 'keys.create_for_others';
    const inOrg = await this.gate.require(actor, orgId, action, holder);
    const scopes = grantableScopes(inOrg, input.scopes ?? DEFAULT_KEY_SCOPES);
    if (!scopes.ok) {
      // The creator's own credential does not cover a requested scope (or it is unknown).
      return this.gate.deny(inOrg, orgId, 'key.create', holder);
    }
    const created = await this.deps.db.transaction().execute((trx) =>
      this.insertAndSign(trx, { orgId, holder, createdBy: actorOf(actor), name: input.name, scopes: scopes.scopes, ttlSeconds: input.ttlSeconds ?? (input.ttlDays === undefined ? undefined : input.ttlDays * 86_400) }),
    );
    await this.deps.audit.record({
      actor: actorOf(actor),
      orgId,
      action: 'key.create',
      target: created.key.id,
      outcome: 'success',
      details: { ...actorDetails(actor), holder, scopes: scopes.scopes.join(' '), expiresAt: created.key.expiresAt },
    });
    return created;
  }

  /**
   * Inserts the row and signs the token in one transaction: if signing fails (e.g. a lifetime over
   * the maximum) no orphan row is left, and the row's expiry is exactly the token's.
   */
  async insertAndSign(
    trx: Transaction<Database>,
    input: { orgId: string; holder: string; createdBy: string; name: string; scopes: string[]; ttlSeconds: number | undefined },
  ): Promise<CreatedKey> {
    const user = await trx.selectFrom('users').select(['pepper', 'disabled']).where('id', '=', input.holder).executeTakeFirst();
    const member = await trx
      .selectFrom('memberships')
      .select('role')
      .where('org_id', '=', input.orgId)
      .where('user_id', '=', input.holder)
      .executeTakeFirst();
    if (user === undefined || member === undefined) throw new AppError('not_found', { message: 'The key holder is not a member of this organization.' });
    if (user.disabled) throw new AppError('conflict', { message: 'The key holder is disabled.' });
    const keyId = newId('key');
    const signed = await this.deps.signer.sign({
      keyId,
      userId: input.holder,
      orgId: input.orgId,
      scopes: input.scopes,
      pepper: user.pepper,
      ...(input.ttlSeconds === undefined ? {} : { ttlMs: input.ttlSeconds * 1000 }),
    });
    const row = await trx
      .insertInto('api_keys')
      .values({
        id: keyId,
        org_id: input.orgId,
        user_id: input.holder,
        name: input.name,
        scopes: JSON.stringify(input.scopes),
        created_at: new Date(this.deps.clock.now()),
        expires_at: signed.expiresAt,
        revoked_at: null,
        created_by: input.createdBy,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return { key: keyView(row), token: signed.token };
  }

  async list(actor: Principal, orgId: string, options: ListKeysOptions = {}): Promise<KeyView[]> {
    const inOrg = await this.gate.member(actor, orgId);
    const seesAll = can(inOrg, 'keys.list_any', orgId);
    const ownOnly = !seesAll;
    if (ownOnly && !can(inOrg, 'keys.list_own', orgId)) await this.gate.deny(inOrg, orgId, 'keys.list', null);
    if (ownOnly && options.userId !== undefined && options.userId !== inOrg.userId) await this.gate.deny(inOrg, orgId, 'keys.list', options.userId);
    const holder = ownOnly ? inOrg.userId : options.userId;
    let query = this.deps.db.selectFrom('api_keys').selectAll().where('org_id', '=', orgId);
    if (holder !== undefined && holder !== null) query = query.where('user_id', '=', holder);
    if (options.includeRevoked !== true) query = query.where('revoked_at', 'is', null);
    const rows = await query.orderBy('created_at').orderBy('id').limit(10_000).execute();
    return rows.map(keyView);
  }

  async revoke(actor: Principal, orgId: string, keyId: string): Promise<KeyView> {
    const inOrg = await this.gate.member(actor, orgId);
    const existing = await this.deps.db.selectFrom('api_keys').selectAll().where('id', '=', keyId).where('org_id', '=', orgId).executeTakeFirst();
    if (existing === undefined) throw new AppError('not_found');
    const action = existing.user_id === inOrg.userId ? 'keys.revoke_own' : 'keys.revoke_any';
    if (!can(inOrg, action, orgId)) await this.gate.deny(inOrg, orgId, 'key.revoke', keyId);
    if (existing.revoked_at !== null) return keyView(existing);
    await this.deps.db.transaction().execute((trx) =>
      revokeKeysInTransaction(trx, [{ id: keyId, expiresAt: existing.expires_at }], new Date(this.deps.clock.now())),
    );
    await this.deps.events.revokeKey(keyId, existing.expires_at);
    await this.deps.audit.record({
      actor: actorOf(actor),
      orgId,
      action: 'key.revoke',
      target: keyId,
      outcome: 'success',
      details: { ...actorDetails(actor), holder: existing.user_id },
    });
    const row = await this.deps.db.selectFrom('api_keys').selectAll().where('id', '=', keyId).executeTakeFirstOrThrow();
    return keyView(row);
  }
}
