/**
 * Memberships and roles. Two rules beyond the permission table live here:
 *   - nobody grants above their own role or touches a member ranked above them (mayAssignRole);
 *   - an organization always keeps an owner. The check runs inside the transaction that makes the
 *     change, after locking the org row, so every membership change of one org is serialized: two
 *     owners demoting each other at the same moment cannot both see "another owner remains".
 * Every change tells the caches (the member's keys narrow or die at once) and is audited.
 */
import type { Transaction } from 'kysely';
import { AppError } from '../../core/errors.js';
import type { Database, OrgRole } from '../../store/db/schema.js';
import type { Principal } from '../principal.js';
import { actorDetails, actorOf, OrgGate } from './access.js';
import { mayAssignRole, mayRemoveMember } from './permissions.js';
import type { TenancyDeps } from './ports.js';
import { revokeKeysInTransaction, type RevokedKey } from './revocation.js';
import { iso, type MemberView } from './views.js';

export interface AddMemberInput {
  userId?: string;
  email?: string;
  role: OrgRole;
}

/** Locks the org row (serializing its membership changes) and returns the target's current role. */
async function lockOrgAndMember(trx: Transaction<Database>, orgId: string, userId: string): Promise<OrgRole | null> {
  const org = await trx.selectFrom('orgs').select('id').where('id', '=', orgId).forUpdate().executeTakeFirst();
  if (org === undefined) throw new AppError('not_found');
  const member = await trx
    .selectFrom('memberships')
    .select('role')
    .where('org_id', '=', orgId)
    .where('user_id', '=', userId)
    .forUpdate()
    .executeTakeFirst();
  return member?.role ?? null;
}

async function assertAnotherOwnerRemains(trx: Transaction<Database>, orgId: string, userId: string): Promise<void> {
  const others = await trx
    .selectFrom('memberships')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('org_id', '=', orgId)
    .where('role', '=', 'owner')
    .where('user_id', '!=', userId)
    .executeTakeFirstOrThrow();
  if (Number(others.n) < 1) throw new AppError('last_owner');
}

export class MembershipService {
  private readonly gate: OrgGate;

  constructor(private readonly deps: TenancyDeps) {
    this.gate = new OrgGate(deps.db, deps.audit);
  }

  async list(actor: Principal, orgId: string): Promise<MemberView[]> {
    await this.gate.require(actor, orgId, 'org.read', orgId);
    const rows = await this.deps.db
      .selectFrom('memberships')
      .innerJoin('users', 'users.id', 'memberships.user_id')
      .select(['memberships.org_id', 'memberships.user_id', 'users.email', 'users.display_name', 'memberships.role', 'memberships.created_at'])
      .where('memberships.org_id', '=', orgId)
      .orderBy('memberships.created_at')
      .orderBy('memberships.user_id')
      .limit(10_000)
      .execute();
    return rows.map((r) => ({
      orgId: r.org_id,
      userId: r.user_id,
      email: r.email,
      displayName: r.display_name,
      role: r.role,
      createdAt: iso(r.created_at),
    }));
  }

  async add(actor: Principal, orgId: string, input: AddMemberInput): Promise<MemberView> {
    const inOrg = await this.gate.require(actor, orgId, 'members.add', input.userId ?? null);
    if (!mayAssignRole(inOrg.role, null, input.role)) await this.gate.deny(inOrg, orgId, 'members.add', input.userId ?? null);
    let query = this.deps.db.selectFrom('users').select(['id', 'email', 'display_name', 'disabled']);
    if (input.userId !== undefined) query = query.where('id', '=', input.userId);
    else if (input.email !== undefined) query = query.where('email', '=', input.email.trim().toLowerCase());
    else throw new AppError('validation_failed', { message: 'Name the user by userId or email.', details: { field: 'userId' } });
    const user = await query.executeTakeFirst();
    // Org admins learn whether an id/email is a user; that is what inviting needs.
    if (user === undefined) throw new AppError('not_found', { message: 'No such user.' });
    if (user.disabled) throw new AppError('conflict', { message: 'The user is disabled.' });
    const row = await this.deps.db.transaction().execute(async (trx) => {
      const current = await lockOrgAndMember(trx, orgId, user.id);
      if (current !== null) throw new AppError('conflict', { message: 'The user is already a member.' });
      return trx.insertInto('memberships').values({ org_id: orgId, user_id: user.id, role: input.role }).returningAll().executeTakeFirstOrThrow();
    });
    await this.deps.events.membershipChanged(orgId, user.id);
    await this.record(inOrg, orgId, 'member.add', user.id, { role: input.role });
    return { orgId, userId: user.id, email: user.email, displayName: user.display_name, role: row.role, createdAt: iso(row.created_at) };
  }

  async changeRole(actor: Principal, orgId: string, userId: string, role: OrgRole): Promise<{ orgId: string; userId: string; role: OrgRole }> {
    const inOrg = await this.gate.require(actor, orgId, 'members.change_role', userId);
    const previous = await this.deps.db.transaction().execute(async (trx) => {
      const current = await lockOrgAndMember(trx, orgId, userId);
      if (current === null) throw new AppError('not_found');
      if (!mayAssignRole(inOrg.role, current, role)) return { denied: true as const };
      if (current === role) return { denied: false as const, current };
      if (current === 'owner') await assertAnotherOwnerRemains(trx, orgId, userId);
      await trx.updateTable('memberships').set({ role }).where('org_id', '=', orgId).where('user_id', '=', userId).execute();
      return { denied: false as const, current };
    });
    if (previous.denied) return this.gate.deny(inOrg, orgId, 'member.role_change', userId);
    if (previous.current !== role) {
      await this.deps.events.membershipChanged(orgId, userId);
      await this.record(inOrg, orgId, 'member.role_change', userId, { from: previous.current, to: role });
    }
    return { orgId, userId, role };
  }

  /** Removes a member and revokes their keys in this org, so re-adding them revives nothing. */
  async remove(actor: Principal, orgId: string, userId: string): Promise<void> {
    const inOrg = await this.gate.require(actor, orgId, 'members.remove', userId);
    const result = await this.deps.db.transaction().execute(async (trx) => {
      const current = await lockOrgAndMember(trx, orgId, userId);
      if (current === null) throw new AppError('not_found');
      if (!mayRemoveMember(inOrg.role, current)) return { denied: true as const };
      if (current === 'owner') await assertAnotherOwnerRemains(trx, orgId, userId);
      const keys = await trx
        .selectFrom('api_keys')
        .select(['id', 'expires_at'])
        .where('org_id', '=', orgId)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .execute();
      const revoked: RevokedKey[] = keys.map((k) => ({ id: k.id, expiresAt: k.expires_at }));
      await revokeKeysInTransaction(trx, revoked, new Date(this.deps.clock.now()));
      await trx.deleteFrom('memberships').where('org_id', '=', orgId).where('user_id', '=', userId).execute();
      return { denied: false as const, role: current, revoked };
    });
    if (result.denied) return this.gate.deny(inOrg, orgId, 'member.remove', userId);
    await this.deps.events.membershipChanged(orgId, userId);
    for (const key of result.revoked) await this.deps.events.revokeKey(key.id, key.expiresAt);
    await this.record(inOrg, orgId, 'member.remove', userId, { role: result.role, keysRevoked: result.revoked.length });
  }

  private async record(actor: Principal, orgId: string, action: string, target: string, details: Record<string, string | number>): Promise<void> {
    await this.deps.audit.record({
      actor: actorOf(actor),
      orgId,
      action,
      target,
      outcome: 'success',
      details: { ...actorDetails(actor), ...details },
    });
  }
}
