import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { createTestHttpApp, testPrincipal } from '../http/testing.js';
import type { Principal } from '../identity/principal.js';
import { openTestRecordStore } from '../store/db/testing.js';
import type { RecordStore } from '../store/db/record-store.js';
import { AuditLog } from './audit-log.js';
import type { AuditPage } from './query.js';
import { registerAuditRoutes } from './routes.js';
import { TEST_AUDIT_KEY } from './testing.js';

let store: RecordStore;
let app: FastifyInstance;

const principals: Record<string, Principal> = {
  'owner-a': testPrincipal({ userId: 'usr_owner_a', orgId: 'org_a', role: 'owner' }),
  'viewer-a': testPrincipal({ userId: 'usr_viewer_a', orgId: 'org_a', role: 'viewer' }),
  'owner-b': testPrincipal({ userId: 'usr_owner_b', orgId: 'org_b', role: 'owner' }),
  admin: testPrincipal({ userId: 'usr_root', orgId: null, role: null, platformAdmin: true }),
};

// Stands in for the tenancy permission table: owners and admins of the org, and platform admins.
function canReadAudit(principal: Principal, orgId: string): boolean {
  if (principal.platformAdmin) return true;
  return principal.orgId === orgId && (principal.role === 'owner' || principal.role === 'admin');
}

beforeAll(async () => {
  store = await openTestRecordStore();
  const log = new AuditLog({ db: store.db, signingKey: TEST_AUDIT_KEY });
  for (let i = 0; i < 6; i += 1) {
    await log.append({ actor: `usr_${i}`, orgId: i % 2 === 0 ? 'org_a' : 'org_b', action: 'key.create', target: `key_${i}`, outcome: 'success' });
  }
  const http = createTestHttpApp({ principals });
  registerAuditRoutes(http.app, http.registry, { db: store.db, canReadAudit });
  app = http.app;
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await store.close();
});

async function get(url: string, token?: string) {
  const response = await app.inject({ method: 'GET', url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  return { status: response.statusCode, body: response.json<AuditPage & { error?: { code: string } }>() };
}

describe('GET /api/orgs/:orgId/audit', () => {
  it("returns only the org's records to a member allowed to read them", async () => {
    const { status, body } = await get('/api/orgs/org_a/audit', 'owner-a');
    expect(status).toBe(200);
    expect(body.items.map((item) => item.target)).toEqual(['key_4', 'key_2', 'key_0']);
  });

  it('paginates with limit and cursor', async () => {
    const first = await get('/api/orgs/org_a/audit?limit=2', 'owner-a');
    expect(first.body.items).toHaveLength(2);
    const cursor = first.body.nextCursor;
    expect(cursor).not.toBeNull();
    const second = await get(`/api/orgs/org_a/audit?limit=2&cursor=${cursor ?? ''}`, 'owner-a');
    expect(second.body.items.map((item) => item.target)).toEqual(['key_0']);
    expect(second.body.nextCursor).toBeNull();
  });

  it('answers 404, never the records, to a principal from another org', async () => {
    const { status, body } = await get('/api/orgs/org_a/audit', 'owner-b');
    expect(status).toBe(404);
    expect(body.error?.code).toBe('not_found');
    expect(JSON.stringify(body)).not.toContain('key_');
  });

  it('answers 404 for an org that does not exist, the same as for a foreign one', async () => {
    expect((await get('/api/orgs/org_nope/audit', 'owner-a')).status).toBe(404);
  });

  it('answers 403 to a member whose role may not read the audit log', async () => {
    const { status, body } = await get('/api/orgs/org_a/audit', 'viewer-a');
    expect(status).toBe(403);
    expect(body.error?.code).toBe('forbidden');
  });

  it('requires authentication', async () => {
    expect((await get('/api/orgs/org_a/audit')).status).toBe(401);
  });

  it('validates the query', async () => {
    expect((await get('/api/orgs/org_a/audit?limit=501', 'owner-a')).status).toBe(400);
    expect((await get('/api/orgs/org_a/audit?from=yesterday', 'owner-a')).status).toBe(400);
    expect((await get('/api/orgs/org_a/audit?cursor=bogus', 'owner-a')).status).toBe(400);
  });

  it('ignores an orgId query parameter that tries to widen the filter', async () => {
    const { body } = await get('/api/orgs/org_a/audit?orgId=org_b', 'owner-a');
    expect(body.items.every((item) => item.orgId === 'org_a')).toBe(true);
  });
});

describe('GET /api/audit', () => {
  it('returns every org to a platform admin, filterable by org and action', async () => {
    const all = await get('/api/audit', 'admin');
    expect(all.status).toBe(200);
    expect(all.body.items).toHaveLength(6);
    const orgB = await get('/api/audit?orgId=org_b&action=key.*', 'admin');
    expect(orgB.body.items.map((item) => item.target)).toEqual(['key_5', 'key_3', 'key_1']);
  });

  it('refuses org owners', async () => {
    const { status } = await get('/api/audit', 'owner-a');
    expect(status).toBe(403);
  });
});

describe('OpenAPI', () => {
  it('describes both audit routes', async () => {
    const response = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const document = response.json<{ paths: Record<string, unknown> }>();
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/api/orgs/{orgId}/audit', '/api/audit']));
  });
});
