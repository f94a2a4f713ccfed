/**
 * The one permission table of the admin API and the data plane. Every "may this principal do X in
 * org Y" question is answered by `can()` and nowhere else.
 *
 * Two layers narrow each other:
 *   1. the principal's CURRENT role in the org (owner > admin > member > viewer), and
 *   2. the scopes of the credential. A key carries explicit scopes and can never do more than they
 *      name; a session or OIDC token with an empty scope list means "whatever the role allows".
 *
 * Platform admins stand apart from org roles. They may run platform operations (create orgs and
 * users, change a user's type or disable them, rotate any user's pepper) but being a platform admin
 * gives NO access inside an organization: to read or change an org they need a membership like
 * anyone else. That keeps one org's data invisible to an operator who was never invited, and keeps
 * the cross-org rule (404, never the record) free of exceptions.
 */
import type { OrgRole, Principal } from '../principal.js';

export const ROLES = ['owner', 'admin', 'member', 'viewer'] as const satisfies readonly OrgRole[];

const ROLE_RANK: Record<OrgRole, number> = { owner: 4, admin: 3, member: 2, viewer: 1 };

export function roleRank(role: OrgRole): number {
  return ROLE_RANK[role];
}

export function roleAtLeast(role: OrgRole | null, minimum: OrgRole): boolean {
  return role !== null && ROLE_RANK[role] >= ROLE_RANK[minimum];
}

/** Scope names a key may carry. `admin` stands for every admin-API scope (not the data plane). */
export const SCOPES = [
  'admin',
  'orgs:read',
  'members:write',
  'keys:read',
  'keys:write',
  'budgets:write',
  'providers:write',
  'settings:write',
  'audit:read',
  'models',
  'tasks',
  'capabilities:issue',
  /** Service principals of platforms that run their own egress proxy (POST /api/capabilities/redeem). */
  'capabilities:redeem',
  /** Platform task workers (tasks/): honoured only on a platform admin's credential that names it. */
  'worker',
] as const;
export type Scope = (typeof SCOPES)[number];

const SCOPE_SET: ReadonlySet<string> = new Set(SCOPES);
export function isScope(value: string): value is Scope {
  return SCOPE_SET.has(value);
}

/** Scopes that `admin` implies. Data-plane scopes are never implied: a key must name them. */
const ADMIN_API_SCOPES: ReadonlySet<Scope> = new Set<Scope>([
  'orgs:read',
  'members:write',
  'keys:read',
  'keys:write',
  'budgets:write',
  'providers:write',
  'settings:write',
  'audit:read',
]);

interface OrgRule {
  minRole: OrgRole;
  scope: Scope;
}

/** Actions inside one organization: the minimum role and the scope a credential needs. */
export const ORG_PERMISSIONS = {
  'org.read': { minRole: 'viewer', scope: 'orgs:read' },
  'org.delete': { minRole: 'owner', scope: 'admin' },
  'members.add': { minRole: 'admin', scope: 'members:write' },
  'members.remove': { minRole: 'admin', scope: 'members:write' },
  'members.change_role': { minRole: 'admin', scope: 'members:write' },
  // Viewers are read-only: they cannot mint keys, but may still see and revoke keys they hold
  // from before a demotion.
  'keys.create_own': { minRole: 'member', scope: 'keys:write' },
  'keys.create_for_others': { minRole: 'admin', scope: 'keys:write' },
  'keys.list_own': { minRole: 'viewer', scope: 'keys:read' },
  'keys.list_any': { minRole: 'admin', scope: 'keys:read' },
  'keys.revoke_own': { minRole: 'viewer', scope: 'keys:write' },
  'keys.revoke_any': { minRole: 'admin', scope: 'keys:write' },
  'budgets.manage': { minRole: 'admin', scope: 'budgets:write' },
  'providers.manage': { minRole: 'admin', scope: 'providers:write' },
  'settings.manage': { minRole: 'admin', scope: 'settings:write' },
  'audit.read': { minRole: 'admin', scope: 'audit:read' },
  'models.use': { minRole: 'member', scope: 'models' },
  'tasks.use': { minRole: 'member', scope: 'tasks' },
  'capabilities.issue': { minRole: 'member', scope: 'capabilities:issue' },
} as const satisfies Record<string, OrgRule>;
export type OrgAction = keyof typeof ORG_PERMISSIONS;
export const ORG_ACTIONS = Object.keys(ORG_PERMISSIONS) as OrgAction[];

/** Platform operations: platform admins only, and a key needs the `admin` scope for them. */
export const PLATFORM_ACTIONS = [
  'platform.orgs.create',
  'platform.users.create',
  'platform.users.read',
  'platform.users.update',
  'platform.users.rotate_pepper',
] as const;
export type PlatformAction = (typeof PLATFORM_ACTIONS)[number];
export type Action = OrgAction | PlatformAction;

function isPlatformAction(action: Action): action is PlatformAction {
  return (PLATFORM_ACTIONS as readonly string[]).includes(action);
}

/** Kinds whose empty scope list means "the role decides"; every other kind needs explicit scopes. */
const ROLE_ONLY_WHEN_UNSCOPED = new Set<Principal['kind']>(['session', 'oidc']);

/** Whether the credential's scopes cover `needed`. */
export function scopesAllow(principal: Principal, needed: Scope): boolean {
  if (principal.scopes.length === 0) return ROLE_ONLY_WHEN_UNSCOPED.has(principal.kind);
  if (principal.scopes.includes(needed)) return true;
  return ADMIN_API_SCOPES.has(needed) && principal.scopes.includes('admin');
}

/**
 * May `principal` do `action` in `orgId`? `principal.role` must be the caller's CURRENT role in
 * `principal.orgId`; a principal of another org never passes an org action. Platform actions ignore
 * `orgId` (pass null).
 */
export function can(principal: Principal, action: Action, orgId: string | null): boolean {
  if (principal.userId === null) return false;
  if (isPlatformAction(action)) return principal.platformAdmin && scopesAllow(principal, 'admin');
  const rule: OrgRule = ORG_PERMISSIONS[action];
  if (orgId === null || principal.orgId !== orgId) return false;
  return roleAtLeast(principal.role, rule.minRole) && scopesAllow(principal, rule.scope);
}

/**
 * May an actor with `actorRole` put `newRole` on a member whose role is `currentRole` (null when
 * adding)? Nobody grants above their own role (so only owners make owners), and nobody changes or
 * removes a member ranked above them (so only owners demote owners). `can()` decides first whether
 * the actor manages members at all.
 */
export function mayAssignRole(actorRole: OrgRole | null, currentRole: OrgRole | null, newRole: OrgRole): boolean {
  if (actorRole === null) return false;
  if (ROLE_RANK[newRole] > ROLE_RANK[actorRole]) return false;
  return currentRole === null || ROLE_RANK[currentRole] <= ROLE_RANK[actorRole];
}

/** May an actor with `actorRole` remove a member whose role is `targetRole`? */
export function mayRemoveMember(actorRole: OrgRole | null, targetRole: OrgRole): boolean {
  return actorRole !== null && ROLE_RANK[targetRole] <= ROLE_RANK[actorRole];
}

/** Scopes a new key may carry: the requested ones, each of which the creator's own credential covers. */
export function grantableScopes(creator: Principal, requested: readonly string[]): { ok: true; scopes: Scope[] } | { ok: false; scope: string } {
  const out: Scope[] = [];
  for (const scope of requested) {
    if (!isScope(scope)) return { ok: false, scope };
    // A key may not widen its creator's own credential: `admin` only from `admin`, others if covered.
    if (!scopesAllow(creator, scope)) return { ok: false, scope };
    if (!out.includes(scope)) out.push(scope);
  }
  return { ok: true, scopes: out };
}

