import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { MemoryAuditSink } from '../../audit/sink.js';
import { ManualClock } from '../../core/clock.js';
import { newId } from '../../core/ids.js';
import { createTestHttpApp, testPrincipal } from '../../http/testing.js';
import { TestBus } from '../../identity/cache/testing.js';
import type { Principal } from '../../identity/principal.js';
import { insertUser } from '../../identity/tenancy/index.js';
import type { RecordStore } from '../../store/db/index.js';
import { openTestRecordStore } from '../../store/db/testing.js';
import { MemoryHotState } from '../../store/state/memory/memory-hot-state.js';
import { BudgetCache } from './budget-cache.js';
import { costRule } from './testing.js';
import { registerBudgetRoutes } from './routes.js';
import { Economics } from './economics-gate.js';
import { budgetPrincipal, modelRequest } from './testing.js';
import type { DefaultBudgets } from './definitions.js';

let store: RecordStore;
let app: FastifyInstance;
let orgA: string;
let orgB: string;
let member: string;
let keyA: string;
let keyB: string;
const bus = new TestBus();
const clock = new ManualClock(Date.UTC(2026, 10, 22, 12));
const state = new MemoryHotState({ clock });
const audit = new MemoryAuditSink();
const defaults: DefaultBudgets = { org: [], user: [costRule('month', 5_000_000)], key: [] };
let cache: BudgetCache;
/** A second replica's cache, told about changes only over the bus. */
let replica: BudgetCache;
const principals: Record<string, Principal> = {};

async function seedOrg(): Promise<string> {
  const id = newId('org');
  await store.db.insertInto('orgs').values({ id, name: id, slug: id.toLowerCase().replace(/[^a-z0-9]/g, '-') }).execute();
  return id;
}

async function seedKey(orgId: string, userId: string): Promise<string> {
  const id = newId('key');
  await store.db
    .insertInto('api_keys')
    .values({ id, org_id: orgId, user_id: userId, name: 'k', scopes: '["models"]', expires_at: new Date(Date.now() + 86_400_000), created_by: userId })
    .execute();
  return id;
}

beforeAll(async () => {
  store = await openTestRecordStore();
  orgA = await seedOrg();
  orgB = await seedOrg();
  const admin = await insertUser(store.db, { email: 'budget-admin@example.test' });
  const user = await insertUser(store.db, { email: 'budget-member@example.test' });
  const other = await insertUser(store.db, { email: 'budget-other@example.test' });
  member = user.id;
  await store.db.insertInto('memberships').values([
    { org_id: orgA, user_id: admin.id, role: 'admin' },
    { org_id: orgA, user_id: user.id, role: 'member' },
    { org_id: orgB, user_id: other.id, role: 'owner' },
  ]).execute();
  keyA = await seedKey(orgA, user.id);
  keyB = await seedKey(orgB, other.id);
  principals.admin = testPrincipal({ kind: 'oidc', userId: admin.id, orgId: orgA, role: 'admin' });
  principals.member = testPrincipal({ kind: 'oidc', userId: user.id, orgId: orgA, role: 'member' });
  principals.ownerB = testPrincipal({ kind: 'oidc', userId: other.id, orgId: orgB, role: 'owner' });
  principals.readonlyKey = testPrincipal({ kind: 'api_key', userId: admin.id, orgId: orgA, role: 'admin', scopes: ['orgs:read'] });
  cache = new BudgetCache({ db: store.db, pubsub: bus, refreshMs: 0 });
  replica = new BudgetCache({ db: store.db, pubsub: bus, refreshMs: 0 });
  await cache.start();
  await replica.start();
  const http = createTestHttpApp({ principals });
  registerBudgetRoutes(http.app, http.registry, { db: store.db, state, cache, defaults, audit, clock });
  app = http.app;
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await cache.stop();
  await replica.stop();
  await store.close();
});

async function call(method: 'GET' | 'PUT', url: string, token: string, payload?: unknown) {
  const response = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: response.statusCode, body: response.json<Record<string, unknown>>() };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 100 && !check(); i += 1) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(check()).toBe(true);
};

describe('budget admin routes', () => {
  it('replaces and reads the budgets of the org, its users and its keys; other replicas follow', async () => {
    const budgets = [
      { subject: { kind: 'org' }, metric: 'cost', period: 'month', cap: 10_000_000 },
      { subject: { kind: 'user', id: member }, metric: 'tokens', period: 'day', cap: 50_000, alertThresholds: [90] },
      { subject: { kind: 'key', id: keyA }, metric: 'requests', period: 'total', cap: 1000 },
    ];
    const put = await call('PUT', `/api/orgs/${orgA}/budgets`, 'admin', { budgets });
    expect(put.status).toBe(200);
    const read = await call('GET', `/api/orgs/${orgA}/budgets`, 'admin');
    expect(read.status).toBe(200);
    expect(read.body.budgets).toEqual(
      expect.arrayContaining([
        { subject: { kind: 'org', id: orgA }, metric: 'cost', period: 'month', cap: 10_000_000, alertThresholds: [50, 80, 100] },
        { subject: { kind: 'user', id: member }, metric: 'tokens', period: 'day', cap: 50_000, alertThresholds: [90] },
        { subject: { kind: 'key', id: keyA }, metric: 'requests', period: 'total', cap: 1000, alertThresholds: [50, 80, 100] },
      ]),
    );
    expect(read.body.defaults).toEqual(defaults);
    expect(cache.rulesFor(orgA, 'org', orgA)).toEqual([{ metric: 'cost', period: 'month', cap: 10_000_000, alertThresholds: [50, 80, 100] }]);
    await until(() => replica.rulesFor(orgA, 'key', keyA).length === 1);
    expect(audit.events.find((e) => e.action === 'budgets.update')).toMatchObject({ orgId: orgA, outcome: 'success', details: { count: 3 } });

    // Replacing with an empty set removes them everywhere.
    expect((await call('PUT', `/api/orgs/${orgA}/budgets`, 'admin', { budgets: [] })).status).toBe(200);
    await until(() => replica.rulesFor(orgA, 'key', keyA).length === 0);
    expect(cache.rulesFor(orgA, 'org', orgA)).toEqual([]);
  });

  it("refuses another org's key or a non-member as a subject, and duplicate lines", async () => {
    const foreignKey = await call('PUT', `/api/orgs/${orgA}/budgets`, 'admin', { budgets: [{ subject: { kind: 'key', id: keyB }, metric: 'cost', period: 'day', cap: 1 }] });
    expect(foreignKey.status).toBe(400);
    const duplicate = await call('PUT', `/api/orgs/${orgA}/budgets`, 'admin', {
      budgets: [
        { subject: { kind: 'org' }, metric: 'cost', period: 'day', cap: 1 },
        { subject: { kind: 'org' }, metric: 'cost', period: 'day', cap: 2 },
      ],
    });
    expect(duplicate.status).toBe(400);
    const float = await call('PUT', `/api/orgs/${orgA}/budgets`, 'admin', { budgets: [{ subject: { kind: 'org' }, metric: 'cost', period: 'day', cap: 1.5 }] });
    expect(float.status).toBe(400);
  });

  it('answers 404 across orgs and 403 (audited) without the permission', async () => {
    expect((await call('GET', `/api/orgs/${orgA}/budgets`, 'ownerB')).status).toBe(404);
    expect((await call('PUT', `/api/orgs/${orgA}/budgets`, 'ownerB', { budgets: [] })).status).toBe(404);
    expect((await call('GET', `/api/orgs/${orgA}/budgets/usage`, 'ownerB')).status).toBe(404);
    expect((await call('GET', `/api/orgs/${newId('org')}/budgets`, 'admin')).status).toBe(404);
    expect((await call('GET', `/api/orgs/${orgA}/budgets`, 'member')).status).toBe(403);
    expect((await call('PUT', `/api/orgs/${orgA}/budgets`, 'readonlyKey', { budgets: [] })).status).toBe(403);
    expect(audit.events.filter((e) => e.outcome === 'denied').map((e) => e.action)).toEqual(['budgets.read', 'budgets.update']);
  });

  it('reports used and reserved per line, defaults included', async () => {
    await call('PUT', `/api/orgs/${orgA}/budgets`, 'admin', { budgets: [{ subject: { kind: 'org' }, metric: 'cost', period: 'month', cap: 2_000_000 }] });
    const economics = new Economics({ state, rules: cache, defaults, clock, audit });
    const spent = await economics.reserve(modelRequest(budgetPrincipal(orgA, member, keyA), { maxMicros: 300, maxTokens: 10 }));
    const held = await economics.reserve(modelRequest(budgetPrincipal(orgA, member, keyA), { maxMicros: 200, maxTokens: 10 }));
    if (!spent.ok || !held.ok) throw new Error('expected admission');
    await spent.settle({ kind: 'success', actualMicros: 120, actualTokens: 3 });
    const usage = await call('GET', `/api/orgs/${orgA}/budgets/usage`, 'admin');
    expect(usage.status).toBe(200);
    const lines = usage.body.lines as { subject: { kind: string; id: string }; used: number; reserved: number; isDefault: boolean; cap: number }[];
    expect(lines.find((l) => l.subject.kind === 'org')).toMatchObject({ used: 120, reserved: 200, cap: 2_000_000, isDefault: false });
    expect(lines.find((l) => l.subject.kind === 'user' && l.subject.id === member)).toMatchObject({ used: 120, reserved: 200, cap: 5_000_000, isDefault: true });
    expect(usage.body.truncated).toBe(false);
  });
});
