/** Shared setup for the local-auth route tests: PGlite records, memory hot state, a manual clock. */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { MemoryAuditSink } from '../../audit/sink.js';
import { createAead } from '../../core/aead.js';
import { ManualClock } from '../../core/clock.js';
import { defineRoute } from '../../http/route.js';
import { createTestHttpApp } from '../../http/testing.js';
import { SESSION_COOKIE } from '../../http/credentials.js';
import type { RecordStore } from '../../store/db/record-store.js';
import { openTestRecordStore } from '../../store/db/testing.js';
import { MemoryHotState } from '../../store/state/index.js';
import type { LocalAuthConfig } from './config.js';
import { createLocalAuth, type LocalAuth } from './local-auth.js';
import { TEST_ARGON2ID } from './password.js';
import { registerLocalAuthRoutes } from './routes.js';
import { cookieSessionAuthenticate, seedLocalUser, type SeededUser } from './testing.js';

export interface Harness {
  app: FastifyInstance;
  auth: LocalAuth;
  clock: ManualClock;
  hot: MemoryHotState;
  audit: MemoryAuditSink;
  store: RecordStore;
  seed(options?: Parameters<typeof seedLocalUser>[2]): Promise<SeededUser>;
  close(): Promise<void>;
}

/** What a harness may share with another (a second replica, or one store for a whole test file). */
export interface SharedParts {
  store?: RecordStore;
  hot?: MemoryHotState;
  clock?: ManualClock;
}

export async function createHarness(config: Partial<LocalAuthConfig> = {}, shared: SharedParts = {}): Promise<Harness> {
  const clock = shared.clock ?? new ManualClock(Date.UTC(2026, 2, 1, 9, 0, 5));
  const store = shared.store ?? (await openTestRecordStore());
  const hot = shared.hot ?? new MemoryHotState({ clock });
  const audit = new MemoryAuditSink();
  const auth = createLocalAuth({
    db: store.db,
    hot,
    audit,
    clock,
    aead: createAead({ activeKeyId: 'test', keys: { test: randomBytes(32) } }),
    config: { passwordHash: TEST_ARGON2ID, ...config },
  });
  const stop = await auth.start();
  const { app, registry } = createTestHttpApp({ authenticate: cookieSessionAuthenticate(auth.resolveSession) });
  registerLocalAuthRoutes(app, registry, auth);
  defineRoute(app, registry, { method: 'GET', url: '/api/test/me', summary: 'who am I', auth: 'required', handler: async ({ principal }) => principal });
  defineRoute(app, registry, { method: 'POST', url: '/api/test/write', summary: 'a write', auth: 'required', handler: async ({ principal }) => ({ by: principal.userId }) });
  await app.ready();
  return {
    app,
    auth,
    clock,
    hot,
    audit,
    store,
    seed: (options) => seedLocalUser(store.db, auth.passwords, options),
    async close() {
      await stop();
      await app.close();
      if (shared.hot === undefined) await hot.close();
      if (shared.store === undefined) await store.close();
    },
  };
}

/** The session token from a response's Set-Cookie, or null when it was cleared or absent. */
export function sessionTokenFrom(response: LightMyRequestResponse): string | null {
  const header = response.headers['set-cookie'];
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return null;
  const match = new RegExp(`^${SESSION_COOKIE}=([^;]*)`).exec(value);
  return match?.[1] ? match[1] : null;
}

export function setCookieHeader(response: LightMyRequestResponse): string {
  const header = response.headers['set-cookie'];
  return (Array.isArray(header) ? header[0] : header) ?? '';
}

export interface SignedIn {
  token: string;
  csrfToken: string;
  mfaRequired: boolean;
}

export async function login(app: FastifyInstance, email: string, password: string, ip = '127.0.0.1'): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/api/auth/login', payload: { email, password }, remoteAddress: ip });
}

export async function signIn(app: FastifyInstance, user: SeededUser): Promise<SignedIn> {
  const response = await login(app, user.email, user.password);
  if (response.statusCode !== 200) throw new Error(`sign-in failed: ${response.statusCode} ${response.body}`);
  const body = response.json<{ csrfToken: string; mfaRequired: boolean }>();
  const token = sessionTokenFrom(response);
  if (token === null) throw new Error('no session cookie');
  return { token, csrfToken: body.csrfToken, mfaRequired: body.mfaRequired };
}

export function cookie(token: string): Record<string, string> {
  return { cookie: `${SESSION_COOKIE}=${token}` };
}

export function withCsrf(session: SignedIn): Record<string, string> {
  return { ...cookie(session.token), 'x-csrf-token': session.csrfToken };
}
