/**
 * Turning "principal P asks about org O" into either the principal as it stands in O, or nothing.
 *
 * Keys, OIDC tokens and capabilities are bound to one org: they see that org and no other (one
 * exception, see spansOrgs). A session belongs to a person who may be in several orgs, so their role in O is read from
 * the memberships table (the admin API is off the hot path; reading it is fine and always current).
 * "Nothing" becomes a 404 at the edge, whether O does not exist or P is simply not in it, so the
 * answer never reveals another organization's records or even its existence.
 */
import { AppError } from '../../core/errors.js';
import type { AuditSink } from '../../audit/sink.js';
import type { Db } from '../../store/db/schema.js';
import type { Principal } from '../principal.js';
import { can, type OrgAction, type PlatformAction } from './permissions.js';

/**
 * Principals whose org is looked up per request rather than fixed by the credential: sessions, and a
 * platform admin's `admin`-scoped key. The latter is what lets an operator with only a CLI token
 * work in the orgs they create; it still needs a membership there (no membership, no access), and
 * it adds no power, since a platform admin can create an org they own at any time anyway.
 */
export function spansOrgs(principal: Principal): boolean {
  return principal.kind === 'session' || (principal.kind === 'api_key' && principal.platformAdmin && principal.scopes.includes('admin'));
}

export async function principalInOrg(db: Db, principal: Principal, orgId: string): Promise<Principal | null> {
  if (principal.userId === null) return null;
  if (!spansOrgs(principal)) {
    return principal.orgId === orgId && principal.role !== null ? principal : null;
  }
  const row = await db
    .selectFrom('memberships')
    .select('role')
    .where('org_id', '=', orgId)
    .where('user_id', '=', principal.userId)
    .executeTakeFirst();
  return row === undefined ? null : { ...principal, orgId, role: row.role };
}

/** Audit actor string: the user, since keys act for their user; the key id goes in details. */
export function actorOf(principal: Principal): string {
  return principal.userId ?? principal.id;
}

export function actorDetails(principal: Principal): Record<string, string> {
  return principal.keyId === undefined ? { via: principal.kind } : { via: principal.kind, keyId: principal.keyId };
}

export class OrgGate {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditSink,
  ) {}

  /** The principal as a member of orgId, or 404. Use for routes where any member may ask. */
  async member(principal: Principal, orgId: string): Promise<Principal> {
    const inOrg = await principalInOrg(this.db, principal, orgId);
    if (inOrg === null) throw new AppError('not_found');
    return inOrg;
  }

  /** 404 for a non-member, 403 (audited as denied) for a member whose role or scopes fall short. */
  async require(principal: Principal, orgId: string, action: OrgAction, target: string | null = null): Promise<Principal> {
    const inOrg = await this.member(principal, orgId);
    if (!can(inOrg, action, orgId)) await this.deny(inOrg, orgId, action, target);
    return inOrg;
  }

  /** Records a denial and throws 403. */
  async deny(principal: Principal, orgId: string | null, action: string, target: string | null): Promise<never> {
    await this.audit.record({
      actor: actorOf(principal),
      orgId,
      action,
      target,
      outcome: 'denied',
      details: actorDetails(principal),
    });
    throw new AppError('forbidden');
  }

  async requirePlatform(principal: Principal, action: PlatformAction, target: string | null = null): Promise<void> {
    if (!can(principal, action, null)) await this.deny(principal, null, action, target);
  }
}
