/**
 * Two identity caches — two replicas — sharing real Redis pub/sub and real PostgreSQL: a key
 * revoked, a pepper rotated, a member demoted through one is refused (or narrowed) by the other
 * within 1 s. Isolated by a unique Redis prefix and a unique PostgreSQL schema, both removed after.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { createAuthenticator, type Authenticator } from '../../src/identity/authenticate.js';
import { IdentityCache, IdentityEvents, createDbIdentityRecords } from '../../src/identity/cache/index.js';
import { ApiKeySigner, ApiKeyVerifier, DEFAULT_KEY_TTL_MS } from '../../src/identity/keys/index.js';
import type { RecordStore } from '../../src/store/db/index.js';
import { RedisHotState } from '../../src/store/state/redis/redis-hot-state.js';
import { openSharedSchema, type SharedSchema } from '../support/postgres.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = randomBytes(5).toString('hex');
const SECRETS = new Map([['k1', new Uint8Array(randomBytes(32))]]);
const ctx = { ip: '198.51.100.7', allowAnonymous: false };

let schema: SharedSchema;
let storeA: RecordStore;
let storeB: RecordStore;
let redisA: RedisHotState;
let redisB: RedisHotState;
let cacheA: IdentityCache;
let cacheB: IdentityCache;
let events: IdentityEvents;
let authB: Authenticator;
const signer = new ApiKeySigner({ secrets: SECRETS, signingKid: 'k1', clock: systemClock, defaultTtlMs: DEFAULT_KEY_TTL_MS, maxTtlMs: DEFAULT_KEY_TTL_MS });

beforeAll(async () => {
  schema = await openSharedSchema('identity_revocation', 2);
  [storeA, storeB] = schema.stores as [RecordStore, RecordStore];
  redisA = await RedisHotState.connect({ url: REDIS_URL, prefix: `t${run}` });
  redisB = await RedisHotState.connect({ url: REDIS_URL, prefix: `t${run}` });
  cacheA = new IdentityCache({ records: createDbIdentityRecords(storeA.db), pubsub: redisA, clock: systemClock });
  cacheB = new IdentityCache({ records: createDbIdentityRecords(storeB.db), pubsub: redisB, clock: systemClock });
  await Promise.all([cacheA.start(), cacheB.start()]);
  events = new IdentityEvents({ records: createDbIdentityRecords(storeA.db), pubsub: redisA, clock: systemClock, cache: cacheA });
  authB = createAuthenticator({ keys: new ApiKeyVerifier({ secrets: SECRETS, clock: systemClock, isRevoked: (id) => cacheB.isRevoked(id) }), identity: cacheB });

  await storeA.db.insertInto('orgs').values({ id: 'org_r', name: 'R', slug: 'r' }).execute();
  for (const id of ['usr_r1', 'usr_r2', 'usr_r3']) {
    await storeA.db
      .insertInto('users')
      .values({ id, email: `${id}@example.test`, display_name: '', user_type: 'registered', platform_admin: false, password_hash: null, pepper: `pepper-${id}-${run}`, disabled: false })
      .execute();
    await storeA.db.insertInto('memberships').values({ org_id: 'org_r', user_id: id, role: 'admin' }).execute();
  }
});

afterAll(async () => {
  await Promise.allSettled([cacheA?.stop(), cacheB?.stop()]);
  await Promise.allSettled([redisA?.close(), redisB?.close()]);
  await schema?.drop();
});

async function keyFor(userId: string, keyId: string): Promise<string> {
  const { pepper } = await storeA.db.selectFrom('users').select('pepper').where('id', '=', userId).executeTakeFirstOrThrow();
  return (await signer.sign({ keyId, userId, orgId: 'org_r', scopes: [], pepper })).token;
}

async function msUntil(check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > 2000) throw new Error('not propagated within 2 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return Date.now() - started;
}

const codeOf = async (token: string): Promise<string> => {
  const result = await authB({ source: 'bearer', token }, ctx);
  return result.ok ? `ok:${result.principal?.role ?? 'none'}` : result.code;
};

describe('identity propagation over real Redis and PostgreSQL', () => {
  it('a key revoked on replica A is refused on replica B within 1 s', async () => {
    const key = await keyFor('usr_r1', 'key_r1');
    expect(await codeOf(key)).toBe('ok:admin');
    await events.revokeKey('key_r1', new Date(Date.now() + 60_000));
    expect(await msUntil(async () => (await codeOf(key)) === 'token_revoked')).toBeLessThan(1000);
  });

  it('a pepper rotated on replica A kills the user keys on replica B within 1 s', async () => {
    const key = await keyFor('usr_r2', 'key_r2');
    expect(await codeOf(key)).toBe('ok:admin');
    await events.rotatePepper('usr_r2');
    expect(await msUntil(async () => (await codeOf(key)) === 'token_revoked')).toBeLessThan(1000);
  });

  it('a demotion on replica A narrows the key on replica B within 1 s', async () => {
    const key = await keyFor('usr_r3', 'key_r3');
    expect(await codeOf(key)).toBe('ok:admin');
    await storeA.db.updateTable('memberships').set({ role: 'viewer' }).where('user_id', '=', 'usr_r3').execute();
    await events.membershipChanged('org_r', 'usr_r3');
    expect(await msUntil(async () => (await codeOf(key)) === 'ok:viewer')).toBeLessThan(1000);
  });

  it('a replica started later loads the deny-list from PostgreSQL', async () => {
    const late = new IdentityCache({ records: createDbIdentityRecords(storeB.db), pubsub: redisB, clock: systemClock });
    await late.start();
    expect(late.isRevoked('key_r1')).toBe(true);
    await late.stop();
  });
});
