/** Test harness for the broker's HTTP side: a record store with one org, an upstream on loopback, apps. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MemoryAuditSink } from '../../../audit/sink.js';
import { systemClock } from '../../../core/clock.js';
import { Secret } from '../../../config/secrets.js';
import type { Resolver } from '../../../egress/index.js';
import { createTestHttpApp, testPrincipal, type TestHttpAppOptions } from '../../../http/testing.js';
import type { Principal } from '../../../identity/principal.js';
import type { RecordStore } from '../../../store/db/record-store.js';
import type { HotState } from '../../../store/state/port.js';
import { keyring } from '../../testing/fixtures.js';
import { TrustedHops, type CapabilityRuntimeConfig } from '../config.js';
import { createCapabilityService, type CapabilityService } from '../index.js';

export const ORG = 'org_AAAAAAAAAAAAAAAA';
export const OTHER_ORG = 'org_BBBBBBBBBBBBBBBB';
export const ISSUER = 'usr_IIIIIIIIIIIIIIII';
export const AGENT_USER = 'usr_UUUUUUUUUUUUUUUU';
export const OUTSIDER = 'usr_OOOOOOOOOOOOOOOO';
export const UPSTREAM_SECRET = 'upstream-secret-value-0123456789abcdef';

export async function seedOrgs(store: RecordStore): Promise<void> {
  const db = store.db;
  await db.insertInto('orgs').values([
    { id: ORG, name: 'Org A', slug: 'org-a' },
    { id: OTHER_ORG, name: 'Org B', slug: 'org-b' },
  ]).execute();
  const user = (id: string) => ({ id, email: `${id.toLowerCase()}@example.test`, display_name: id, user_type: 'registered' as const, platform_admin: false, password_hash: null, pepper: 'p'.repeat(32), disabled: false });
  await db.insertInto('users').values([user(ISSUER), user(AGENT_USER), user(OUTSIDER)]).execute();
  await db.insertInto('memberships').values([
    { org_id: ORG, user_id: ISSUER, role: 'member' },
    { org_id: ORG, user_id: AGENT_USER, role: 'member' },
    { org_id: OTHER_ORG, user_id: OUTSIDER, role: 'member' },
  ]).execute();
}

export const principals: Record<string, Principal> = {
  issuer: testPrincipal({ userId: ISSUER, orgId: ORG, scopes: ['capabilities:issue'] }),
  plain: testPrincipal({ userId: AGENT_USER, orgId: ORG, scopes: ['models'] }),
  outsider: testPrincipal({ userId: OUTSIDER, orgId: OTHER_ORG, scopes: ['capabilities:issue', 'capabilities:redeem'] }),
  redeemer: testPrincipal({ userId: ISSUER, orgId: ORG, scopes: ['capabilities:redeem'] }),
};

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Upstream {
  origin: string;
  seen: SeenRequest[];
  close(): Promise<void>;
}

/** A loopback upstream: echoes, redirects to a metadata address on /redirect, streams on /slow. */
/** `/big` answers this many 64 KiB chunks. */
export const BIG_ANSWER_CHUNKS = 32;

export async function startUpstream(): Promise<Upstream> {
  const seen: SeenRequest[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (request.url?.startsWith('/redirect') === true) {
        response.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
        response.end();
        return;
      }
      // Never answers: for timeouts and abandoned calls.
      if (request.url?.startsWith('/hang') === true) return;
      // A large answer in many chunks, with a hop-by-hop header the proxy must not pass on.
      if (request.url?.startsWith('/big') === true) {
        response.writeHead(200, { 'content-type': 'application/octet-stream', 'x-upstream': 'yes', 'keep-alive': 'timeout=5' });
        for (let i = 0; i < BIG_ANSWER_CHUNKS; i += 1) response.write(Buffer.alloc(64 * 1024, i % 251));
        response.end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
      response.end(JSON.stringify({ ok: true, path: request.url }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // `/hang` leaves requests open that nothing else ends.
        server.closeAllConnections();
      }),
  };
}

export function runtimeConfig(overrides: Partial<CapabilityRuntimeConfig> = {}): CapabilityRuntimeConfig {
  const ring = keyring();
  return {
    keyring: ring,
    maxLifetimeMs: ring.maxLifetimeMs,
    credentials: new Map([['backend:service', new Secret(Buffer.from(UPSTREAM_SECRET), 'test')]]),
    devHttpHosts: ['127.0.0.1'],
    trustedHops: new TrustedHops(['127.0.0.1']),
    egress: { allowLoopback: true, allowPrivate: false, timeoutMs: 5000 },
    ...overrides,
  };
}

export interface Replica {
  service: CapabilityService;
  audit: MemoryAuditSink;
  app: ReturnType<typeof createTestHttpApp>['app'];
  close(): Promise<void>;
}

export async function startReplica(
  store: RecordStore,
  state: HotState,
  options: { config?: CapabilityRuntimeConfig; http?: TestHttpAppOptions; resolver?: Resolver; egressMaxBodyBytes?: number } = {},
): Promise<Replica> {
  const audit = new MemoryAuditSink();
  const service = createCapabilityService({
    ...(options.resolver === undefined ? {} : { resolver: options.resolver }),
    ...(options.egressMaxBodyBytes === undefined ? {} : { egressMaxBodyBytes: options.egressMaxBodyBytes }),
    config: options.config ?? runtimeConfig(),
    db: store.db,
    state,
    audit,
    clock: systemClock,
    heartbeatMs: 40,
    deafAfterMs: 400,
    resyncMs: 60_000,
  });
  await service.start();
  const { app, registry } = createTestHttpApp({ principals, ...options.http });
  await service.register(app, registry);
  await app.ready();
  return {
    service,
    audit,
    app,
    close: async () => {
      await app.close();
      await service.close();
    },
  };
}

export async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
