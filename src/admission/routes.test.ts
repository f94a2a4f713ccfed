import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryAuditSink } from '../audit/sink.js';
import { createTestHttpApp, testPrincipal } from '../http/testing.js';
import { openTestRecordStore } from '../store/db/testing.js';
import type { RecordStore } from '../store/db/index.js';
import { MemoryHotState } from '../store/state/memory/memory-hot-state.js';
import { LiveAdmissionConfig } from './live-config.js';
import { registerAdmissionRoutes } from './routes.js';
import { testAdmissionConfig } from './testing.js';

let records: RecordStore;
beforeAll(async () => {
  records = await openTestRecordStore();
});
afterAll(async () => {
  await records.close();
});

async function setup() {
  const state = new MemoryHotState();
  const audit = new MemoryAuditSink();
  const live = new LiveAdmissionConfig({ base: testAdmissionConfig(), state, db: records.db, audit });
  const other = new LiveAdmissionConfig({ base: testAdmissionConfig(), state, db: records.db });
  await live.start();
  await other.start();
  const orgId = `org_${Math.random().toString(36).slice(2, 10)}`;
  const principals = {
    admin: testPrincipal({ userId: 'usr_admin', orgId, role: 'admin', kind: 'oidc', scopes: [] }),
    member: testPrincipal({ userId: 'usr_member', orgId, role: 'member', kind: 'oidc', scopes: [] }),
    outsider: testPrincipal({ userId: 'usr_out', orgId: 'org_other', role: 'owner', kind: 'oidc', scopes: [] }),
  };
  const { app, registry } = createTestHttpApp({ principals });
  registerAdmissionRoutes(app, registry, { live });
  return { app, live, other, audit, orgId };
}

const override = { rateLimits: { registered: { burst: 7, burstWindowSeconds: 30, hourly: 70 } }, keyOverrides: { key_1: { burst: 1, burstWindowSeconds: 60, hourly: null } } };

describe('admission admin routes', () => {
  it('an org admin reads and replaces overrides; each change bumps the version, is audited and reaches other replicas', async () => {
    const { app, other, audit, orgId } = await setup();
    const auth = { authorization: 'Bearer admin' };
    const initial = await app.inject({ method: 'GET', url: `/api/orgs/${orgId}/admission`, headers: auth });
    expect(initial.statusCode).toBe(200);
    expect(initial.json()).toMatchObject({ version: 0, effective: { registered: { burst: 100, burstWindowSeconds: 60, hourly: 2000 } } });

    const put = await app.inject({ method: 'PUT', url: `/api/orgs/${orgId}/admission`, headers: auth, payload: override });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({ version: 1, effective: { registered: { burst: 7 } }, overrides: override });
    const second = await app.inject({ method: 'PUT', url: `/api/orgs/${orgId}/admission`, headers: auth, payload: { rateLimits: {} } });
    expect(second.json()).toMatchObject({ version: 2 });
    expect(audit.events.map((e) => [e.action, e.actor, e.details?.version])).toEqual([
      ['settings.update', 'usr_admin', 1],
      ['settings.update', 'usr_admin', 2],
    ]);
    // The memory store delivers pub/sub synchronously-ish; the other replica holds version 2.
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(other.overridesFor(orgId).version).toBe(2);
  });

  it('a member without settings management gets 403, someone outside the org 404, anonymous 401', async () => {
    const { app, orgId } = await setup();
    for (const [token, status] of [
      ['member', 403],
      ['outsider', 404],
    ] as const) {
      const headers = { authorization: `Bearer ${token}` };
      expect((await app.inject({ method: 'GET', url: `/api/orgs/${orgId}/admission`, headers })).statusCode).toBe(status);
      expect((await app.inject({ method: 'PUT', url: `/api/orgs/${orgId}/admission`, headers, payload: override })).statusCode).toBe(status);
    }
    expect((await app.inject({ method: 'GET', url: `/api/orgs/${orgId}/admission` })).statusCode).toBe(401);
  });

  it('refuses invalid overrides with the field named', async () => {
    const { app, orgId } = await setup();
    const response = await app.inject({
      method: 'PUT',
      url: `/api/orgs/${orgId}/admission`,
      headers: { authorization: 'Bearer admin' },
      payload: { rateLimits: { paid: { burst: -1, burstWindowSeconds: 60, hourly: null } } },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error.field).toBe('body.rateLimits.paid.burst');
  });

  it('reload picks up a change a replica missed on pub/sub', async () => {
    const { live, orgId } = await setup();
    const lonely = new LiveAdmissionConfig({ base: testAdmissionConfig(), state: new MemoryHotState(), db: records.db });
    await live.update(orgId, { rateLimits: {}, keyOverrides: {} }, 'usr_admin');
    expect(lonely.overridesFor(orgId).version).toBe(0);
    await lonely.reload();
    expect(lonely.overridesFor(orgId).version).toBe(1);
  });
});
