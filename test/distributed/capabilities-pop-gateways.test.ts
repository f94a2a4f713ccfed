/**
 * Proof-of-possession replay across two gateway processes sharing Redis and PostgreSQL: a proof
 * accepted by one replica is refused by the other, because the proof id is recorded in the shared
 * hot state, not in either process.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../../src/capabilities/http/testing/harness.js';
import { ath, makeProof, proofKey } from '../../src/capabilities/testing/proofs.js';
import { initDistributedDeployment, type DistributedDeployment } from '../support/distributed-deployment.js';
import { startGatewayProcess, type GatewayProcess } from '../support/gateway-process.js';

/** Both replicas see the same Host, so a proof names the same URL on either. */
const GATEWAY_HOST = 'gateway.test';

const CAPABILITIES_YAML = `
capabilities:
  keys:
    - id: c1
      secret: { file: capability.key }
      createdAt: "2026-01-01T00:00:00Z"
  maxLifetimeMinutes: 30
  devHttpHosts: ["127.0.0.1"]
  egress: { allowLoopback: true }
  credentials:
    backend:service: { secret: { file: upstream.secret } }
`;

describe('proof-of-possession across two gateway processes', () => {
  let deployment: DistributedDeployment;
  let upstream: Upstream;
  let replicaA: GatewayProcess;
  let replicaB: GatewayProcess;
  let adminToken: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    deployment = await initDistributedDeployment('pop');
    adminToken = deployment.adminToken;
    const { env, dir } = deployment;
    appendFileSync(deployment.configPath, CAPABILITIES_YAML);
    writeFileSync(join(dir, 'capability.key'), randomBytes(32).toString('base64url'), { mode: 0o600 });
    writeFileSync(join(dir, 'upstream.secret'), 'upstream-secret-value-0123456789abcdef', { mode: 0o600 });
    [replicaA, replicaB] = await Promise.all([startGatewayProcess(env, dir, 90_000), startGatewayProcess(env, dir, 90_000)]);
  }, 180_000);

  afterAll(async () => {
    await Promise.all([replicaA?.stop(), replicaB?.stop()]);
    await upstream?.close();
    await deployment?.remove();
  });

  it('a proof used on one replica is refused as a replay on the other', async () => {
    const me = (await (await fetch(new URL('/api/me', replicaA.url), { headers: { authorization: `Bearer ${adminToken}` } })).json()) as { user: { id: string } };
    const userId = me.user.id;
    const orgs = (await (await fetch(new URL('/api/orgs', replicaA.url), { headers: { authorization: `Bearer ${adminToken}` } })).json()) as { orgs: Array<{ id: string }> };
    const orgId = orgs.orgs[0]?.id ?? '';
    const key = await proofKey('ES256');

    const issued = await fetch(new URL(`/api/orgs/${orgId}/capabilities`, replicaA.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        userId,
        sessionId: 'ses_pop_replicas',
        binding: { type: 'pop', jkt: key.jkt },
        grants: [{ name: 'backend', origin: upstream.origin, methods: ['GET'], pathPrefixes: ['/'], credential: { ref: 'backend:service', header: 'authorization', scheme: 'Bearer' }, routeClass: 'backend_api' }],
      }),
    });
    expect(issued.status, await issued.clone().text()).toBe(201);
    const { token } = (await issued.json()) as { token: string };

    const proof = await makeProof(key, { htm: 'GET', htu: `http://${GATEWAY_HOST}/egress/backend/items`, iat: Math.floor(Date.now() / 1000), ath: ath(token) });
    const send = async (replica: GatewayProcess): Promise<{ status: number; body: string }> => {
      const answer = await request(new URL('/egress/backend/items', replica.url), {
        headers: { host: GATEWAY_HOST, authorization: `Bearer ${token}`, dpop: proof },
      });
      return { status: answer.statusCode, body: await answer.body.text() };
    };

    const first = await send(replicaA);
    expect(first.status, first.body).toBe(200);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe('Bearer upstream-secret-value-0123456789abcdef');

    const replayed = await send(replicaB);
    expect(replayed.status).toBe(403);
    expect(JSON.parse(replayed.body)).toMatchObject({ error: { reason: 'proof_replayed' } });
    expect(upstream.seen).toHaveLength(1);
  });
});
