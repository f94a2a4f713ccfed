/**
 * Test wiring for tenancy: a fresh in-memory record store, a real key signer and verifier, the
 * real identity cache + events + authenticator over an in-process bus, and a memory audit sink.
 * Demotion and removal tests therefore go through exactly the code a request goes through.
 */
import { MemoryAuditSink } from '../../audit/sink.js';
import { ManualClock } from '../../core/clock.js';
import type { Credential } from '../../http/credentials.js';
import type { RecordStore } from '../../store/db/index.js';
import { openTestRecordStore } from '../../store/db/testing.js';
import { createAuthenticator, type AuthenticateResult, type Authenticator } from '../authenticate.js';
import { IdentityCache, IdentityEvents, createDbIdentityRecords } from '../cache/index.js';
import { TestBus } from '../cache/testing.js';
import { ApiKeySigner, ApiKeyVerifier, DEFAULT_KEY_TTL_MS } from '../keys/index.js';
import type { Principal } from '../principal.js';
import type { OrgRole, UserType } from '../../store/db/schema.js';
import type { TenancyDeps } from './ports.js';
import { insertUser } from './users.js';
import { newId } from '../../core/ids.js';

export interface TenancyHarness {
  store: RecordStore;
  deps: TenancyDeps;
  audit: MemoryAuditSink;
  clock: ManualClock;
  cache: IdentityCache;
  authenticate(token: string): Promise<AuthenticateResult>;
  /** The real authenticator, for the HTTP shell in route tests. */
  authenticator: Authenticator;
  close(): Promise<void>;
}

const SECRET = new Uint8Array(32).fill(7);

export async function openTenancyHarness(): Promise<TenancyHarness> {
  const store = await openTestRecordStore();
  // Real time: the store's now() defaults and the signer's iat must agree for the verifier.
  const clock = new ManualClock(Date.now());
  const secrets = new Map([['k1', SECRET]]);
  const signer = new ApiKeySigner({ secrets, signingKid: 'k1', clock, defaultTtlMs: DEFAULT_KEY_TTL_MS, maxTtlMs: 90 * 24 * 3600_000 });
  const bus = new TestBus();
  const records = createDbIdentityRecords(store.db);
  const cache = new IdentityCache({ records, pubsub: bus, clock, heartbeatMs: 0 });
  await cache.start();
  const verifier = new ApiKeyVerifier({ secrets, clock, isRevoked: (id) => cache.isRevoked(id) });
  const events = new IdentityEvents({ records, pubsub: bus, clock, cache });
  const audit = new MemoryAuditSink();
  const authenticator = createAuthenticator({ keys: verifier, identity: cache });
  return {
    store,
    deps: { db: store.db, signer, events, audit, clock },
    audit,
    clock,
    cache,
    authenticator,
    authenticate: async (token) => authenticator({ source: 'bearer', token } satisfies Credential, { ip: '127.0.0.1', allowAnonymous: false }),
    async close() {
      await cache.stop();
      await store.close();
    },
  };
}

/** Inserts a user straight into the store and returns a session principal for them. */
export async function seedUser(h: TenancyHarness, email: string, opts: { platformAdmin?: boolean; userType?: UserType } = {}): Promise<Principal> {
  const user = await insertUser(h.store.db, { email, ...opts });
  return {
    kind: 'session',
    id: newId('ses'),
    userId: user.id,
    orgId: null,
    role: null,
    userType: user.userType,
    platformAdmin: user.platformAdmin,
    scopes: [],
    ip: '127.0.0.1',
  };
}

export async function seedOrg(h: TenancyHarness, members: Array<[Principal, OrgRole]>): Promise<string> {
  const id = newId('org');
  await h.store.db.insertInto('orgs').values({ id, name: id, slug: id.toLowerCase().replace(/[^a-z0-9]/g, '-') }).execute();
  for (const [p, role] of members) {
    if (p.userId === null) throw new Error('seedOrg needs users');
    await h.store.db.insertInto('memberships').values({ org_id: id, user_id: p.userId, role }).execute();
  }
  return id;
}
