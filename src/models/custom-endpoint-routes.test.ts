import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAead } from '../core/aead.js';
import { systemClock } from '../core/clock.js';
import { createLogger } from '../core/logger.js';
import type { Resolver } from '../egress/index.js';
import { createHttpApp, type Authenticate } from '../http/app.js';
import type { Principal } from '../identity/principal.js';
import type { RecordStore } from '../store/db/index.js';
import { openTestRecordStore } from '../store/db/testing.js';
import { MAX_ENDPOINTS_PER_ORG, registerCustomEndpointRoutes } from './custom-endpoint-routes.js';
import { OrgCustomEndpoints } from './custom-endpoints-store.js';

const SECRET = 'sk-custom-endpoint-secret-0123456789';
const principal = (orgId: string, role: 'admin' | 'member'): Principal => ({
  kind: 'api_key', id: `key_${orgId}_${role}`, keyId: `key_${orgId}_${role}`, userId: `usr_${orgId}_${role}`, orgId, role,
  userType: 'registered', platformAdmin: false, scopes: ['models', 'providers:write', 'keys:read'], ip: '127.0.0.1',
});
const tokens: Record<string, Principal> = { 'pk-a-admin': principal('org_a', 'admin'), 'pk-a-member': principal('org_a', 'member'), 'pk-b-admin': principal('org_b', 'admin') };
/** Writes to `gate.example.com` wait in the URL check until RACERS of them are there, then go on together. */
const RACERS = 8;
const atGate: Array<() => void> = [];
const resolver: Resolver = async (host) => {
  if (host === 'gate.example.com') {
    await new Promise<void>((resolve) => {
      atGate.push(resolve);
      if (atGate.length === RACERS) for (const release of atGate.splice(0)) release();
    });
  }
  return [{ address: host === 'sneaky.example.com' ? '127.0.0.1' : '93.184.216.34', family: 4 }];
};

let store: RecordStore;
let endpoints: OrgCustomEndpoints;
let url: string;
const logs: string[] = [];
let close: () => Promise<void>;
/** Orgs whose models the routes said changed, in order: each one reaches every replica's resolver. */
const changed: string[] = [];
const models = { changed: async (orgId: string) => void changed.push(orgId), isCatalogueAlias: (alias: string) => alias === 'gpt-platform' };

beforeAll(async () => {
  store = await openTestRecordStore();
  await store.db.insertInto('orgs').values([{ id: 'org_a', name: 'A', slug: 'a' }, { id: 'org_b', name: 'B', slug: 'b' }]).execute();
  const logger = createLogger({ level: 'trace', destination: new Writable({ write(chunk: Buffer, _e, done) { logs.push(chunk.toString('utf8')); done(); } }) });
  const authenticate: Authenticate = async (credential) => {
    const found = credential === null ? undefined : tokens[credential.token];
    return found === undefined ? { ok: false, code: 'invalid_token' } : { ok: true, principal: found };
  };
  const { app, registry } = createHttpApp({ logger, bodyLimitBytes: 65536, trustedProxies: [], behindTls: false, authenticate, readiness: async () => ({ ready: true, checks: {} }), metrics: new Registry(), version: 'test' });
  endpoints = new OrgCustomEndpoints(store.db, createAead({ activeKeyId: 'k', keys: { k: randomBytes(32) } }), systemClock);
  registerCustomEndpointRoutes(app, registry, { db: store.db, endpoints, models, egress: { allowLoopback: false, allowPrivate: false, allowHttpHosts: [], resolver } });
  url = (await app.listen({ host: '127.0.0.1', port: 0 })).replace('[::1]', '127.0.0.1');
  close = async () => { await app.close(); await store.close(); };
});
afterAll(async () => close());

function call(method: string, path: string, token: string, body?: unknown): Promise<Response> {
  return fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
}

describe('custom endpoint admin routes', () => {
  const models = [{ alias: 'my-llm', upstream: 'llama' }];

  it.each(['https://169.254.169.254/v1', 'https://[::ffff:a9fe:a9fe]/v1', 'https://0x7f.1/v1', 'https://sneaky.example.com/v1', 'http://api.example.com/v1', 'https://api.example.com/v1?x=1'])(
    'refuses %s at write time',
    async (baseUrl) => {
      const res = await call('PUT', '/api/orgs/org_a/endpoints/ep1', 'pk-a-admin', { baseUrl, models });
      expect(res.status).toBe(400);
    },
  );

  it('stores with a write-only key, hides it from other orgs and from members without the permission', async () => {
    changed.length = 0;
    expect((await call('PUT', '/api/orgs/org_a/endpoints/ep1', 'pk-a-admin', { baseUrl: 'https://api.example.com/v1/', apiKey: SECRET, models })).status).toBe(204);
    expect(changed).toEqual(['org_a']);
    const got = await call('GET', '/api/orgs/org_a/endpoints/ep1', 'pk-a-admin');
    const text = await got.text();
    expect(got.status).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ endpointId: 'ep1', baseUrl: 'https://api.example.com/v1', hasKey: true, models, shadowedAliases: [] });
    expect(text).not.toContain(SECRET);
    const listed = await call('GET', '/api/orgs/org_a/endpoints', 'pk-a-admin');
    expect(((await listed.json()) as { data: { endpointId: string }[] }).data.map((e) => e.endpointId)).toEqual(['ep1']);
    expect(((await (await call('GET', '/api/orgs/org_b/endpoints', 'pk-b-admin')).json()) as { data: unknown[] }).data).toEqual([]);
    expect((await call('GET', '/api/orgs/org_a/endpoints', 'pk-b-admin')).status).toBe(404);
    expect((await call('GET', '/api/orgs/org_a/endpoints/ep1', 'pk-b-admin')).status).toBe(404);
    expect((await call('PUT', '/api/orgs/org_a/endpoints/ep1', 'pk-b-admin', { baseUrl: 'https://api.example.com/v1', models })).status).toBe(404);
    expect((await call('DELETE', '/api/orgs/org_a/endpoints/ep1', 'pk-b-admin')).status).toBe(404);
    expect((await call('GET', '/api/orgs/org_a/endpoints/ep1', 'pk-a-member')).status).toBe(403);
    expect(changed).toEqual(['org_a']);
    expect((await call('DELETE', '/api/orgs/org_a/endpoints/ep1', 'pk-a-admin')).status).toBe(204);
    expect(changed).toEqual(['org_a', 'org_a']);
    expect((await call('GET', '/api/orgs/org_a/endpoints/ep1', 'pk-a-admin')).status).toBe(404);
    expect(logs.join('')).not.toContain(SECRET);
  });

  it('lets exactly one of many simultaneous writes claim an alias (the check and the write are one step)', async () => {
    const racers = Array.from({ length: RACERS }, (_, i) => `race${i}`);
    const answers = await Promise.all(racers.map((id) => call('PUT', `/api/orgs/org_b/endpoints/${id}`, 'pk-b-admin', { baseUrl: 'https://gate.example.com/v1', models: [{ alias: 'raced', upstream: 'x' }] })));
    expect(answers.map((res) => res.status).sort((x, y) => x - y)).toEqual([204, 409, 409, 409, 409, 409, 409, 409]);
    const stored = (await endpoints.list('org_b')).filter((endpoint) => endpoint.models.some((model) => model.alias === 'raced'));
    expect(stored).toHaveLength(1);
    for (const endpoint of stored) await endpoints.remove('org_b', endpoint.endpointId);
  });

  it('refuses aliases the catalogue owns or another endpoint of the org serves, and caps the endpoints of an org', async () => {
    const put = (id: string, body: unknown) => call('PUT', `/api/orgs/org_a/endpoints/${id}`, 'pk-a-admin', body);
    const platform = await put('ep1', { baseUrl: 'https://api.example.com/v1', models: [{ alias: 'gpt-platform', upstream: 'x' }] });
    expect(platform.status).toBe(409);
    expect(((await platform.json()) as { error: { message: string } }).error.message).toContain('gpt-platform');
    expect((await put('ep1', { baseUrl: 'https://api.example.com/v1', models: [{ alias: 'shared', upstream: 'x' }] })).status).toBe(204);
    expect((await put('ep2', { baseUrl: 'https://api.example.com/v2', models: [{ alias: 'shared', upstream: 'y' }] })).status).toBe(409);
    // Replacing the endpoint that serves an alias is not a collision with itself.
    expect((await put('ep1', { baseUrl: 'https://api.example.com/v1', models: [{ alias: 'shared', upstream: 'z' }] })).status).toBe(204);
    // Another org may use the same alias: aliases are per org.
    expect((await call('PUT', '/api/orgs/org_b/endpoints/ep1', 'pk-b-admin', { baseUrl: 'https://api.example.com/v1', models: [{ alias: 'shared', upstream: 'x' }] })).status).toBe(204);
    for (let i = 2; i <= MAX_ENDPOINTS_PER_ORG; i += 1) expect((await put(`ep${i}`, { baseUrl: 'https://api.example.com/v1', models: [{ alias: `m${i}`, upstream: 'x' }] })).status).toBe(204);
    const over = await put('one-too-many', { baseUrl: 'https://api.example.com/v1', models: [{ alias: 'extra', upstream: 'x' }] });
    expect(over.status).toBe(409);
    // At the cap, an existing endpoint can still be replaced.
    expect((await put('ep2', { baseUrl: 'https://api.example.com/v1', models: [{ alias: 'm2', upstream: 'y' }] })).status).toBe(204);
    for (let i = 1; i <= MAX_ENDPOINTS_PER_ORG; i += 1) await call('DELETE', `/api/orgs/org_a/endpoints/ep${i}`, 'pk-a-admin');
    expect(await endpoints.list('org_a')).toEqual([]);
  });

  it('a stored key never follows its endpoint to another origin unless it is sent again', async () => {
    const put = (body: unknown) => call('PUT', '/api/orgs/org_a/endpoints/keyed', 'pk-a-admin', body);
    expect((await put({ baseUrl: 'https://api.example.com/v1', apiKey: SECRET, models })).status).toBe(204);
    // Same origin, other path: the key stays.
    expect((await put({ baseUrl: 'https://api.example.com/v2', models })).status).toBe(204);
    expect((await endpoints.openOrg('org_a'))[0]?.apiKey).toBe(SECRET);
    const moved = await put({ baseUrl: 'https://other.example.com/v1', models });
    expect(moved.status).toBe(409);
    expect((await endpoints.get('org_a', 'keyed'))?.baseUrl).toBe('https://api.example.com/v2');
    expect((await put({ baseUrl: 'https://other.example.com/v1', apiKey: null, models })).status).toBe(204);
    expect(await endpoints.get('org_a', 'keyed')).toMatchObject({ baseUrl: 'https://other.example.com/v1', hasKey: false });
    await call('DELETE', '/api/orgs/org_a/endpoints/keyed', 'pk-a-admin');
  });

  it('rejects malformed ids and bodies with 400, never 500', async () => {
    expect((await call('PUT', `/api/orgs/org_a/endpoints/${'a'.repeat(49)}`, 'pk-a-admin', { baseUrl: 'https://api.example.com/v1', models })).status).toBe(400);
    expect((await call('PUT', '/api/orgs/org_a/endpoints/UPPER', 'pk-a-admin', { baseUrl: 'https://api.example.com/v1', models })).status).toBe(400);
    expect((await call('PUT', '/api/orgs/org_a/endpoints/ep', 'pk-a-admin', { baseUrl: 'https://api.example.com/v1', models: [{ alias: 'a', upstream: 'b', price: { inputPerMTok: 0.5, outputPerMTok: 1 } }] })).status).toBe(400);
    expect((await call('PUT', '/api/orgs/org_a/endpoints/ep', 'pk-a-admin', { baseUrl: 'https://api.example.com/v1', models: [{ alias: 'a b', upstream: 'b' }] })).status).toBe(400);
    expect(await endpoints.list('org_a')).toEqual([]);
  });
});
