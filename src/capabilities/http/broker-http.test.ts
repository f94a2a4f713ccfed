import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import type { RecordStore } from '../../store/db/record-store.js';
import { openTestRecordStore } from '../../store/db/testing.js';
import { MemoryHotState } from '../../store/state/index.js';
import type { HotState } from '../../store/state/port.js';
import type { CapabilityGrant } from '../claims.js';
import type { Resolver } from '../../egress/index.js';
import { AGENT_USER, ORG, OTHER_ORG, UPSTREAM_SECRET, runtimeConfig, seedOrgs, startReplica, startUpstream, waitFor, type Replica, type Upstream } from './testing/harness.js';

const SESSION = 'ses_AAAAAAAAAAAAAAAA';
const OTHER_SESSION = 'ses_BBBBBBBBBBBBBBBB';
const CONTAINER = 'ctr-1';

let store: RecordStore;
let state: MemoryHotState;
let upstream: Upstream;
let a: Replica;
let b: Replica;

function grants(origin: string, session = SESSION): CapabilityGrant[] {
  const credential = { ref: 'backend:service', header: 'authorization', scheme: 'Bearer' };
  return [
    { name: 'ingest', origin, methods: ['POST'], pathPrefixes: [`/api/sessions/${session}/events`], credential, routeClass: 'session_ingest' },
    { name: 'backend', origin, methods: ['GET', 'POST'], pathPrefixes: ['/'], credential, routeClass: 'backend_api' },
  ];
}

async function issue(replica: Replica, overrides: Record<string, unknown> = {}, as = 'issuer', org = ORG): Promise<LightMyRequestResponse> {
  return replica.app.inject({
    method: 'POST',
    url: `/api/orgs/${org}/capabilities`,
    headers: { authorization: `Bearer ${as}` },
    payload: { userId: AGENT_USER, sessionId: SESSION, binding: { type: 'container', containerId: CONTAINER }, grants: grants(upstream.origin), ...overrides },
  });
}

async function token(replica: Replica, overrides: Record<string, unknown> = {}): Promise<{ token: string; capabilityId: string }> {
  const response = await issue(replica, overrides);
  expect(response.statusCode).toBe(201);
  return response.json<{ token: string; capabilityId: string }>();
}

function egress(replica: Replica, capability: string, path: string, options: { container?: string; peer?: string; method?: 'GET' | 'POST'; body?: string } = {}) {
  return replica.app.inject({
    method: options.method ?? 'GET',
    url: `/egress/${path}`,
    headers: { authorization: `Bearer ${capability}`, ...(options.container === undefined ? {} : { 'x-portcullis-container': options.container }), ...(options.body === undefined ? {} : { 'content-type': 'text/plain' }) },
    ...(options.body === undefined ? {} : { payload: options.body }),
    remoteAddress: options.peer ?? '127.0.0.1',
  });
}

/** Over a real socket: the path reaches the gateway byte for byte (inject would normalise it). */
async function rawEgress(replica: Replica, capability: string, path: string, method: string): Promise<{ statusCode: number; body: string }> {
  const address = replica.app.server.listening ? replica.app.server.address() : null;
  const port = address !== null && typeof address === 'object' ? address.port : Number(new URL(await replica.app.listen({ port: 0, host: '127.0.0.1' })).port);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: '127.0.0.1', port, method, path: `/egress/${path}`, headers: { authorization: `Bearer ${capability}`, 'x-portcullis-container': CONTAINER } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ statusCode: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

function errorOf(response: { body: string }): { code: string; reason?: string } {
  return (JSON.parse(response.body) as { error: { code: string; reason?: string } }).error;
}

beforeAll(async () => {
  store = await openTestRecordStore();
  await seedOrgs(store);
  state = new MemoryHotState();
  upstream = await startUpstream();
  a = await startReplica(store, state);
  b = await startReplica(store, state);
  await waitFor(() => a.service.revocations.fresh() && b.service.revocations.fresh());
}, 60_000);

afterAll(async () => {
  await a?.close();
  await b?.close();
  await upstream?.close();
  await state?.close();
  await store?.close();
});

describe('issuing', () => {
  it('answers the token and expiry, and audits without the token', async () => {
    const response = await issue(a);
    expect(response.statusCode).toBe(201);
    const body = response.json<{ token: string; capabilityId: string; expiresAt: string }>();
    expect(body.token.startsWith('pcap1.')).toBe(true);
    expect(Date.parse(body.expiresAt)).toBeGreaterThan(Date.now());
    const event = a.audit.events.find((e) => e.action === 'capability.issue' && e.target === body.capabilityId);
    expect(event?.outcome).toBe('success');
    expect(JSON.stringify(a.audit.events)).not.toContain(body.token);
  });

  it('refuses without the issuing scope, across orgs, and for users of another org', async () => {
    expect((await issue(a, {}, 'plain')).statusCode).toBe(403);
    expect((await issue(a, {}, 'outsider')).statusCode).toBe(404);
    expect((await issue(a, { userId: 'usr_OOOOOOOOOOOOOOOO' })).statusCode).toBe(404);
    expect((await issue(a, {}, 'issuer', OTHER_ORG)).statusCode).toBe(404);
  });

  it('validates targets: https only except dev hosts, no userinfo/query/fragment, known credentials', async () => {
    const base = grants(upstream.origin)[1] as CapabilityGrant;
    for (const origin of ['http://example.com', 'https://user@example.com', 'https://example.com/?q=1', 'https://example.com#x', 'ftp://example.com']) {
      const response = await issue(a, { grants: [{ ...base, origin }] });
      expect(response.statusCode, origin).toBe(400);
    }
    const unknownRef = await issue(a, { grants: [{ ...base, credential: { ref: 'nope', header: 'authorization' } }] });
    expect(unknownRef.statusCode).toBe(400);
    expect((await issue(a, { grants: [{ ...base, origin: 'https://api.example.com' }] })).statusCode).toBe(201);
  });
});

describe('egress proxy', () => {
  it('forwards with the injected credential; the client never sees it', async () => {
    const { token: capability } = await token(a);
    const before = upstream.seen.length;
    const response = await egress(a, capability, 'backend/api/items?page=2', { container: CONTAINER });
    expect(response.statusCode).toBe(200);
    expect(response.headers['x-upstream']).toBe('yes');
    expect(response.body).not.toContain(UPSTREAM_SECRET);
    const seen = upstream.seen[before];
    expect(seen?.url).toBe('/api/items?page=2');
    expect(seen?.headers.authorization).toBe(`Bearer ${UPSTREAM_SECRET}`);
    expect(JSON.stringify(seen?.headers)).not.toContain(capability);
    expect(seen?.headers['x-portcullis-container']).toBeUndefined();

    const posted = await egress(a, capability, `ingest/api/sessions/${SESSION}/events`, { container: CONTAINER, method: 'POST', body: 'hello' });
    expect(posted.statusCode).toBe(200);
    expect(upstream.seen.at(-1)?.body).toBe('hello');
  });

  it('ignores the container header from an untrusted peer, refuses another container', async () => {
    const { token: capability } = await token(a);
    const untrusted = await egress(a, capability, 'backend/x', { container: CONTAINER, peer: '10.9.9.9' });
    expect(untrusted.statusCode).toBe(403);
    expect(errorOf(untrusted)).toMatchObject({ code: 'capability_binding_failed', reason: 'binding_missing' });
    const other = await egress(a, capability, 'backend/x', { container: 'ctr-2' });
    expect(other.statusCode).toBe(401);
    expect(errorOf(other)).toMatchObject({ code: 'capability_invalid', reason: 'invalid' });
    expect(a.audit.events.filter((e) => e.action === 'capability.redeem' && e.outcome === 'denied').length).toBeGreaterThanOrEqual(2);
  });

  it('passes a redirect back without following it', async () => {
    const { token: capability } = await token(a);
    const before = upstream.seen.length;
    const response = await egress(a, capability, 'backend/redirect', { container: CONTAINER });
    expect(response.statusCode).toBe(302);
    expect(response.headers.location).toBe('http://169.254.169.254/latest/meta-data/');
    expect(upstream.seen.length).toBe(before + 1);
  });

  it('refuses the attack corpus with typed reasons, never a 500', async () => {
    const { token: capability } = await token(a);
    const [prefix, kid, body] = capability.split('.') as [string, string, string];
    const flipped = `${prefix}.${kid}.${body.slice(0, 10)}${body[10] === 'A' ? 'B' : 'A'}${body.slice(11)}`;
    const cases: Array<[string, string, string]> = [
      [flipped, 'backend/x', 'invalid'],
      [capability, `backend/api/sessions/${OTHER_SESSION}/events`, 'other_session'],
      [capability, `ingest/api/sessions/${OTHER_SESSION}/events`, 'other_session'],
      [capability, 'backend/%2e%2e/admin', 'path_dot_segment'],
      [capability, 'backend/..%2fadmin', ''],
      [capability, 'backend/%252e%252e/admin', ''],
      [capability, 'backend/a%25252525252fb', ''],
      [capability, 'backend/%5c..%5cadmin', ''],
      [capability, 'backend/a%00b', ''],
      [capability, 'nosuchgrant/x', 'unknown_grant'],
      ['not-a-capability', 'backend/x', 'malformed'],
    ];
    for (const [presented, path, reason] of cases) {
      const response = await rawEgress(a, presented, path, path.includes('/events') ? 'POST' : 'GET');
      expect(response.statusCode, path).toBeGreaterThanOrEqual(400);
      expect(response.statusCode, path).toBeLessThan(500);
      const error = errorOf(response);
      expect(typeof error.code, path).toBe('string');
      if (reason !== '') expect(error.reason, path).toBe(reason);
    }
  });

  it('refuses a 70,000-character token before decoding', async () => {
    const response = await egress(a, 'pcap1.k1.' + 'A'.repeat(70_000), 'backend/x', { container: CONTAINER });
    expect(response.statusCode).toBe(401);
    expect(errorOf(response)).toMatchObject({ code: 'capability_invalid', reason: 'too_large' });
  });

  it('looks a named upstream up when a connection opens, not on every request', async () => {
    const lookups: string[] = [];
    const resolver: Resolver = async (name) => {
      lookups.push(name);
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const named = await startReplica(store, state, { config: runtimeConfig({ devHttpHosts: ['127.0.0.1', 'upstream.test'] }), resolver });
    try {
      await waitFor(() => named.service.revocations.fresh());
      const { token: capability } = await token(named, { grants: grants(upstream.origin.replace('127.0.0.1', 'upstream.test')) });
      const requests = 12;
      for (let i = 0; i < requests; i += 1) expect((await egress(named, capability, 'backend/x', { container: CONTAINER })).statusCode).toBe(200);
      // Once per connection the agent opens (two here, as a rule), never once per request.
      expect(lookups.length).toBeGreaterThanOrEqual(1);
      expect(lookups.length).toBeLessThan(requests / 3);
      expect(new Set(lookups)).toEqual(new Set(['upstream.test']));
    } finally {
      await named.close();
    }
  });

  it('refuses, when connecting, a name that resolves to loopback when the operator did not allow it: audited, nothing sent', async () => {
    const resolver: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];
    const strict = await startReplica(store, state, { config: runtimeConfig({ devHttpHosts: ['127.0.0.1', 'upstream.test'], egress: { allowLoopback: false, allowPrivate: false, timeoutMs: 5000 } }), resolver });
    try {
      await waitFor(() => strict.service.revocations.fresh());
      const { token: capability, capabilityId } = await token(strict, { grants: grants(upstream.origin.replace('127.0.0.1', 'upstream.test')) });
      const sent = upstream.seen.length;
      const response = await egress(strict, capability, 'backend/x', { container: CONTAINER });
      expect(response.statusCode).toBe(403);
      expect(errorOf(response)).toMatchObject({ code: 'egress_refused', reason: 'address_refused' });
      expect(upstream.seen).toHaveLength(sent);
      expect(strict.audit.events.at(-1)).toMatchObject({ action: 'capability.redeem', target: capabilityId, outcome: 'denied', details: { channel: 'egress', grant: 'backend', reason: 'egress_address_refused' } });
    } finally {
      await strict.close();
    }
  });

  it('refuses a loopback upstream when the operator did not allow it', async () => {
    const strict = await startReplica(store, state, { config: runtimeConfig({ egress: { allowLoopback: false, allowPrivate: false, timeoutMs: 5000 } }) });
    try {
      await waitFor(() => strict.service.revocations.fresh());
      const { token: capability } = await token(strict);
      const response = await egress(strict, capability, 'backend/x', { container: CONTAINER });
      expect(response.statusCode).toBe(403);
      expect(errorOf(response)).toMatchObject({ code: 'egress_refused', reason: 'address_refused' });
    } finally {
      await strict.close();
    }
  });
});

describe('revocation', () => {
  it.each(['capability', 'session', 'container'] as const)('by %s on one replica is refused by the other within 1 s', async (kind) => {
    const sessionId = `ses_rev_${kind}`;
    const containerId = `ctr-rev-${kind}`;
    const issued = await token(a, { sessionId, binding: { type: 'container', containerId }, grants: grants(upstream.origin, sessionId) });
    expect((await egress(b, issued.token, 'backend/x', { container: containerId })).statusCode).toBe(200);
    const target = kind === 'capability' ? { capabilityId: issued.capabilityId } : kind === 'session' ? { sessionId } : { containerId };
    const revoked = await a.app.inject({ method: 'POST', url: `/api/orgs/${ORG}/capabilities/revoke`, headers: { authorization: 'Bearer issuer' }, payload: target });
    expect(revoked.statusCode).toBe(200);
    const started = Date.now();
    let status = 0;
    while (Date.now() - started < 1000) {
      const response = await egress(b, issued.token, 'backend/x', { container: containerId });
      status = response.statusCode;
      if (status === 401) {
        expect(errorOf(response)).toMatchObject({ code: 'capability_revoked', reason: 'revoked' });
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(status).toBe(401);
    expect(a.audit.events.some((e) => e.action === 'capability.revoke' && e.target === (kind === 'capability' ? issued.capabilityId : kind === 'session' ? sessionId : containerId))).toBe(true);
  });

  it('another org cannot revoke (404) and revoking needs the issuing scope', async () => {
    const other = await a.app.inject({ method: 'POST', url: `/api/orgs/${ORG}/capabilities/revoke`, headers: { authorization: 'Bearer outsider' }, payload: { sessionId: SESSION } });
    expect(other.statusCode).toBe(404);
    const plain = await a.app.inject({ method: 'POST', url: `/api/orgs/${ORG}/capabilities/revoke`, headers: { authorization: 'Bearer plain' }, payload: { sessionId: SESSION } });
    expect(plain.statusCode).toBe(403);
  });

  it('fails closed with 503 when the revocation state cannot be read', async () => {
    let broken = false;
    const flaky = new Proxy(state, {
      get(target, property, receiver) {
        if (property === 'publish') {
          return async (channel: string, message: string) => {
            if (broken) throw new Error('hot state unreachable');
            return target.publish(channel, message);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    }) as HotState;
    const replica = await startReplica(store, flaky);
    try {
      await waitFor(() => replica.service.revocations.fresh());
      const { token: capability } = await token(replica);
      expect((await egress(replica, capability, 'backend/x', { container: CONTAINER })).statusCode).toBe(200);
      broken = true;
      await waitFor(() => !replica.service.revocations.fresh());
      const response = await egress(replica, capability, 'backend/x', { container: CONTAINER });
      expect(response.statusCode).toBe(503);
      expect(errorOf(response)).toMatchObject({ code: 'dependency_unavailable', reason: 'revocation_unavailable' });
      // Revoking while the broadcast fails is refused (retry later), not silently half-done.
      const revoke = await replica.app.inject({ method: 'POST', url: `/api/orgs/${ORG}/capabilities/revoke`, headers: { authorization: 'Bearer issuer' }, payload: { containerId: 'ctr-x' } });
      expect(revoke.statusCode).toBe(503);
      broken = false;
      await waitFor(() => replica.service.revocations.fresh());
      expect((await egress(replica, capability, 'backend/x', { container: CONTAINER })).statusCode).toBe(200);
    } finally {
      await replica.close();
    }
  });
});

describe('redeem route', () => {
  function redeem(as: string, payload: Record<string, unknown>) {
    return a.app.inject({ method: 'POST', url: '/api/capabilities/redeem', headers: { authorization: `Bearer ${as}` }, payload });
  }

  it('answers the authorization to inject and the route class', async () => {
    const { token: capability } = await token(a);
    const response = await redeem('redeemer', { capability, containerId: CONTAINER, method: 'GET', url: `${upstream.origin}/api/items` });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ authorization: { header: 'authorization', value: `Bearer ${UPSTREAM_SECRET}` }, routeClass: 'backend_api', grant: { name: 'backend' } });
  });

  it('refuses with typed reasons', async () => {
    const { token: capability } = await token(a);
    const cases: Array<[string, Record<string, unknown>, number, string | undefined]> = [
      ['plain', { capability, containerId: CONTAINER, method: 'GET', url: `${upstream.origin}/x` }, 403, undefined],
      ['outsider', { capability, containerId: CONTAINER, method: 'GET', url: `${upstream.origin}/x` }, 401, 'invalid'],
      ['redeemer', { capability, containerId: 'ctr-2', method: 'GET', url: `${upstream.origin}/x` }, 401, 'invalid'],
      ['redeemer', { capability, method: 'GET', url: `${upstream.origin}/x` }, 403, 'binding_missing'],
      ['redeemer', { capability, containerId: CONTAINER, method: 'DELETE', url: `${upstream.origin}/x` }, 403, 'method_not_allowed'],
      ['redeemer', { capability, containerId: CONTAINER, method: 'GET', url: 'http://evil.test/x' }, 403, 'host_mismatch'],
      ['redeemer', { capability, containerId: CONTAINER, method: 'GET', url: `${upstream.origin.replace('//', '//user@')}/x` }, 403, 'userinfo'],
      ['redeemer', { capability, containerId: CONTAINER, method: 'GET', url: `${upstream.origin}/%252e%252e/x` }, 403, undefined],
    ];
    for (const [as, payload, status, reason] of cases) {
      const response = await redeem(as, payload);
      expect(response.statusCode, `${as} ${JSON.stringify(payload.url)}`).toBe(status);
      if (reason !== undefined) expect(errorOf(response).reason).toBe(reason);
    }
  });
});

describe('model gateway hook', () => {
  it('turns a capability with a model grant into a principal of its user; refuses one without', async () => {
    const modelGrant = { name: 'models', origin: 'https://models.example.com', methods: ['POST'], pathPrefixes: ['/v1/'], credential: { ref: 'backend:service', header: 'authorization', scheme: 'Bearer' }, routeClass: 'org_models' };
    const withModels = await token(a, { grants: [modelGrant] });
    const headers = { 'x-portcullis-container': CONTAINER };
    const url = 'http://gateway.test/v1/chat/completions';
    const adminApi = await a.service.capabilityPrincipal(withModels.token, { ip: '10.0.0.5', method: 'GET', headers, peerAddress: '127.0.0.1', url: 'http://gateway.test/api/me' });
    expect(adminApi).toEqual({ ok: false, code: 'route_refused' });
    const ok = await a.service.capabilityPrincipal(withModels.token, { ip: '10.0.0.5', method: 'POST', headers, peerAddress: '127.0.0.1', url });
    expect(ok).toMatchObject({ ok: true, principal: { kind: 'capability', userId: AGENT_USER, orgId: ORG, scopes: ['models'], capabilityId: withModels.capabilityId, sessionId: SESSION } });
    const untrustedPeer = await a.service.capabilityPrincipal(withModels.token, { ip: '10.0.0.5', method: 'POST', headers, peerAddress: '10.0.0.5', url });
    expect(untrustedPeer).toEqual({ ok: false, code: 'capability_binding_failed' });
    const backendOnly = await token(a);
    const refused = await a.service.capabilityPrincipal(backendOnly.token, { ip: '10.0.0.5', method: 'POST', headers, peerAddress: '127.0.0.1', url });
    expect(refused).toEqual({ ok: false, code: 'route_refused' });
  });
});
