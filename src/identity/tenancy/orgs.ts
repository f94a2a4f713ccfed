/**
 * Organizations: created by a platform admin with an owner (the creator unless another user is
 * named), read and listed by members only, deleted by an owner. Deleting cascades memberships and
 * keys in the database; every member's caches are told, and every live key is put on the deny-list
 * so no replica keeps accepting it until its cache entry ages out.
 */
import { AppError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import { isUniqueViolation } from '../../store/db/errors.js';
import { randomBase64Url } from '../../core/crypto.js';
import type { OrgRole } from '../../store/db/schema.js';
import type { Principal } from '../principal.js';
import { actorDetails, actorOf, OrgGate, spansOrgs } from './access.js';
import { revokeKeysInTransaction } from './revocation.js';
import { can } from './permissions.js';
import type { TenancyDeps } from './ports.js';
import { orgView, type OrgView } from './views.js';

export interface CreateOrgInput {
  name: string;
  /** Derived from the name when absent (lowercase, dashes, short random suffix). */
  slug?: string;
  /** Defaults to the creating platform admin. */
  ownerUserId?: string;
}

/** A readable, very likely unique slug: the name's letters and digits plus 6 random characters. */
export function slugFrom(name: string): string {
  const base = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 50);
  const suffix = randomBase64Url(6).toLowerCase().replace(/[^a-z0-9]/g, '0').slice(0, 6);
  return base.length > 0 ? `${base}-${suffix}` : `org-${suffix}`;
}

export class OrgService {
  private readonly gate: OrgGate;

  constructor(private readonly deps: TenancyDeps) {
    this.gate = new OrgGate(deps.db, deps.audit);
  }

  async create(actor: Principal, input: CreateOrgInput): Promise<OrgView> {
    await this.gate.requirePlatform(actor, 'platform.orgs.create', input.slug ?? null);
    const slug = input.slug ?? slugFrom(input.name);
    const ownerId = input.ownerUserId ?? actor.userId;
    if (ownerId === null) throw new AppError('forbidden');
    const id = newId('org');
    const row = await this.deps.db
      .transaction()
      .execute(async (trx) => {
        const owner = await trx.selectFrom('users').select(['id', 'disabled']).where('id', '=', ownerId).executeTakeFirst();
        if (owner === undefined || owner.disabled) {
          throw new AppError('validation_failed', { message: 'The owner must be an existing, enabled user.', details: { field: 'ownerUserId' } });
        }
        const org = await trx
          .insertInto('orgs')
          .values({ id, name: input.name, slug })
          .returningAll()
          .executeTakeFirstOrThrow();
        await trx.insertInto('memberships').values({ org_id: id, user_id: ownerId, role: 'owner' }).execute();
        return org;
      })
      .catch((err: unknown) => {
        if (isUniqueViolation(err)) throw new AppError('conflict', { message: 'An organization with this slug already exists.' });
        throw err;
      });
    await this.deps.events.membershipChanged(id, ownerId);
    await this.deps.audit.record({
      actor: actorOf(actor),
      orgId: id,
      action: 'org.create',
      target: id,
      outcome: 'success',
      details: { ...actorDetails(actor), slug, owner: ownerId },
    });
    return orgView(row);
  }

  async get(actor: Principal, orgId: string): Promise<OrgView> {
    await this.gate.require(actor, orgId, 'org.read', orgId);
    const row = await this.deps.db.selectFrom('orgs').selectAll().where('id', '=', orgId).executeTakeFirst();
    if (row === undefined) throw new AppError('not_found');
    return orgView(row);
  }

  /** Orgs the principal may read: a session's memberships, or a bound credential's one org. */
  async listFor(actor: Principal): Promise<Array<OrgView & { role: OrgRole }>> {
    if (actor.userId === null) return [];
    const rows = await this.deps.db
      .selectFrom('orgs')
      .innerJoin('memberships', 'memberships.org_id', 'orgs.id')
      .select(['orgs.id', 'orgs.name', 'orgs.slug', 'orgs.created_at', 'memberships.role'])
      .where('memberships.user_id', '=', actor.userId)
      .orderBy('orgs.created_at')
      .orderBy('orgs.id')
      .limit(1000)
      .execute();
    const visible: Array<OrgView & { role: OrgRole }> = [];
    for (const row of rows) {
      // Same rule as principalInOrg, without a query per org: sessions take the membership's role,
      // bound credentials only ever see their own org.
      const inOrg: Principal | null =
        spansOrgs(actor) ? { ...actor, orgId: row.id, role: row.role } : actor.orgId === row.id ? actor : null;
      if (inOrg?.role != null && can(inOrg, 'org.read', row.id)) visible.push({ ...orgView(row), role: inOrg.role });
    }
    return visible;
  }

  async delete(actor: Principal, orgId: string): Promise<void> {
    await this.gate.require(actor, orgId, 'org.delete', orgId);
    const { members, keys } = await this.deps.db.transaction().execute(async (trx) => {
      const org = await trx.selectFrom('orgs').select('id').where('id', '=', orgId).forUpdate().executeTakeFirst();
      if (org === undefined) throw new AppError('not_found');
      const memberRows = await trx.selectFrom('memberships').select('user_id').where('org_id', '=', orgId).execute();
      const liveKeys = await trx
        .selectFrom('api_keys')
        .select(['id', 'expires_at'])
        .where('org_id', '=', orgId)
        .where('revoked_at', 'is', null)
        .execute();
      await revokeKeysInTransaction(
        trx,
        liveKeys.map((k) => ({ id: k.id, expiresAt: k.expires_at })),
        new Date(this.deps.clock.now()),
      );
      await trx.deleteFrom('orgs').where('id', '=', orgId).execute();
      return { members: memberRows.map((m) => m.user_id), keys: liveKeys };
    });
    for (const key of keys) await this.deps.events.revokeKey(key.id, key.expires_at);
    for (const userId of members) await this.deps.events.membershipChanged(orgId, userId);
    await this.deps.audit.record({
      actor: actorOf(actor),
      orgId,
      action: 'org.delete',
      target: orgId,
      outcome: 'success',
      details: { ...actorDetails(actor), members: members.length, keysRevoked: keys.length },
    });
  }
}
