/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-call -- assertions over arbitrary JSON bodies */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { RouteRegistry } from '../../http/route.js';
import { createTestHttpApp } from '../../http/testing.js';
import { bootstrapPlatformAdmin } from './bootstrap.js';
import { KeyService } from './keys.js';
import { registerTenancyRoutes } from './routes.js';
import { openTenancyHarness, type TenancyHarness } from './test-support.js';

let h: TenancyHarness;
let app: FastifyInstance;
let registry: RouteRegistry;
let platformToken: string;
let bootOrg: string;
let ids: { orgX: string; orgY: string; alice: string; bob: string; aliceKeyId: string };
let tokens: { alice: string; bob: string; carolViewer: string };

/** Loosely typed JSON: these assertions read arbitrary response bodies. */
type Json = Record<string, any>;
type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

async function call(method: Method, url: string, token?: string, payload?: unknown) {
  const response = await app.inject({
    method,
    url,
    ...(token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } }),
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
  const body: unknown = response.body.length > 0 ? response.json() : undefined;
  return { status: response.statusCode, body: body as Json, headers: response.headers };
}

async function ok(method: Method, url: string, token: string, payload?: unknown, status = 200) {
  const res = await call(method, url, token, payload);
  if (res.status !== status) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

beforeAll(async () => {
  h = await openTenancyHarness();
  const http = createTestHttpApp({ authenticate: (credential, context) => h.authenticator(credential, context) });
  app = http.app;
  registry = http.registry;
  registerTenancyRoutes(app, registry, h.deps);
  await app.ready();
  const boot = await bootstrapPlatformAdmin(h.store.db, h.deps.signer, { email: 'root@example.test' });
  if (!boot.created) throw new Error('bootstrap did not run');
  platformToken = boot.token;
  bootOrg = boot.orgId;

  const alice = await ok('POST', '/api/users', platformToken, { email: 'alice@example.test' }, 201);
  const bob = await ok('POST', '/api/users', platformToken, { email: 'bob@example.test' }, 201);
  const carol = await ok('POST', '/api/users', platformToken, { email: 'carol@example.test' }, 201);
  const orgX = await ok('POST', '/api/orgs', platformToken, { name: 'X', slug: 'org-x', ownerUserId: alice.id }, 201);
  const orgY = await ok('POST', '/api/orgs', platformToken, { name: 'Y', slug: 'org-y', ownerUserId: bob.id }, 201);
  // First keys are minted through the service as each user's own session (no cookie login here).
  const keys = new KeyService(h.deps);
  const session = (userId: string) => ({ kind: 'session' as const, id: 'ses_x', userId, orgId: null, role: null, userType: 'registered' as const, platformAdmin: false, scopes: [], ip: '127.0.0.1' });
  const aliceKey = await keys.create(session(alice.id), orgX.id, { name: 'alice', scopes: ['admin', 'models', 'tasks'] });
  const bobKey = await keys.create(session(bob.id), orgY.id, { name: 'bob', scopes: ['admin', 'models', 'tasks'] });
  await ok('POST', `/api/orgs/${orgX.id}/members`, aliceKey.token, { userId: carol.id, role: 'viewer' }, 201);
  const carolKey = await keys.create(session(alice.id), orgX.id, { name: 'carol', scopes: ['admin'], userId: carol.id });
  ids = { orgX: orgX.id, orgY: orgY.id, alice: alice.id, bob: bob.id, aliceKeyId: aliceKey.key.id };
  tokens = { alice: aliceKey.token, bob: bobKey.token, carolViewer: carolKey.token };
});

afterAll(async () => {
  await app.close();
  await h.close();
});

/** A valid body for each org route, so the answer is decided by access, not by validation. */
const BODIES: Record<string, unknown> = {
  'GET /api/orgs/:orgId': undefined,
  'DELETE /api/orgs/:orgId': undefined,
  'GET /api/orgs/:orgId/members': undefined,
  'POST /api/orgs/:orgId/members': { email: 'carol@example.test', role: 'viewer' },
  'PATCH /api/orgs/:orgId/members/:userId': { role: 'viewer' },
  'DELETE /api/orgs/:orgId/members/:userId': undefined,
  'POST /api/orgs/:orgId/keys': { name: 'k', scopes: ['models'] },
  'GET /api/orgs/:orgId/keys': undefined,
  'DELETE /api/orgs/:orgId/keys/:keyId': undefined,
  'POST /api/orgs/:orgId/runtimes/:instanceId/credential': {},
};

function fill(url: string): string {
  return url
    .replace(':orgId', ids.orgX)
    .replace(':userId', ids.alice)
    .replace(':keyId', ids.aliceKeyId)
    .replace(':instanceId', 'agent-1');
}

describe('cross-org access', () => {
  it('every org route answers 404 to a non-member, a platform admin included, and changes nothing', async () => {
    const orgRoutes = registry.routes.filter((r) => r.url.includes(':orgId'));
    expect(orgRoutes.map((r) => `${r.method} ${r.url}`).sort()).toEqual(Object.keys(BODIES).sort());
    for (const route of orgRoutes) {
      for (const token of [tokens.bob, platformToken]) {
        const res = await call(route.method as Method, fill(route.url), token, BODIES[`${route.method} ${route.url}`]);
        expect({ route: `${route.method} ${route.url}`, status: res.status, code: res.body.error?.code }).toEqual({
          route: `${route.method} ${route.url}`,
          status: 404,
          code: 'not_found',
        });
        expect(JSON.stringify(res.body)).not.toContain('alice');
      }
    }
    // Nothing moved: org X, Alice's ownership and key are intact.
    const members = await ok('GET', `/api/orgs/${ids.orgX}/members`, tokens.alice);
    expect(members.members.find((m: { userId: string }) => m.userId === ids.alice)?.role).toBe('owner');
    const keys = await ok('GET', `/api/orgs/${ids.orgX}/keys`, tokens.alice);
    expect(keys.keys.some((k: { id: string }) => k.id === ids.aliceKeyId)).toBe(true);
  });

  it('a non-existent org is indistinguishable from a foreign one', async () => {
    const foreign = await call('GET', `/api/orgs/${ids.orgX}`, tokens.bob);
    const missing = await call('GET', '/api/orgs/org_AAAAAAAAAAAAAAAA', tokens.bob);
    expect(missing).toMatchObject({ status: foreign.status, body: foreign.body });
  });

  it('GET /api/orgs lists only the caller\'s org', async () => {
    const res = await ok('GET', '/api/orgs', tokens.bob);
    expect(res.orgs.map((o: { id: string }) => o.id)).toEqual([ids.orgY]);
  });
});

describe('401 vs 403 vs 404', () => {
  it('every route is 401 without a credential and with a bad one', async () => {
    for (const route of registry.routes) {
      const url = fill(route.url).replace(':userId', ids.alice);
      const none = await call(route.method as Method, url, undefined, BODIES[`${route.method} ${route.url}`] ?? (route.method === 'POST' ? {} : undefined));
      // Authentication runs before body validation, so even a body route answers 401 first.
      expect({ url, status: none.status }).toEqual({ url, status: 401 });
      const bad = await call(route.method as Method, url, 'pck_not.a.key');
      expect(bad.status).toBe(401);
    }
  });

  it('a member whose role is too low gets 403, not 404', async () => {
    const res = await call('POST', `/api/orgs/${ids.orgX}/members`, tokens.carolViewer, { email: 'bob@example.test', role: 'viewer' });
    expect(res).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    expect((await call('GET', `/api/orgs/${ids.orgX}`, tokens.carolViewer)).status).toBe(200);
    expect((await call('DELETE', `/api/orgs/${ids.orgX}`, tokens.carolViewer)).status).toBe(403);
  });

  it('users: a stranger gets 404, self gets 403 on admin-only changes, platform admin succeeds', async () => {
    expect((await call('GET', `/api/users/${ids.bob}`, tokens.alice)).status).toBe(404);
    expect((await call('PATCH', `/api/users/${ids.bob}`, tokens.alice, { disabled: true })).status).toBe(404);
    expect((await call('POST', `/api/users/${ids.bob}/rotate-pepper`, tokens.alice)).status).toBe(404);
    expect((await call('PATCH', `/api/users/${ids.alice}`, tokens.alice, { userType: 'privileged' })).status).toBe(403);
    expect((await call('POST', '/api/users', tokens.alice, { email: 'x@example.test' })).status).toBe(403);
    expect((await call('GET', `/api/users/${ids.alice}`, tokens.alice)).body).toMatchObject({ id: ids.alice, email: 'alice@example.test' });
    expect((await call('GET', `/api/users/${ids.alice}`, platformToken)).status).toBe(200);
    expect((await call('GET', '/api/users/usr_AAAAAAAAAAAAAAAA', platformToken)).status).toBe(404);
  });

  it('malformed ids and unknown fields are 400', async () => {
    expect((await call('GET', '/api/orgs/not-an-id', tokens.alice)).status).toBe(400);
    expect((await call('POST', `/api/orgs/${ids.orgX}/keys`, tokens.alice, { name: 'k', scopes: ['models'], extra: 1 })).status).toBe(400);
    expect((await call('POST', `/api/orgs/${ids.orgX}/keys`, tokens.alice, { name: 'k', scopes: ['root'] })).status).toBe(400);
    expect((await call('POST', `/api/orgs/${ids.orgX}/keys`, tokens.alice, { name: 'x'.repeat(201), scopes: ['models'] })).status).toBe(400);
  });

  it('text holding a NUL character or a lone surrogate is 400 in the one error shape, never 500, and nothing is written', async () => {
    const before = await ok('GET', '/api/orgs', platformToken);
    const keysBefore = await ok('GET', `/api/orgs/${ids.orgX}/keys`, tokens.alice);
    for (const [method, url, token, payload] of [
      ['POST', '/api/orgs', platformToken, { name: 'a\u0000b' }],
      ['POST', `/api/orgs/${ids.orgX}/keys`, tokens.alice, { name: 'k\u0000', scopes: ['models'] }],
      // A text column would keep U+FFFD in its place, silently.
      ['POST', '/api/orgs', platformToken, { name: 'a\ud800b' }],
      ['POST', `/api/orgs/${ids.orgX}/keys`, tokens.alice, { name: 'k\udc00', scopes: ['models'] }],
      ['GET', '/api/orgs/%00', tokens.alice, undefined],
      ['PATCH', `/api/orgs/${ids.orgX}/members/%00`, tokens.alice, { role: 'viewer' }],
    ] as const) {
      const res = await call(method, url, token, payload);
      expect({ url, status: res.status, code: res.body.error?.code }).toEqual({ url, status: 400, code: expect.stringMatching(/^(validation_failed|bad_request)$/) });
    }
    expect((await ok('GET', '/api/orgs', platformToken)).orgs).toHaveLength((before.orgs as unknown[]).length);
    expect(await ok('GET', `/api/orgs/${ids.orgX}/keys`, tokens.alice)).toEqual(keysBefore);
  });
});

describe('admin flows over HTTP', () => {
  it('creates a key once (no-store), lists metadata, revokes it, and the key stops working', async () => {
    const created = await call('POST', `/api/orgs/${ids.orgX}/keys`, tokens.alice, { name: 'ci', scopes: ['models'], ttlSeconds: 3600 });
    expect(created.status).toBe(201);
    expect(created.headers['cache-control']).toBe('no-store');
    const token = created.body.token as string;
    const me = await ok('GET', '/api/me', token);
    expect(me).toMatchObject({ principal: { kind: 'api_key', orgId: ids.orgX, role: 'owner', scopes: ['models'] }, user: { id: ids.alice } });
    const listed = await call('GET', `/api/orgs/${ids.orgX}/keys`, tokens.alice);
    expect(JSON.stringify(listed.body)).not.toContain(token);
    const revoked = await ok('DELETE', `/api/orgs/${ids.orgX}/keys/${created.body.key.id}`, tokens.alice);
    expect(revoked.key.revokedAt).not.toBeNull();
    expect((await call('GET', '/api/me', token)).body.error.code).toBe('token_revoked');
  });

  it('members: add, change role, last owner refused with 409, remove', async () => {
    const dave = await ok('POST', '/api/users', platformToken, { email: 'dave@example.test' }, 201);
    await ok('POST', `/api/orgs/${ids.orgY}/members`, tokens.bob, { userId: dave.id, role: 'member' }, 201);
    expect((await ok('PATCH', `/api/orgs/${ids.orgY}/members/${dave.id}`, tokens.bob, { role: 'admin' })).role).toBe('admin');
    expect((await call('PATCH', `/api/orgs/${ids.orgY}/members/${ids.bob}`, tokens.bob, { role: 'admin' })).body.error.code).toBe('last_owner');
    expect((await call('DELETE', `/api/orgs/${ids.orgY}/members/${dave.id}`, tokens.bob)).status).toBe(204);
    expect((await call('DELETE', `/api/orgs/${ids.orgY}/members/${dave.id}`, tokens.bob)).status).toBe(404);
  });

  it('runtime credential endpoint mints a working key with no-store', async () => {
    const res = await call('POST', `/api/orgs/${ids.orgY}/runtimes/agent-7/credential`, tokens.bob, { ttlSeconds: 600 });
    expect(res.status).toBe(201);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toMatchObject({ instanceId: 'agent-7', key: { orgId: ids.orgY, scopes: ['models', 'tasks'] } });
    expect((await call('GET', '/api/me', res.body.token as string)).status).toBe(200);
  });

  it('rotate-pepper over HTTP kills every key of the user', async () => {
    const eve = await ok('POST', '/api/users', platformToken, { email: 'eve@example.test' }, 201);
    await ok('POST', `/api/orgs/${ids.orgY}/members`, tokens.bob, { userId: eve.id, role: 'admin' }, 201);
    const k = await ok('POST', `/api/orgs/${ids.orgY}/keys`, tokens.bob, { name: 'eve', scopes: ['models', 'keys:write'], userId: eve.id }, 201);
    expect((await call('GET', '/api/me', k.token as string)).status).toBe(200);
    expect(await ok('POST', `/api/users/${eve.id}/rotate-pepper`, k.token as string)).toEqual({ keysRevoked: 1 });
    expect((await call('GET', '/api/me', k.token as string)).status).toBe(401);
  });

  it('accepts what the CLI sends: no slug, ttlDays, no scopes; orgs list carries the role', async () => {
    const org = await ok('POST', '/api/orgs', platformToken, { name: 'Made By CLI!' }, 201);
    expect(org.slug).toMatch(/^made-by-cli-[a-z0-9]{6}$/);
    // The platform admin's admin key works in every org it is a member of (it owns this one).
    expect((await call('GET', `/api/orgs/${org.id}`, platformToken)).status).toBe(200);
    const key = await ok('POST', `/api/orgs/${org.id}/keys`, platformToken, { name: 'k', ttlDays: 2 }, 201);
    expect(key.key.orgId).toBe(org.id);
    expect(key.key.scopes).toEqual(['models', 'tasks']);
    expect(Date.parse(key.key.expiresAt as string) - Date.parse(key.key.createdAt as string)).toBeCloseTo(2 * 86_400_000, -4);
    expect((await call('POST', `/api/orgs/${bootOrg}/keys`, platformToken, { name: 'k', ttlDays: 2, ttlSeconds: 600 })).status).toBe(400);
    const listed = await ok('GET', '/api/orgs', platformToken);
    expect((listed.orgs as { id: string }[]).map((o) => o.id).sort()).toEqual([bootOrg, org.id as string].sort());
    expect(listed.orgs.every((o: { role: string }) => o.role === 'owner')).toBe(true);
    // No password setter wired here: a password is refused rather than silently dropped.
    const withPassword = await call('POST', '/api/users', platformToken, { email: 'pw@example.test', password: 'a long enough passphrase' });
    expect(withPassword.status).toBe(400);
    expect(JSON.stringify(withPassword.body)).not.toContain('passphrase');
  });

  it('the OpenAPI document lists the admin routes', async () => {
    const doc = await call('GET', '/openapi.json');
    expect(Object.keys(doc.body.paths as object)).toEqual(expect.arrayContaining(['/api/orgs', '/api/me']));
  });
});
