import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { AppError } from '../../core/errors.js';
import type { Principal } from '../principal.js';
import { bootstrapPlatformAdmin } from './bootstrap.js';
import { KeyService } from './keys.js';
import { MembershipService } from './memberships.js';
import { OrgService } from './orgs.js';
import { can } from './permissions.js';
import { RuntimeKeyService } from './runtimes.js';
import { openTenancyHarness, seedOrg, seedUser, type TenancyHarness } from './test-support.js';
import { UserService } from './users.js';

let h: TenancyHarness;
let orgs: OrgService;
let users: UserService;
let members: MembershipService;
let keys: KeyService;
let runtimes: RuntimeKeyService;

beforeAll(async () => {
  h = await openTenancyHarness();
  orgs = new OrgService(h.deps);
  users = new UserService(h.deps);
  members = new MembershipService(h.deps);
  keys = new KeyService(h.deps);
  runtimes = new RuntimeKeyService(h.deps, keys);
});

afterAll(async () => {
  await h.close();
});

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
}

async function principalOf(token: string): Promise<Principal | string> {
  const result = await h.authenticate(token);
  if (!result.ok) return result.code;
  if (result.principal === null) return 'null';
  return result.principal;
}

describe('organizations', () => {
  it('a platform admin creates an org and becomes its owner; others cannot', async () => {
    const admin = await seedUser(h, 'pa@example.test', { platformAdmin: true });
    const plain = await seedUser(h, 'plain@example.test');
    const org = await orgs.create(admin, { name: 'Acme', slug: 'acme' });
    expect(await members.list(admin, org.id)).toMatchObject([{ userId: admin.userId, role: 'owner' }]);
    expect(await codeOf(orgs.create(plain, { name: 'X', slug: 'x' }))).toBe('forbidden');
    expect(await codeOf(orgs.create(admin, { name: 'Acme 2', slug: 'acme' }))).toBe('conflict');
    expect(h.audit.events.some((e) => e.action === 'org.create' && e.orgId === org.id && e.outcome === 'success')).toBe(true);
    expect(h.audit.events.some((e) => e.action === 'platform.orgs.create' && e.outcome === 'denied')).toBe(true);
  });

  it('lists only the orgs the principal belongs to, and a non-member gets not_found', async () => {
    const a = await seedUser(h, 'list-a@example.test');
    const b = await seedUser(h, 'list-b@example.test');
    const orgA = await seedOrg(h, [[a, 'viewer']]);
    const orgB = await seedOrg(h, [[b, 'owner']]);
    expect((await orgs.listFor(a)).map((o) => o.id)).toEqual([orgA]);
    expect(await codeOf(orgs.get(a, orgB))).toBe('not_found');
    expect(await codeOf(orgs.get(a, 'org_doesnotexist0000'))).toBe('not_found');
    expect(await codeOf(orgs.delete(a, orgA))).toBe('forbidden');
  });

  it('an owner deletes the org; its keys are deny-listed everywhere', async () => {
    const owner = await seedUser(h, 'del-owner@example.test');
    const orgId = await seedOrg(h, [[owner, 'owner']]);
    const created = await keys.create(owner, orgId, { name: 'k', scopes: ['models'] });
    expect(typeof (await principalOf(created.token))).toBe('object');
    await orgs.delete(owner, orgId);
    expect(await principalOf(created.token)).toBe('token_revoked');
    expect(await codeOf(orgs.get(owner, orgId))).toBe('not_found');
  });
});

describe('last owner', () => {
  it('the only owner cannot be demoted or removed', async () => {
    const owner = await seedUser(h, 'solo@example.test');
    const orgId = await seedOrg(h, [[owner, 'owner']]);
    expect(await codeOf(members.changeRole(owner, orgId, owner.userId!, 'admin'))).toBe('last_owner');
    expect(await codeOf(members.remove(owner, orgId, owner.userId!))).toBe('last_owner');
    expect((await members.list(owner, orgId))[0]?.role).toBe('owner');
  });

  it('two owners demoting each other at once: exactly one succeeds', async () => {
    for (let round = 0; round < 5; round++) {
      const a = await seedUser(h, `race-a${round}@example.test`);
      const b = await seedUser(h, `race-b${round}@example.test`);
      const orgId = await seedOrg(h, [[a, 'owner'], [b, 'owner']]);
      const results = await Promise.all([
        codeOf(members.changeRole(a, orgId, b.userId!, 'admin')),
        codeOf(members.changeRole(b, orgId, a.userId!, 'member')),
        codeOf(members.remove(a, orgId, a.userId!)),
      ]);
      expect(results.filter((r) => r === 'ok')).toHaveLength(1);
      const owners = (await h.store.db.selectFrom('memberships').select('user_id').where('org_id', '=', orgId).where('role', '=', 'owner').execute()).length;
      expect(owners).toBe(1);
    }
  });
});

describe('roles cannot be escalated', () => {
  it('an admin cannot make owners, touch owners, or promote themselves', async () => {
    const owner = await seedUser(h, 'esc-owner@example.test');
    const admin = await seedUser(h, 'esc-admin@example.test');
    const member = await seedUser(h, 'esc-member@example.test');
    const outsider = await seedUser(h, 'esc-out@example.test');
    const orgId = await seedOrg(h, [[owner, 'owner'], [admin, 'admin'], [member, 'member']]);
    expect(await codeOf(members.changeRole(admin, orgId, member.userId!, 'owner'))).toBe('forbidden');
    expect(await codeOf(members.changeRole(admin, orgId, admin.userId!, 'owner'))).toBe('forbidden');
    expect(await codeOf(members.changeRole(admin, orgId, owner.userId!, 'viewer'))).toBe('forbidden');
    expect(await codeOf(members.remove(admin, orgId, owner.userId!))).toBe('forbidden');
    expect(await codeOf(members.add(admin, orgId, { userId: outsider.userId!, role: 'owner' }))).toBe('forbidden');
    expect(await codeOf(members.changeRole(member, orgId, member.userId!, 'admin'))).toBe('forbidden');
    // Allowed within rank:
    expect(await codeOf(members.changeRole(admin, orgId, member.userId!, 'admin'))).toBe('ok');
    expect(await codeOf(members.add(admin, orgId, { email: 'ESC-OUT@example.test', role: 'viewer' }))).toBe('ok');
    expect(await codeOf(members.add(admin, orgId, { userId: outsider.userId!, role: 'viewer' }))).toBe('conflict');
    expect(await codeOf(members.changeRole(owner, orgId, admin.userId!, 'owner'))).toBe('ok');
    expect(h.audit.events.filter((e) => e.outcome === 'denied' && e.orgId === orgId).length).toBeGreaterThanOrEqual(6);
  });

  it('a key cannot carry scopes its creator lacks', async () => {
    const owner = await seedUser(h, 'scope-owner@example.test');
    const orgId = await seedOrg(h, [[owner, 'owner']]);
    const narrow = await keys.create(owner, orgId, { name: 'narrow', scopes: ['keys:write', 'models'] });
    const asKey = await principalOf(narrow.token);
    if (typeof asKey === 'string') throw new Error(asKey);
    expect(await codeOf(keys.create(asKey, orgId, { name: 'wider', scopes: ['admin'] }))).toBe('forbidden');
    expect(await codeOf(keys.create(asKey, orgId, { name: 'same', scopes: ['models'] }))).toBe('ok');
  });
});

describe('keys', () => {
  it('shows the token once and stores only id and metadata', async () => {
    const owner = await seedUser(h, 'once@example.test');
    const orgId = await seedOrg(h, [[owner, 'owner']]);
    const created = await keys.create(owner, orgId, { name: 'ci', scopes: ['models', 'tasks'], ttlSeconds: 3600 });
    expect(created.token.startsWith('pck_')).toBe(true);
    expect(created.key).toMatchObject({ name: 'ci', scopes: ['models', 'tasks'], orgId, userId: owner.userId, revokedAt: null });
    const listed = await keys.list(owner, orgId);
    expect(JSON.stringify(listed)).not.toContain(created.token);
    const signature = created.token.split('.')[2]!;
    const payload = created.token.split('.')[1]!;
    const tables = ['orgs', 'users', 'memberships', 'api_keys', 'mfa', 'sessions', 'settings', 'revocations', 'runtime_instances', 'audit_log', 'audit_checkpoints'];
    for (const table of tables) {
      const rows = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(table)}`.execute(h.store.db);
      const dump = JSON.stringify(rows.rows);
      expect(dump).not.toContain(created.token);
      expect(dump).not.toContain(signature);
      expect(dump).not.toContain(payload);
    }
    expect(JSON.stringify(h.audit.events)).not.toContain(signature);
  });

  it('demotion narrows a key at once, removal kills it', async () => {
    const owner = await seedUser(h, 'narrow-owner@example.test');
    const dev = await seedUser(h, 'narrow-dev@example.test');
    const orgId = await seedOrg(h, [[owner, 'owner'], [dev, 'admin']]);
    const { token } = await keys.create(dev, orgId, { name: 'dev', scopes: ['admin', 'models'] });
    const before = await principalOf(token);
    if (typeof before === 'string') throw new Error(before);
    expect(before.role).toBe('admin');
    expect(can(before, 'members.add', orgId)).toBe(true);
    expect(can(before, 'models.use', orgId)).toBe(true);

    await members.changeRole(owner, orgId, dev.userId!, 'viewer');
    const after = await principalOf(token);
    if (typeof after === 'string') throw new Error(after);
    expect(after.role).toBe('viewer');
    expect(can(after, 'members.add', orgId)).toBe(false);
    expect(can(after, 'models.use', orgId)).toBe(false);
    expect(can(after, 'org.read', orgId)).toBe(true);

    await members.remove(owner, orgId, dev.userId!);
    expect(await principalOf(token)).toBe('token_revoked');
    // Re-adding revives nothing: the key was revoked with the membership.
    await members.add(owner, orgId, { userId: dev.userId!, role: 'admin' });
    expect(await principalOf(token)).toBe('token_revoked');
  });

  it('revoking one key kills only that key; listing respects own/any', async () => {
    const owner = await seedUser(h, 'rev-owner@example.test');
    const member = await seedUser(h, 'rev-member@example.test');
    const viewer = await seedUser(h, 'rev-viewer@example.test');
    const orgId = await seedOrg(h, [[owner, 'owner'], [member, 'member'], [viewer, 'viewer']]);
    const k1 = await keys.create(member, orgId, { name: 'one', scopes: ['models'] });
    const k2 = await keys.create(member, orgId, { name: 'two', scopes: ['models'] });
    const ownerKey = await keys.create(owner, orgId, { name: 'o', scopes: ['models'] });
    expect(await codeOf(keys.create(viewer, orgId, { name: 'v', scopes: ['orgs:read'] }))).toBe('forbidden');
    expect(await codeOf(keys.create(member, orgId, { name: 'for-viewer', scopes: ['orgs:read'], userId: viewer.userId! }))).toBe('forbidden');
    expect(await codeOf(keys.create(owner, orgId, { name: 'for-viewer', scopes: ['orgs:read'], userId: viewer.userId! }))).toBe('ok');

    expect((await keys.list(member, orgId)).map((k) => k.name).sort()).toEqual(['one', 'two']);
    expect(await codeOf(keys.list(member, orgId, { userId: owner.userId! }))).toBe('forbidden');
    expect((await keys.list(owner, orgId)).length).toBe(4);
    expect(await codeOf(keys.revoke(member, orgId, ownerKey.key.id))).toBe('forbidden');

    const revoked = await keys.revoke(member, orgId, k1.key.id);
    expect(revoked.revokedAt).not.toBeNull();
    expect(await principalOf(k1.token)).toBe('token_revoked');
    expect(typeof (await principalOf(k2.token))).toBe('object');
    expect((await keys.revoke(member, orgId, k1.key.id)).id).toBe(k1.key.id); // idempotent
    expect((await keys.list(member, orgId)).map((k) => k.name)).toEqual(['two']);
    expect((await keys.list(member, orgId, { includeRevoked: true })).length).toBe(2);
    const otherOrg = await seedOrg(h, [[member, 'owner']]);
    expect(await codeOf(keys.revoke(member, otherOrg, k2.key.id))).toBe('not_found');
  });

  it('rotating the pepper kills all of a user\'s keys; self-rotation needs keys:write', async () => {
    const pa = await seedUser(h, 'rot-pa@example.test', { platformAdmin: true });
    const user = await seedUser(h, 'rot-user@example.test');
    const stranger = await seedUser(h, 'rot-stranger@example.test');
    const orgId = await seedOrg(h, [[user, 'member']]);
    const a = await keys.create(user, orgId, { name: 'a', scopes: ['models'] });
    const b = await keys.create(user, orgId, { name: 'b', scopes: ['models', 'keys:write'] });
    const asA = await principalOf(a.token);
    if (typeof asA === 'string') throw new Error(asA);
    expect(await codeOf(users.rotatePepper(asA, user.userId!))).toBe('forbidden');
    expect(await codeOf(users.rotatePepper(stranger, user.userId!))).toBe('not_found');
    expect(await users.rotatePepper(pa, user.userId!)).toEqual({ keysRevoked: 2 });
    expect(await principalOf(a.token)).toBe('token_revoked');
    expect(await principalOf(b.token)).toBe('token_revoked');
    // New keys work with the new pepper.
    const c = await keys.create(user, orgId, { name: 'c', scopes: ['models'] });
    expect(typeof (await principalOf(c.token))).toBe('object');
  });
});

describe('users', () => {
  it('platform admins create and update users; others see 404 or 403', async () => {
    const pa = await seedUser(h, 'users-pa@example.test', { platformAdmin: true });
    const plain = await seedUser(h, 'users-plain@example.test');
    const created = await users.create(pa, { email: 'New.User@Example.test', userType: 'paid' });
    expect(created).toMatchObject({ email: 'new.user@example.test', userType: 'paid', platformAdmin: false, disabled: false });
    expect(JSON.stringify(created)).not.toMatch(/pepper/);
    expect(await codeOf(users.create(plain, { email: 'x@example.test' }))).toBe('forbidden');
    expect(await codeOf(users.create(pa, { email: 'new.user@example.test' }))).toBe('conflict');
    expect(await codeOf(users.get(plain, created.id))).toBe('not_found');
    expect((await users.get(plain, plain.userId!)).email).toBe('users-plain@example.test');
    expect(await codeOf(users.update(plain, created.id, { disabled: true }))).toBe('not_found');
    expect(await codeOf(users.update(plain, plain.userId!, { userType: 'privileged' }))).toBe('forbidden');
    expect(await codeOf(users.update(pa, pa.userId!, { disabled: true }))).toBe('conflict');
    expect((await users.update(pa, created.id, { userType: 'privileged', disabled: true })).disabled).toBe(true);
  });

  it('sets an initial password through the injected setter, and undoes the user when it is refused', async () => {
    const pa = await seedUser(h, 'pw-pa@example.test', { platformAdmin: true });
    const seen: string[] = [];
    const withSetter = new UserService({
      ...h.deps,
      setPassword: async (userId, password) => {
        seen.push(userId);
        return password.length >= 12 ? { ok: true } : { ok: false, reason: 'The password must be at least 12 characters long.' };
      },
    });
    const good = await withSetter.create(pa, { email: 'pw-good@example.test', password: 'long enough password' });
    expect(seen).toEqual([good.id]);
    expect(await codeOf(withSetter.create(pa, { email: 'pw-bad@example.test', password: 'short' }))).toBe('validation_failed');
    expect(await h.store.db.selectFrom('users').select('id').where('email', '=', 'pw-bad@example.test').executeTakeFirst()).toBeUndefined();
    expect(JSON.stringify(h.audit.events)).not.toContain('long enough password');
  });

  it('disabling a user kills their keys at once', async () => {
    const pa = await seedUser(h, 'dis-pa@example.test', { platformAdmin: true });
    const user = await seedUser(h, 'dis-user@example.test');
    const orgId = await seedOrg(h, [[user, 'member']]);
    const { token } = await keys.create(user, orgId, { name: 'k', scopes: ['models'] });
    expect(typeof (await principalOf(token))).toBe('object');
    await users.update(pa, user.userId!, { disabled: true });
    expect(await principalOf(token)).toBe('token_revoked');
  });

  it('/me shows a key only its own org', async () => {
    const user = await seedUser(h, 'me@example.test');
    const orgA = await seedOrg(h, [[user, 'member']]);
    const orgB = await seedOrg(h, [[user, 'admin']]);
    expect((await users.me(user)).memberships.map((m) => m.orgId).sort()).toEqual([orgA, orgB].sort());
    const { token } = await keys.create(user, orgA, { name: 'k', scopes: ['models'] });
    const asKey = await principalOf(token);
    if (typeof asKey === 'string') throw new Error(asKey);
    const me = await users.me(asKey);
    expect(me.memberships).toEqual([{ orgId: orgA, role: 'member' }]);
    expect(me.principal).toMatchObject({ kind: 'api_key', orgId: orgA, role: 'member', scopes: ['models'] });
  });
});

describe('runtime credentials (server side)', () => {
  it('mints a fresh working key per call and keeps only key id and expiry', async () => {
    const owner = await seedUser(h, 'rt-owner@example.test');
    const member = await seedUser(h, 'rt-member@example.test');
    const orgId = await seedOrg(h, [[owner, 'owner'], [member, 'member']]);
    const first = await runtimes.mint(owner, orgId, 'agent-1', {});
    const second = await runtimes.mint(owner, orgId, 'agent-1', { scopes: ['models'] });
    expect(second.key.id).not.toBe(first.key.id);
    expect(second.key.scopes).toEqual(['models']);
    expect(first.key.scopes).toEqual(['models', 'tasks']);
    const row = await h.store.db.selectFrom('runtime_instances').selectAll().where('id', '=', `${orgId}/agent-1`).executeTakeFirstOrThrow();
    expect(row.key_id).toBe(second.key.id);
    expect(row.key_expires_at?.toISOString()).toBe(second.key.expiresAt);
    expect(typeof (await principalOf(second.token))).toBe('object');
    // The previous key stays valid (a deployer may have fallen back to it).
    expect(typeof (await principalOf(first.token))).toBe('object');
    // A member cannot mint for an instance owned by someone else.
    expect(await codeOf(runtimes.mint(member, orgId, 'agent-1', {}))).toBe('forbidden');
    expect(await codeOf(runtimes.mint(member, orgId, 'agent-2', {}))).toBe('ok');
    const outsider = await seedUser(h, 'rt-out@example.test');
    expect(await codeOf(runtimes.mint(outsider, orgId, 'agent-1', {}))).toBe('not_found');
  });
});

describe('bootstrap', () => {
  it('creates the first platform admin exactly once under concurrent starts', async () => {
    const fresh = await openTenancyHarness();
    try {
      const results = await Promise.all([1, 2, 3].map(() => bootstrapPlatformAdmin(fresh.store.db, fresh.deps.signer, { email: 'root@example.test', audit: fresh.audit })));
      const created = results.filter((r) => r.created);
      expect(created).toHaveLength(1);
      const first = created[0];
      if (first === undefined || !first.created) throw new Error('no bootstrap');
      const result = await fresh.authenticate(first.token);
      expect(result.ok && result.principal).toMatchObject({ platformAdmin: true, role: 'owner', orgId: first.orgId, userId: first.userId });
      expect(await bootstrapPlatformAdmin(fresh.store.db, fresh.deps.signer)).toEqual({ created: false });
      expect(fresh.audit.events.filter((e) => e.action === 'platform.bootstrap')).toHaveLength(1);
      const keyRows = await fresh.store.db.selectFrom('api_keys').selectAll().execute();
      expect(JSON.stringify(keyRows)).not.toContain(first.token.split('.')[2]);
    } finally {
      await fresh.close();
    }
  });
});
