/** Builds the HTTP shell for route tests with a fixed principal per bearer token and a silent logger. */
import { Registry } from 'prom-client';
import { createLogger } from '../core/logger.js';
import { anonymousPrincipal, type Principal } from '../identity/principal.js';
import { createHttpApp, type Authenticate, type HttpApp } from './app.js';

export interface TestHttpAppOptions {
  /** Bearer token → principal. Any other bearer token is refused as invalid. */
  principals?: Record<string, Principal>;
  authenticate?: Authenticate;
  bodyLimitBytes?: number;
  requestTimeoutMs?: number;
}

export function createTestHttpApp(options: TestHttpAppOptions = {}): HttpApp {
  const principals = options.principals ?? {};
  const authenticate: Authenticate =
    options.authenticate ??
    (async (credential, context) => {
      if (credential === null) return { ok: true, principal: context.allowAnonymous ? anonymousPrincipal(context.ip) : null };
      const principal = principals[credential.token];
      return principal === undefined ? { ok: false, code: 'invalid_token' } : { ok: true, principal };
    });
  return createHttpApp({
    logger: createLogger({ level: 'silent' }),
    bodyLimitBytes: options.bodyLimitBytes ?? 1024 * 1024,
    ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
    trustedProxies: [],
    behindTls: false,
    authenticate,
    readiness: async () => ({ ready: true, checks: {} }),
    metrics: new Registry(),
    version: 'test',
  });
}

/** A member principal for tests. */
export function testPrincipal(overrides: Partial<Principal> & Pick<Principal, 'userId' | 'orgId'>): Principal {
  return {
    kind: 'api_key',
    id: overrides.keyId ?? overrides.userId ?? 'usr_test',
    role: 'member',
    userType: 'registered',
    platformAdmin: false,
    scopes: [],
    ip: '127.0.0.1',
    ...overrides,
  };
}
