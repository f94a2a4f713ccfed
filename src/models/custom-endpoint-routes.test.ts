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
import { registerCustomEndpointRoutes } from './custom-endpoint-routes.js';
import { OrgCustomEndpoints } from './custom-endpoints-store.js';

const SECRET = 'sk-custom-endpoint-secret-0123456789';
const principal = (orgId: string, role: 'admin' | 'member'): Principal => ({
  kind: 'api_key', id: `key_${orgId}_${role}`, keyId: `key_${orgId}_${role}`, userId: `usr_${orgId}_${role}`, orgId, role,
  userType: 'registered', platformAdmin: false, scopes: ['models', 'providers:write', 'keys:read'], ip: '127.0.0.1',
});
const tokens: Record<string, Principal> = { 'pk-a-admin': principal('org_a', 'admin'), 'pk-a-member': principal('org_a', 'member'), 'pk-b-admin': principal('org_b', 'admin') };
const resolver: Resolver = async (host) => [{ address: host === 'sneaky.example.com' ? '127.0.0.1' : '93.184.216.34', family: 4 }];

let store: RecordStore;
let url: string;
const logs: string[] = [];
let close: () => Promise<void>;

beforeAll(async () => {
  store = await openTestRecordStore();
  await store.db.insertInto('orgs').values([{ id: 'org_a', name: 'A', slug: 'a' }, { id: 'org_b', name: 'B', slug: 'b' }]).execute();
  const logger = createLogger({ level: 'trace', destination: new Writable({ write(chunk: Buffer, _e, done) { logs.push(chunk.toString('utf8')); done(); } }) });
  const authenticate: Authenticate = async (credential) => {
    const found = credential === null ? undefined : tokens[credential.token];
    return found === undefined ? { ok: false, code: 'invalid_token' } : { ok: true, principal: found };
  };
  const { app, registry } = createHttpApp({ logger, bodyLimitBytes: 65536, trustedProxies: [], behindTls: false, authenticate, readiness: async () => ({ ready: true, checks: {} }), metrics: new Registry(), version: 'test' });
  const endpoints = new OrgCustomEndpoints(store.db, createAead({ activeKeyId: 'k', keys: { k: randomBytes(32) } }), systemClock);
  registerCustomEndpointRoutes(app, registry, { db: store.db, endpoints, egress: { allowLoopback: false, allowPrivate: false, resolver } });
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
    expect((await call('PUT', '/api/orgs/org_a/endpoints/ep1', 'pk-a-admin', { baseUrl: 'https://api.example.com/v1/', apiKey: SECRET, models })).status).toBe(204);
    const got = await call('GET', '/api/orgs/org_a/endpoints/ep1', 'pk-a-admin');
    const text = await got.text();
    expect(got.status).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ endpointId: 'ep1', baseUrl: 'https://api.example.com/v1', hasKey: true, models });
    expect(text).not.toContain(SECRET);
    expect((await call('GET', '/api/orgs/org_a/endpoints/ep1', 'pk-b-admin')).status).toBe(404);
    expect((await call('DELETE', '/api/orgs/org_a/endpoints/ep1', 'pk-b-admin')).status).toBe(404);
    expect((await call('GET', '/api/orgs/org_a/endpoints/ep1', 'pk-a-member')).status).toBe(403);
    expect((await call('DELETE', '/api/orgs/org_a/endpoints/ep1', 'pk-a-admin')).status).toBe(204);
    expect((await call('GET', '/api/orgs/org_a/endpoints/ep1', 'pk-a-admin')).status).toBe(404);
    expect(logs.join('')).not.toContain(SECRET);
  });
});
