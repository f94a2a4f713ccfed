import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryAuditSink } from '../audit/sink.js';
import { ManualClock } from '../core/clock.js';
import { defineRoute } from '../http/route.js';
import { createTestHttpApp, testPrincipal } from '../http/testing.js';
import { openTestRecordStore } from '../store/db/testing.js';
import type { RecordStore } from '../store/db/index.js';
import { MemoryHotState } from '../store/state/memory/memory-hot-state.js';
import { registerAdmissionGuardHook } from './guard-hook.js';
import { LiveAdmissionConfig } from './live-config.js';
import { createPipeline } from './pipeline.js';
import { registerAdmissionRoutes } from './routes.js';
import { admissionPrincipal, admissionRequest, testAdmissionConfig } from './testing.js';

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

async function platformSetup() {
  const state = new MemoryHotState({ clock: new ManualClock() });
  const audit = new MemoryAuditSink();
  const base = testAdmissionConfig();
  const live = new LiveAdmissionConfig({ base, state, db: records.db, audit });
  const other = new LiveAdmissionConfig({ base, state, db: records.db });
  await live.start();
  await other.start();
  const principals = {
    platform: testPrincipal({ userId: 'usr_root', orgId: 'org_root', role: 'owner', platformAdmin: true, scopes: ['admin'] }),
    narrow: testPrincipal({ userId: 'usr_root', orgId: 'org_root', role: 'owner', platformAdmin: true, scopes: ['models'] }),
    owner: testPrincipal({ userId: 'usr_owner', orgId: 'org_x', role: 'owner', kind: 'oidc', scopes: [] }),
  };
  const { app, registry } = createTestHttpApp({ principals });
  registerAdmissionRoutes(app, registry, { live, audit });
  for (const url of ['/api/reports', '/api/plain']) {
    defineRoute(app, registry, { method: 'GET', url, summary: 'test', auth: 'required', query: z.object({}), handler: async () => ({ ok: true }) });
  }
  const pipeline = createPipeline({ state, config: live.config, limits: live.limits });
  registerAdmissionGuardHook(app, pipeline);
  return { app, live, other, audit, pipeline };
}

const put = (app: Awaited<ReturnType<typeof platformSetup>>['app'], payload: unknown, token = 'platform') =>
  app.inject({ method: 'PUT', url: '/api/admission', headers: { authorization: `Bearer ${token}` }, payload: payload as Record<string, unknown> });

describe('platform admission configuration (GET/PUT /api/admission)', () => {
  it('a platform admin replaces the overrides; the change is versioned, audited, effective at once here and on other replicas', async () => {
    const { app, live, other, audit, pipeline } = await platformSetup();
    const before = (await app.inject({ method: 'GET', url: '/api/admission', headers: { authorization: 'Bearer platform' } })).json();
    expect(before).toMatchObject({ effective: { rateLimits: { registered: { burst: 100 } }, backpressure: { thresholds: { hard: 0.95 } } } });
    const payload = {
      rateLimits: { registered: { burst: 2, burstWindowSeconds: 60, hourly: null } },
      backpressure: { thresholds: { anonymous: 0.5 } },
      circuit: { failureThreshold: 9 },
      storeCircuit: { recoverySeconds: 7 },
      routes: { guard: ['^/api/reports$'] },
    };
    const answer = await put(app, payload);
    expect(answer.statusCode, answer.body).toBe(200);
    const body = answer.json();
    expect(body.version).toBe(before.version + 1);
    expect(body.effective).toMatchObject({
      rateLimits: { registered: { burst: 2 }, paid: { burst: 150 } },
      backpressure: { thresholds: { anonymous: 0.5, registered: 0.8, paid: 0.9, hard: 0.95 } },
      circuit: { failureThreshold: 9, recoverySeconds: 15 },
      storeCircuit: { recoverySeconds: 7, failureThreshold: 5 },
      routes: { guard: ['^/api/reports$'], bypass: [] },
    });
    expect(audit.events.at(-1)).toMatchObject({ actor: 'usr_root', orgId: null, action: 'settings.update', target: 'admission.platform', outcome: 'success', details: { version: body.version } });
    // Enforced at once on this replica: the platform default of the type applies.
    const principal = admissionPrincipal('registered');
    const results = await Promise.all(Array.from({ length: 4 }, () => pipeline.admit(admissionRequest(principal))));
    expect(results.filter((r) => r.ok)).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(other.platformOverrides().version).toBe(body.version);
    expect(other.config().rateLimits.registered.burst).toBe(2);
    // A stale or replayed version never wins.
    expect(other.applyPlatform({ version: body.version - 1, overrides: {} })).toBe(false);
    expect(live.config().backpressure.thresholds.anonymous).toBe(0.5);
  });

  it('a route-pattern change applies to routes already registered', async () => {
    const { app } = await platformSetup();
    const headers = { authorization: 'Bearer owner' };
    expect((await put(app, { routes: { guard: [] } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/api/reports', headers })).headers['ratelimit-policy']).toBeUndefined();
    expect((await put(app, { routes: { guard: ['^/api/reports$'] }, rateLimits: { registered: { burst: 1, burstWindowSeconds: 60, hourly: null } } })).statusCode).toBe(200);
    const guarded = await app.inject({ method: 'GET', url: '/api/reports', headers });
    expect(guarded.headers['ratelimit-policy']).toBe('"burst";q=1;w=60');
    expect((await app.inject({ method: 'GET', url: '/api/reports', headers })).statusCode).toBe(429);
    expect((await app.inject({ method: 'GET', url: '/api/plain', headers })).statusCode).toBe(200);
    expect((await put(app, { routes: { guard: [] } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/api/reports', headers })).statusCode).toBe(200);
  });

  it('validates the result as a whole, like the file at load, and names the key', async () => {
    const { app, live } = await platformSetup();
    const version = live.platformOverrides().version;
    const cases: [unknown, string][] = [
      [{ backpressure: { thresholds: { registered: 0.5 } } }, 'admission.backpressure.thresholds.anonymous: must be below registered'],
      [{ backpressure: { thresholds: { paid: 0.99 } } }, 'admission.backpressure.thresholds.paid: must be below hard'],
      [{ backpressure: { thresholds: { hard: 1.5 } } }, ''],
      [{ routes: { guard: ['(unclosed'] } }, ''],
      [{ routes: { bypass: ['^/hooks/([a-z]+)+$'] } }, ''],
      [{ routes: { guard: ['x'.repeat(257)] } }, ''],
      [{ routes: { guard: Array.from({ length: 65 }, (_, i) => `^/r${i}$`) } }, ''],
      [{ circuit: { failureThreshold: 0 } }, ''],
      [{ rateLimits: { paid: { burst: 1.5, burstWindowSeconds: 60, hourly: null } } }, ''],
      [{ unknown: true }, ''],
    ];
    for (const [payload, message] of cases) {
      const answer = await put(app, payload);
      expect(answer.statusCode, JSON.stringify(payload)).toBe(400);
      expect(answer.json().error.code).toBe('validation_failed');
      if (message !== '') expect(answer.json().error.message).toBe(message);
    }
    expect(live.platformOverrides().version).toBe(version);
  });

  it('only platform admins with admin rights; a denial is audited', async () => {
    const { app, audit } = await platformSetup();
    for (const token of ['owner', 'narrow']) {
      const headers = { authorization: `Bearer ${token}` };
      expect((await app.inject({ method: 'GET', url: '/api/admission', headers })).statusCode).toBe(403);
      expect((await put(app, { circuit: { failureThreshold: 2 } }, token)).statusCode).toBe(403);
    }
    expect((await app.inject({ method: 'GET', url: '/api/admission' })).statusCode).toBe(401);
    expect(audit.events.filter((e) => e.outcome === 'denied' && e.target === 'admission.platform')).toHaveLength(4);
  });
});
