/**
 * Two gateway processes sharing real Redis and PostgreSQL: what one revokes, the other refuses
 * within 1 s — a single key, all of a user's keys (pepper rotation), and a removed member's keys.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initDistributedDeployment, type DistributedDeployment } from '../support/distributed-deployment.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';

const PROPAGATION_BUDGET_MS = 1000;

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function call(base: string, path: string, token: string, method = 'GET', body?: unknown): Promise<Answer> {
  const response = await fetch(new URL(path, base), {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

/** Polls until the token is refused, and returns how long that took after `since`. */
async function refusedWithin(base: string, token: string, since: number): Promise<number> {
  for (;;) {
    const answer = await call(base, '/api/me', token);
    if (answer.status === 401) return performance.now() - since;
    if (performance.now() - since > 5000) throw new Error(`still accepted after 5 s (status ${answer.status})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('two replicas on Redis + PostgreSQL', () => {
  let deployment: DistributedDeployment;
  let replicaA: GatewayProcess;
  let replicaB: GatewayProcess;
  let adminToken: string;
  let orgId: string;

  beforeAll(async () => {
    deployment = await initDistributedDeployment('replicas');
    adminToken = deployment.adminToken;
    const { env, dir } = deployment;
    [replicaA, replicaB] = await Promise.all([startGatewayProcess(env, dir, 90_000), startGatewayProcess(env, dir, 90_000)]);
    const orgs = await call(replicaA.url, '/api/orgs', adminToken);
    orgId = ((orgs.body.orgs as Array<{ id: string }>)[0] ?? { id: '' }).id;
    expect(orgId).toMatch(/^org_/);
  }, 180_000);

  afterAll(async () => {
    await Promise.all([replicaA?.stop(), replicaB?.stop()]);
    await deployment?.remove();
  });

  it('both replicas are ready and accept the same key', async () => {
    for (const replica of [replicaA, replicaB]) {
      expect((await fetch(new URL('/readyz', replica.url))).status).toBe(200);
      expect((await call(replica.url, '/api/me', adminToken)).status).toBe(200);
    }
  });

  it('a key revoked through one replica is refused by the other within 1 s', async () => {
    const created = await call(replicaA.url, `/api/orgs/${orgId}/keys`, adminToken, 'POST', { name: 'short-lived' });
    expect(created.status).toBe(201);
    const token = created.body.token as string;
    const keyId = (created.body.key as { id: string }).id;
    expect((await call(replicaB.url, '/api/me', token)).status).toBe(200);

    const start = performance.now();
    expect((await call(replicaA.url, `/api/orgs/${orgId}/keys/${keyId}`, adminToken, 'DELETE')).status).toBe(200);
    expect(await refusedWithin(replicaB.url, token, start)).toBeLessThan(PROPAGATION_BUDGET_MS);
    expect((await call(replicaA.url, '/api/me', token)).status).toBe(401);
  });

  it("a rotated pepper kills all of a user's keys on the other replica within 1 s", async () => {
    const user = await call(replicaA.url, '/api/users', adminToken, 'POST', { email: `dev-${randomBytes(3).toString('hex')}@example.test`, userType: 'paid' });
    expect(user.status).toBe(201);
    const userId = user.body.id as string;
    expect((await call(replicaA.url, `/api/orgs/${orgId}/members`, adminToken, 'POST', { userId, role: 'member' })).status).toBeLessThan(300);
    const keys = await Promise.all(
      [1, 2].map(async (n) => (await call(replicaA.url, `/api/orgs/${orgId}/keys`, adminToken, 'POST', { name: `k${n}`, userId })).body.token as string),
    );
    for (const token of keys) expect((await call(replicaB.url, '/api/me', token)).status).toBe(200);

    const start = performance.now();
    expect((await call(replicaA.url, `/api/users/${userId}/rotate-pepper`, adminToken, 'POST', {})).status).toBeLessThan(300);
    for (const token of keys) expect(await refusedWithin(replicaB.url, token, start)).toBeLessThan(PROPAGATION_BUDGET_MS);
  });

  it("removing a member kills their keys on the other replica within 1 s", async () => {
    const user = await call(replicaA.url, '/api/users', adminToken, 'POST', { email: `ops-${randomBytes(3).toString('hex')}@example.test` });
    const userId = user.body.id as string;
    await call(replicaA.url, `/api/orgs/${orgId}/members`, adminToken, 'POST', { userId, role: 'admin' });
    const token = (await call(replicaA.url, `/api/orgs/${orgId}/keys`, adminToken, 'POST', { name: 'ops', userId })).body.token as string;
    expect((await call(replicaB.url, '/api/me', token)).status).toBe(200);

    const start = performance.now();
    expect((await call(replicaA.url, `/api/orgs/${orgId}/members/${userId}`, adminToken, 'DELETE')).status).toBeLessThan(300);
    expect(await refusedWithin(replicaB.url, token, start)).toBeLessThan(PROPAGATION_BUDGET_MS);
  });
});
