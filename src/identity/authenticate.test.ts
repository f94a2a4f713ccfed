import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../core/clock.js';
import type { Authenticate } from '../http/app.js';
import { defineRoute } from '../http/route.js';
import { createTestHttpApp } from '../http/testing.js';
import type { RecordStore } from '../store/db/index.js';
import { openTestRecordStore } from '../store/db/testing.js';
import { createAuthenticator, type Authenticator, type AuthenticateResult } from './authenticate.js';
import { IdentityCache, IdentityEvents, createDbIdentityRecords } from './cache/index.js';
import { TestBus } from './cache/testing.js';
import { ApiKeySigner, ApiKeyVerifier, DEFAULT_KEY_TTL_MS } from './keys/index.js';
import { OidcVerifier, parseOidcIssuers } from './oidc/index.js';

const SECRETS = new Map([['k1', new Uint8Array(randomBytes(32))]]);
const signer = new ApiKeySigner({ secrets: SECRETS, signingKid: 'k1', clock: systemClock, defaultTtlMs: DEFAULT_KEY_TTL_MS, maxTtlMs: DEFAULT_KEY_TTL_MS });
const ctx = { ip: '203.0.113.9', allowAnonymous: false };

let store: RecordStore;
let bus: TestBus;
let replicaA: IdentityCache;
let replicaB: IdentityCache;
let events: IdentityEvents;
/** Authenticates through replica B, which hears about changes made "on" replica A only via the bus. */
let authB: Authenticator;
let jwksServer: Server;
let idpKey: CryptoKey;

async function addUser(id: string, options: { role?: 'owner' | 'admin' | 'member' | 'viewer'; platformAdmin?: boolean } = {}): Promise<string> {
  await store.db
    .insertInto('users')
    .values({ id, email: `${id}@example.test`, display_name: '', user_type: 'paid', platform_admin: options.platformAdmin ?? false, password_hash: null, pepper: `pepper-${id}`, disabled: false })
    .execute();
  if (options.role !== undefined) await store.db.insertInto('memberships').values({ org_id: 'org_a', user_id: id, role: options.role }).execute();
  return id;
}

async function keyFor(userId: string, keyId = `key_${userId}`): Promise<string> {
  const user = await store.db.selectFrom('users').select('pepper').where('id', '=', userId).executeTakeFirstOrThrow();
  return (await signer.sign({ keyId, userId, orgId: 'org_a', scopes: ['models:invoke'], pepper: user.pepper })).token;
}

async function eventually(check: () => Promise<boolean>, withinMs = 1000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > withinMs) throw new Error(`not within ${withinMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const bearer = (token: string) => ({ source: 'bearer' as const, token });
const codeOf = (result: AuthenticateResult): string => (result.ok ? 'ok' : result.code);

beforeAll(async () => {
  store = await openTestRecordStore();
  await store.db.insertInto('orgs').values({ id: 'org_a', name: 'A', slug: 'a' }).execute();
  const records = createDbIdentityRecords(store.db);
  bus = new TestBus();
  replicaA = new IdentityCache({ records, pubsub: bus, clock: systemClock, heartbeatMs: 0 });
  replicaB = new IdentityCache({ records, pubsub: bus, clock: systemClock, heartbeatMs: 0 });
  await Promise.all([replicaA.start(), replicaB.start()]);
  events = new IdentityEvents({ records, pubsub: bus, clock: systemClock, cache: replicaA });

  const pair = await generateKeyPair('ES256');
  idpKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'idp1', alg: 'ES256' };
  jwksServer = createServer((_req, res) => res.end(JSON.stringify({ keys: [jwk] })));
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const oidc = new OidcVerifier({
    clock: systemClock,
    issuers: parseOidcIssuers([
      {
        name: 'corp',
        issuer: 'https://idp.example.test',
        audience: 'portcullis',
        jwksUrl: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`,
        algorithms: ['ES256'],
        claims: { user: 'sub', org: 'org', roles: 'roles' },
      },
    ]),
  });
  authB = createAuthenticator({
    keys: new ApiKeyVerifier({ secrets: SECRETS, clock: systemClock, isRevoked: (id) => replicaB.isRevoked(id) }),
    identity: replicaB,
    oidc,
    sessionResolver: async (token, sessionCtx) =>
      token === 'good-session'
        ? { ok: true, principal: { kind: 'session', id: 'usr_s', userId: 'usr_s', orgId: null, role: null, userType: 'registered', platformAdmin: false, scopes: [], ip: sessionCtx.ip } }
        : { ok: false, code: 'session_expired' },
  });
});

afterAll(async () => {
  await Promise.all([replicaA.stop(), replicaB.stop()]);
  await new Promise((resolve) => jwksServer.close(resolve));
  await store.close();
});

describe('authenticate', () => {
  it('is the Authenticate the HTTP shell expects', () => {
    const asHttp: Authenticate = authB;
    expect(typeof asHttp).toBe('function');
  });

  it('gives anonymous only when there is no credential and the route allows it', async () => {
    expect(await authB(null, { ...ctx, allowAnonymous: true })).toMatchObject({ ok: true, principal: { kind: 'anonymous', id: 'anon:203.0.113.9' } });
    expect(await authB(null, ctx)).toEqual({ ok: true, principal: null });
    for (const token of ['garbage', 'pck_garbage', 'a.b.c', 'pck_a.b.c']) {
      expect(await authB(bearer(token), { ...ctx, allowAnonymous: true })).toEqual({ ok: false, code: 'invalid_token' });
    }
  });

  it('turns a key into a principal with the member current role, type and scopes', async () => {
    await addUser('usr_alice', { role: 'admin' });
    expect(await authB(bearer(await keyFor('usr_alice')), ctx)).toEqual({
      ok: true,
      principal: { kind: 'api_key', id: 'key_usr_alice', keyId: 'key_usr_alice', userId: 'usr_alice', orgId: 'org_a', role: 'admin', userType: 'paid', platformAdmin: false, scopes: ['models:invoke'], ip: ctx.ip },
    });
    expect(await authB({ source: 'query', token: await keyFor('usr_alice') }, ctx)).toMatchObject({ ok: true });
  });

  it('decides a key it has seen, whose user and role are cached, without a promise — and with the same verdict', async () => {
    await addUser('usr_warm', { role: 'member' });
    const key = await keyFor('usr_warm');
    const first = authB(bearer(key), ctx);
    expect(first).toBeInstanceOf(Promise);
    const slow = await first;
    const warm = authB(bearer(key), ctx);
    expect(warm).not.toBeInstanceOf(Promise);
    expect(warm).toEqual(slow);
    // A change drops the cached user: the next answer goes the slow way and sees the change.
    await store.db.updateTable('users').set({ disabled: true }).where('id', '=', 'usr_warm').execute();
    await events.userChanged('usr_warm');
    await eventually(async () => codeOf(await authB(bearer(key), ctx)) === 'token_revoked');
    expect(authB(bearer(key), ctx)).toEqual({ ok: false, code: 'token_revoked' });
  });

  it('reuses a warm key verdict only for the same address, never lets it be changed, and still checks the deny-list first', async () => {
    await addUser('usr_reuse', { role: 'member' });
    const key = await keyFor('usr_reuse');
    await authB(bearer(key), ctx);
    const here = authB(bearer(key), ctx);
    const there = authB(bearer(key), { ...ctx, ip: '198.51.100.7' });
    const hereAgain = authB(bearer(key), ctx);
    if (here instanceof Promise || there instanceof Promise || hereAgain instanceof Promise) throw new Error('a warm key took the slow path');
    expect(here.ok && here.principal?.ip).toBe(ctx.ip);
    expect(there.ok && there.principal?.ip).toBe('198.51.100.7');
    expect(hereAgain.ok && hereAgain.principal?.ip).toBe(ctx.ip);
    // Shared between requests, so frozen: a handler that tried to change it would fail loudly.
    const principal = hereAgain.ok ? hereAgain.principal : null;
    expect(principal !== null && Object.isFrozen(principal)).toBe(true);
    expect(() => {
      if (principal !== null) Object.assign(principal, { role: 'owner' });
    }).toThrow(TypeError);
    // A revocation is checked before any reuse.
    await events.revokeKey('key_usr_reuse', new Date(Date.now() + 60_000));
    await eventually(async () => codeOf(await authB(bearer(key), ctx)) === 'token_revoked');
  });

  it('narrows a demoted member key at once and kills a removed member key', async () => {
    await addUser('usr_bob', { role: 'admin' });
    const key = await keyFor('usr_bob');
    expect(await authB(bearer(key), ctx)).toMatchObject({ ok: true, principal: { role: 'admin' } });
    await store.db.updateTable('memberships').set({ role: 'viewer' }).where('user_id', '=', 'usr_bob').execute();
    await events.membershipChanged('org_a', 'usr_bob');
    await eventually(async () => {
      const result = await authB(bearer(key), ctx);
      return result.ok && result.principal?.role === 'viewer';
    });
    await store.db.deleteFrom('memberships').where('user_id', '=', 'usr_bob').execute();
    await events.membershipChanged('org_a', 'usr_bob');
    await eventually(async () => codeOf(await authB(bearer(key), ctx)) === 'token_revoked');
  });

  it('refuses keys of a disabled user, after a pepper rotation, and a revoked key — on the other replica within 1 s', async () => {
    await addUser('usr_carol', { role: 'member' });
    await addUser('usr_dave', { role: 'member' });
    await addUser('usr_erin', { role: 'member' });
    const carol = await keyFor('usr_carol');
    const dave = await keyFor('usr_dave');
    const erin = await keyFor('usr_erin');
    const erinSecond = await keyFor('usr_erin', 'key_erin_2');
    for (const key of [carol, dave, erin, erinSecond]) expect(codeOf(await authB(bearer(key), ctx))).toBe('ok');

    await store.db.updateTable('users').set({ disabled: true }).where('id', '=', 'usr_carol').execute();
    await events.userChanged('usr_carol');
    await events.rotatePepper('usr_dave');
    await events.revokeKey('key_usr_erin', new Date(Date.now() + 60_000));
    const started = Date.now();
    await eventually(async () => codeOf(await authB(bearer(carol), ctx)) === 'token_revoked');
    await eventually(async () => codeOf(await authB(bearer(dave), ctx)) === 'token_revoked');
    await eventually(async () => codeOf(await authB(bearer(erin), ctx)) === 'token_revoked');
    expect(Date.now() - started).toBeLessThan(1000);
    // Revoking one key leaves the user's other keys alive; a key minted after rotation works.
    expect(codeOf(await authB(bearer(erinSecond), ctx))).toBe('ok');
    expect(codeOf(await authB(bearer(await keyFor('usr_dave', 'key_dave_2')), ctx))).toBe('ok');
  });

  it('lets a platform admin key act in an org without membership, and nobody else', async () => {
    await addUser('usr_root', { platformAdmin: true });
    await addUser('usr_stranger');
    expect(await authB(bearer(await keyFor('usr_root')), ctx)).toMatchObject({ ok: true, principal: { platformAdmin: true, role: null } });
    expect(codeOf(await authB(bearer(await keyFor('usr_stranger')), ctx))).toBe('token_revoked');
  });

  it('maps OIDC tokens to principals that are never platform admins', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ iss: 'https://idp.example.test', aud: 'portcullis', sub: 'zoe', org: 'org_a', roles: ['owner'], iat: now, exp: now + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: 'idp1' })
      .sign(idpKey);
    expect(await authB(bearer(token), ctx)).toEqual({
      ok: true,
      principal: { kind: 'oidc', id: 'oidc:corp:zoe', userId: 'oidc:corp:zoe', orgId: 'org_a', role: 'member', userType: 'registered', platformAdmin: false, scopes: [], ip: ctx.ip },
    });
  });

  it('hands session cookies to the session resolver and refuses them without one', async () => {
    expect(await authB({ source: 'cookie', token: 'good-session' }, ctx)).toMatchObject({ ok: true, principal: { kind: 'session' } });
    expect(await authB({ source: 'cookie', token: 'old' }, ctx)).toEqual({ ok: false, code: 'session_expired' });
    const noSessions = createAuthenticator({ keys: new ApiKeyVerifier({ secrets: SECRETS, clock: systemClock }), identity: replicaB });
    expect(await noSessions({ source: 'cookie', token: 'good-session' }, ctx)).toEqual({ ok: false, code: 'invalid_credentials' });
  });

  it('fails closed before the deny-list is loaded', async () => {
    const cold = new IdentityCache({ records: createDbIdentityRecords(store.db), pubsub: bus, clock: systemClock, heartbeatMs: 0 });
    const auth = createAuthenticator({ keys: new ApiKeyVerifier({ secrets: SECRETS, clock: systemClock }), identity: cold });
    expect(await auth(bearer(await keyFor('usr_alice')), ctx)).toEqual({ ok: false, code: 'not_ready' });
  });

  it('answers every attack over HTTP with 401 and a stable code, never 500', async () => {
    const { app, registry } = createTestHttpApp({ authenticate: authB });
    defineRoute(app, registry, { method: 'GET', url: '/probe', summary: 'probe', auth: 'required', handler: async ({ principal }) => ({ id: principal.id }) });
    await app.ready();
    const good = await keyFor('usr_alice');
    const [h, p, s] = good.slice(4).split('.') as [string, string, string];
    const flipped = Buffer.from(p, 'base64url');
    flipped[3] = (flipped[3] ?? 0) ^ 1;
    const attacks = [
      `pck_${Buffer.from('{"alg":"none","typ":"pc-key+jwt","kid":"k1"}').toString('base64url')}.${p}.`,
      `pck_${h}.${flipped.toString('base64url')}.${s}`,
      `pck_${h}.${p}.${s.slice(0, 10)}`,
      `pck_${'a'.repeat(5000)}.b.c`,
      'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
    ];
    for (const token of attacks) {
      const response = await app.inject({ method: 'GET', url: '/probe', headers: { authorization: `Bearer ${token}` } });
      expect(response.statusCode).toBe(401);
      expect(response.json<{ error: { code: string } }>().error.code).toBe('invalid_token');
    }
    const ok = await app.inject({ method: 'GET', url: '/probe', headers: { authorization: `Bearer ${good}` } });
    expect(ok.json()).toEqual({ id: 'key_usr_alice' });
    await app.close();
  });
});
