/**
 * Capability revocation across two replicas sharing real Redis pub/sub and real PostgreSQL: a
 * capability revoked through one is refused by the other within 1 s; a replica whose Redis goes
 * away fails closed (503) instead of honouring capabilities it can no longer vouch for. Isolated by
 * a unique Redis prefix and a unique PostgreSQL schema, both removed after.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_USER, ORG, seedOrgs, startReplica, startUpstream, waitFor, type Replica, type Upstream } from '../../src/capabilities/http/testing/harness.js';
import type { RecordStore } from '../../src/store/db/index.js';
import { RedisHotState } from '../../src/store/state/redis/redis-hot-state.js';
import { openSharedSchema, type SharedSchema } from '../support/postgres.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = randomBytes(5).toString('hex');
const SESSION = 'ses_AAAAAAAAAAAAAAAA';

let schema: SharedSchema;
let storeA: RecordStore;
let storeB: RecordStore;
let redisA: RedisHotState;
let redisB: RedisHotState;
let upstream: Upstream;
let a: Replica;
let b: Replica;

beforeAll(async () => {
  schema = await openSharedSchema('capabilities_revocation', 2);
  [storeA, storeB] = schema.stores as [RecordStore, RecordStore];
  await seedOrgs(storeA);
  redisA = await RedisHotState.connect({ url: REDIS_URL, prefix: `t${run}` });
  redisB = await RedisHotState.connect({ url: REDIS_URL, prefix: `t${run}` });
  upstream = await startUpstream();
  a = await startReplica(storeA, redisA);
  b = await startReplica(storeB, redisB);
  await waitFor(() => a.service.revocations.fresh() && b.service.revocations.fresh(), 10_000);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([a?.close(), b?.close(), upstream?.close()]);
  await Promise.allSettled([redisA?.close(), redisB?.close()]);
  await schema?.drop();
});

async function issue(containerId: string): Promise<{ token: string; capabilityId: string }> {
  const response = await a.app.inject({
    method: 'POST',
    url: `/api/orgs/${ORG}/capabilities`,
    headers: { authorization: 'Bearer issuer' },
    payload: {
      userId: AGENT_USER,
      sessionId: SESSION,
      binding: { type: 'container', containerId },
      grants: [{ name: 'backend', origin: upstream.origin, methods: ['GET'], pathPrefixes: ['/'], credential: { ref: 'backend:service', header: 'authorization', scheme: 'Bearer' }, routeClass: 'backend_api' }],
    },
  });
  expect(response.statusCode).toBe(201);
  return response.json<{ token: string; capabilityId: string }>();
}

function call(replica: Replica, token: string, containerId: string) {
  return replica.app.inject({ method: 'GET', url: '/egress/backend/items', headers: { authorization: `Bearer ${token}`, 'x-portcullis-container': containerId }, remoteAddress: '127.0.0.1' });
}

describe('capability revocation over Redis', () => {
  it('a capability revoked through one replica is refused by the other within 1 s', async () => {
    const issued = await issue('ctr-dist-1');
    expect((await call(b, issued.token, 'ctr-dist-1')).statusCode).toBe(200);
    const revoked = await a.app.inject({ method: 'POST', url: `/api/orgs/${ORG}/capabilities/revoke`, headers: { authorization: 'Bearer issuer' }, payload: { capabilityId: issued.capabilityId } });
    expect(revoked.statusCode).toBe(200);
    const started = Date.now();
    let status = 0;
    while (Date.now() - started < 1000) {
      status = (await call(b, issued.token, 'ctr-dist-1')).statusCode;
      if (status === 401) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(status).toBe(401);
  }, 20_000);

  it('a replica started after the revocation refuses too (loaded from PostgreSQL)', async () => {
    const issued = await issue('ctr-dist-2');
    await a.app.inject({ method: 'POST', url: `/api/orgs/${ORG}/capabilities/revoke`, headers: { authorization: 'Bearer issuer' }, payload: { containerId: 'ctr-dist-2' } });
    const redisC = await RedisHotState.connect({ url: REDIS_URL, prefix: `t${run}` });
    const c = await startReplica(storeB, redisC);
    try {
      await waitFor(() => c.service.revocations.fresh(), 10_000);
      expect((await call(c, issued.token, 'ctr-dist-2')).statusCode).toBe(401);
    } finally {
      await c.close();
      await redisC.close();
    }
  }, 20_000);

  it('fails closed with 503 when its Redis goes away', async () => {
    const issued = await issue('ctr-dist-3');
    const redisD = await RedisHotState.connect({ url: REDIS_URL, prefix: `t${run}` });
    const d = await startReplica(storeB, redisD);
    try {
      await waitFor(() => d.service.revocations.fresh(), 10_000);
      expect((await call(d, issued.token, 'ctr-dist-3')).statusCode).toBe(200);
      await redisD.close();
      await waitFor(() => !d.service.revocations.fresh(), 5000);
      const response = await call(d, issued.token, 'ctr-dist-3');
      expect(response.statusCode).toBe(503);
      expect(response.json<{ error: { reason: string } }>().error.reason).toBe('revocation_unavailable');
    } finally {
      await d.close();
    }
  }, 20_000);
});
