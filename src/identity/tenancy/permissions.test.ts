import { describe, it, expect } from 'vitest';
import { testPrincipal } from '../../http/testing.js';
import type { OrgRole, Principal } from '../principal.js';
import {
  can,
  grantableScopes,
  mayAssignRole,
  mayRemoveMember,
  ORG_ACTIONS,
  PLATFORM_ACTIONS,
  ROLES,
  type OrgAction,
} from './permissions.js';

const ORG = 'org_AAAAAAAAAAAAAAAA';
const OTHER = 'org_BBBBBBBBBBBBBBBB';

/** The expected table, written out by hand so a change to permissions.ts must be mirrored here. */
const EXPECTED: Record<OrgAction, Record<OrgRole, boolean>> = {
  'org.read': { owner: true, admin: true, member: true, viewer: true },
  'org.delete': { owner: true, admin: false, member: false, viewer: false },
  'members.add': { owner: true, admin: true, member: false, viewer: false },
  'members.remove': { owner: true, admin: true, member: false, viewer: false },
  'members.change_role': { owner: true, admin: true, member: false, viewer: false },
  'keys.create_own': { owner: true, admin: true, member: true, viewer: false },
  'keys.create_for_others': { owner: true, admin: true, member: false, viewer: false },
  'keys.list_own': { owner: true, admin: true, member: true, viewer: true },
  'keys.list_any': { owner: true, admin: true, member: false, viewer: false },
  'keys.revoke_own': { owner: true, admin: true, member: true, viewer: true },
  'keys.revoke_any': { owner: true, admin: true, member: false, viewer: false },
  'budgets.manage': { owner: true, admin: true, member: false, viewer: false },
  'providers.manage': { owner: true, admin: true, member: false, viewer: false },
  'settings.manage': { owner: true, admin: true, member: false, viewer: false },
  'audit.read': { owner: true, admin: true, member: false, viewer: false },
  'models.use': { owner: true, admin: true, member: true, viewer: false },
  'tasks.use': { owner: true, admin: true, member: true, viewer: false },
  'capabilities.issue': { owner: true, admin: true, member: true, viewer: false },
};

function session(role: OrgRole | null, extra: Partial<Principal> = {}): Principal {
  return testPrincipal({ kind: 'session', userId: 'usr_1', orgId: ORG, role, scopes: [], ...extra });
}

describe('permission table', () => {
  it('covers every action', () => {
    expect(Object.keys(EXPECTED).sort()).toEqual([...ORG_ACTIONS].sort());
  });

  for (const action of ORG_ACTIONS) {
    for (const role of ROLES) {
      it(`${role} ${EXPECTED[action][role] ? 'may' : 'may not'} ${action}`, () => {
        expect(can(session(role), action, ORG)).toBe(EXPECTED[action][role]);
        // Never in another org, whatever the role.
        expect(can(session(role), action, OTHER)).toBe(false);
        // A platform admin flag adds nothing inside an org.
        expect(can(session(role, { platformAdmin: true }), action, ORG)).toBe(EXPECTED[action][role]);
      });
    }
  }

  it('grants nothing to a principal without a role, user, or org', () => {
    for (const action of ORG_ACTIONS) {
      expect(can(session(null), action, ORG)).toBe(false);
      expect(can(session('owner', { userId: null }), action, ORG)).toBe(false);
      expect(can(session('owner', { orgId: null }), action, ORG)).toBe(false);
    }
  });

  it('reserves platform actions for platform admins, never for org owners', () => {
    for (const action of PLATFORM_ACTIONS) {
      expect(can(session('owner'), action, null)).toBe(false);
      expect(can(session(null, { platformAdmin: true, orgId: null }), action, null)).toBe(true);
    }
  });
});

describe('scopes narrow keys', () => {
  const key = (scopes: string[], role: OrgRole = 'owner') => testPrincipal({ kind: 'api_key', userId: 'usr_1', orgId: ORG, role, scopes, keyId: 'key_1' });

  it('a key with no scopes may do nothing (only sessions and OIDC mean "role only")', () => {
    for (const action of ORG_ACTIONS) expect(can(key([]), action, ORG)).toBe(false);
    expect(can(testPrincipal({ kind: 'oidc', userId: 'u', orgId: ORG, role: 'owner', scopes: [] }), 'org.delete', ORG)).toBe(true);
  });

  it('a models-only key cannot use the admin API', () => {
    const k = key(['models']);
    expect(can(k, 'models.use', ORG)).toBe(true);
    expect(can(k, 'org.read', ORG)).toBe(false);
    expect(can(k, 'keys.create_own', ORG)).toBe(false);
  });

  it('admin implies every admin-API scope but no data-plane scope', () => {
    const k = key(['admin']);
    expect(can(k, 'org.delete', ORG)).toBe(true);
    expect(can(k, 'members.change_role', ORG)).toBe(true);
    expect(can(k, 'audit.read', ORG)).toBe(true);
    expect(can(k, 'models.use', ORG)).toBe(false);
    expect(can(k, 'tasks.use', ORG)).toBe(false);
  });

  it('scopes never lift a role: an admin-scoped key of a viewer stays a viewer', () => {
    const k = key(['admin', 'models'], 'viewer');
    expect(can(k, 'org.read', ORG)).toBe(true);
    expect(can(k, 'members.add', ORG)).toBe(false);
    expect(can(k, 'models.use', ORG)).toBe(false);
  });

  it('platform actions from a key need the admin scope', () => {
    const admin = testPrincipal({ kind: 'api_key', userId: 'u', orgId: ORG, role: 'owner', platformAdmin: true, scopes: ['keys:write'] });
    expect(can(admin, 'platform.users.create', null)).toBe(false);
    expect(can({ ...admin, scopes: ['admin'] }, 'platform.users.create', null)).toBe(true);
  });

  it('a new key cannot carry a scope its creator does not hold', () => {
    expect(grantableScopes(key(['keys:write', 'models']), ['models'])).toEqual({ ok: true, scopes: ['models'] });
    expect(grantableScopes(key(['keys:write', 'models']), ['tasks'])).toEqual({ ok: false, scope: 'tasks' });
    expect(grantableScopes(key(['keys:write']), ['admin'])).toEqual({ ok: false, scope: 'admin' });
    expect(grantableScopes(key(['admin']), ['orgs:read', 'orgs:read'])).toEqual({ ok: true, scopes: ['orgs:read'] });
    expect(grantableScopes(session('member'), ['admin', 'models'])).toEqual({ ok: true, scopes: ['admin', 'models'] });
    expect(grantableScopes(session('member'), ['root'])).toEqual({ ok: false, scope: 'root' });
  });
});

describe('role assignment', () => {
  it('nobody grants above their own role; only owners make owners', () => {
    expect(mayAssignRole('owner', null, 'owner')).toBe(true);
    expect(mayAssignRole('admin', null, 'owner')).toBe(false);
    expect(mayAssignRole('admin', 'member', 'owner')).toBe(false);
    expect(mayAssignRole('admin', 'member', 'admin')).toBe(true);
    expect(mayAssignRole('admin', 'viewer', 'member')).toBe(true);
    expect(mayAssignRole('member', 'viewer', 'member')).toBe(true); // can() refuses members first
    expect(mayAssignRole(null, null, 'viewer')).toBe(false);
  });

  it('nobody changes or removes a member ranked above them', () => {
    expect(mayAssignRole('admin', 'owner', 'viewer')).toBe(false);
    expect(mayAssignRole('owner', 'owner', 'admin')).toBe(true);
    expect(mayRemoveMember('admin', 'owner')).toBe(false);
    expect(mayRemoveMember('admin', 'admin')).toBe(true);
    expect(mayRemoveMember('owner', 'owner')).toBe(true);
  });
});
