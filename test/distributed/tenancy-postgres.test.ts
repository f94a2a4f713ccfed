/**
 * The "exactly one" rules of tenancy on real PostgreSQL, where transactions truly run side by side
 * (PGlite serializes them, so only a real server can prove the locks): concurrent demotions of an
 * org's owners leave exactly one owner, and concurrent first starts bootstrap exactly one platform
 * admin. Isolated in a unique schema, dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryAuditSink } from '../../src/audit/sink.js';
import { systemClock } from '../../src/core/clock.js';
import { AppError } from '../../src/core/errors.js';
import { newId } from '../../src/core/ids.js';
import { ApiKeySigner, DEFAULT_KEY_TTL_MS } from '../../src/identity/keys/index.js';
import type { Principal } from '../../src/identity/principal.js';
import { MembershipService, RecordingIdentityEvents, bootstrapPlatformAdmin, insertUser, type TenancyDeps } from '../../src/identity/tenancy/index.js';
import type { RecordStore } from '../../src/store/db/index.js';
import { openSharedSchema, type SharedSchema } from '../support/postgres.js';

const signer = new ApiKeySigner({
  secrets: new Map([['k1', new Uint8Array(randomBytes(32))]]),
  signingKid: 'k1',
  clock: systemClock,
  defaultTtlMs: DEFAULT_KEY_TTL_MS,
  maxTtlMs: DEFAULT_KEY_TTL_MS,
});

let schema: SharedSchema;
/** Several stores = several connection pools, like several replicas. */
let stores: RecordStore[] = [];

beforeAll(async () => {
  schema = await openSharedSchema('tenancy', 4);
  stores = schema.stores;
});

afterAll(async () => {
  await schema?.drop();
});

function depsFor(store: RecordStore): TenancyDeps {
  return { db: store.db, signer, events: new RecordingIdentityEvents(), audit: new MemoryAuditSink(), clock: systemClock };
}

function session(userId: string): Principal {
  return { kind: 'session', id: newId('ses'), userId, orgId: null, role: null, userType: 'registered', platformAdmin: false, scopes: [], ip: '127.0.0.1' };
}

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
}

describe('tenancy on PostgreSQL', () => {
  it('concurrent demotions and removals of owners never leave an org without one', async () => {
    const db = stores[0]!.db;
    for (let round = 0; round < 10; round++) {
      const owners = await Promise.all([0, 1, 2].map((i) => insertUser(db, { email: `o${i}-${round}@example.test` })));
      const orgId = newId('org');
      await db.insertInto('orgs').values({ id: orgId, name: 'race', slug: `race-${round}` }).execute();
      await db.insertInto('memberships').values(owners.map((o) => ({ org_id: orgId, user_id: o.id, role: 'owner' as const }))).execute();
      const [a, b, c] = owners.map((o) => o.id) as [string, string, string];
      // Every owner tries to get rid of the other owners and of themselves, through different pools.
      const attempts = [
        new MembershipService(depsFor(stores[0]!)).changeRole(session(a), orgId, b, 'admin'),
        new MembershipService(depsFor(stores[1]!)).changeRole(session(b), orgId, c, 'member'),
        new MembershipService(depsFor(stores[2]!)).changeRole(session(c), orgId, a, 'viewer'),
        new MembershipService(depsFor(stores[3]!)).remove(session(a), orgId, a),
        new MembershipService(depsFor(stores[1]!)).remove(session(c), orgId, c),
      ];
      const results = await Promise.all(attempts.map(outcome));
      for (const r of results) expect(['ok', 'last_owner', 'not_found', 'forbidden']).toContain(r);
      const left = await db.selectFrom('memberships').select('user_id').where('org_id', '=', orgId).where('role', '=', 'owner').execute();
      expect(left).toHaveLength(1);
      expect(results.filter((r) => r === 'last_owner').length).toBeGreaterThanOrEqual(1);
    }
  });

  it('concurrent first starts bootstrap exactly one platform admin', async () => {
    const results = await Promise.all(stores.map((s) => bootstrapPlatformAdmin(s.db, signer, { email: 'root@example.test' })));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const admins = await stores[0]!.db.selectFrom('users').select('id').where('platform_admin', '=', true).execute();
    expect(admins).toHaveLength(1);
  });
});
