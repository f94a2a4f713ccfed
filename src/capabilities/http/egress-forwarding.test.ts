/**
 * What the egress proxy forwards and relays, over real sockets: request bodies byte for byte
 * (small declared ones read whole, large and chunked ones streamed) under the body limit, the
 * upstream's answer streamed back with its hop-by-hop headers removed and the shell's headers kept,
 * and the typed refusals when the upstream cannot be reached or does not answer in time.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordStore } from '../../store/db/record-store.js';
import { openTestRecordStore } from '../../store/db/testing.js';
import { MemoryHotState } from '../../store/state/index.js';
import type { CapabilityGrant } from '../claims.js';
import { AGENT_USER, BIG_ANSWER_CHUNKS, ORG, UPSTREAM_SECRET, runtimeConfig, seedOrgs, startReplica, startUpstream, waitFor, type Replica, type Upstream } from './testing/harness.js';

const SESSION = 'ses_AAAAAAAAAAAAAAAA';
const CONTAINER = 'ctr-1';
const LIMIT = 256 * 1024;

let store: RecordStore;
let state: MemoryHotState;
let upstream: Upstream;
let replica: Replica;
let url: string;

function grant(origin: string): CapabilityGrant {
  return { name: 'backend', origin, methods: ['GET', 'POST'], pathPrefixes: ['/'], credential: { ref: 'backend:service', header: 'authorization', scheme: 'Bearer' }, routeClass: 'backend_api' };
}

async function capabilityFor(target: Replica, origin: string): Promise<string> {
  const response = await target.app.inject({
    method: 'POST',
    url: `/api/orgs/${ORG}/capabilities`,
    headers: { authorization: 'Bearer issuer' },
    payload: { userId: AGENT_USER, sessionId: SESSION, binding: { type: 'container', containerId: CONTAINER }, grants: [grant(origin)] },
  });
  expect(response.statusCode).toBe(201);
  return response.json<{ token: string }>().token;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One call through the proxy; `chunks` are written one by one, with a declared length or chunked. */
function send(base: string, capability: string, path: string, options: { method?: string; chunks?: Buffer[]; declareLength?: boolean } = {}): Promise<Answer> {
  const chunks = options.chunks ?? [];
  const length = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const target = new URL(`/egress/backend${path}`, base);
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: options.method ?? (chunks.length > 0 ? 'POST' : 'GET'),
        path: target.pathname,
        headers: {
          authorization: `Bearer ${capability}`,
          'x-portcullis-container': CONTAINER,
          ...(chunks.length > 0 ? { 'content-type': 'application/octet-stream' } : {}),
          ...(chunks.length > 0 && options.declareLength !== false ? { 'content-length': String(length) } : {}),
        },
      },
      (response) => {
        const received: Buffer[] = [];
        response.on('data', (chunk: Buffer) => received.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(received) }));
        response.on('error', reject);
      },
    );
    // A refused upload may be cut off by the proxy before it is all written.
    outgoing.on('error', reject);
    for (const chunk of chunks) outgoing.write(chunk);
    outgoing.end();
  });
}

const errorOf = (answer: Answer): { code: string; reason?: string } => (JSON.parse(answer.body.toString('utf8')) as { error: { code: string; reason?: string } }).error;
const filled = (bytes: number, seed: number): Buffer => Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 31 + seed) % 256));

beforeAll(async () => {
  store = await openTestRecordStore();
  await seedOrgs(store);
  state = new MemoryHotState();
  upstream = await startUpstream();
  replica = await startReplica(store, state, { egressMaxBodyBytes: LIMIT });
  await waitFor(() => replica.service.revocations.fresh());
  url = await replica.app.listen({ host: '127.0.0.1', port: 0 });
}, 60_000);

afterAll(async () => {
  await replica?.close();
  await upstream?.close();
  await state?.close();
  await store?.close();
});

describe('egress proxy forwarding', () => {
  it('forwards small, large and chunked bodies byte for byte, with the credential injected', async () => {
    const capability = await capabilityFor(replica, upstream.origin);
    const cases: { name: string; chunks: Buffer[]; declareLength: boolean }[] = [
      { name: 'empty, declared', chunks: [Buffer.alloc(0)], declareLength: true },
      { name: 'small, declared', chunks: [Buffer.from('hello')], declareLength: true },
      { name: 'large, declared, in pieces', chunks: [filled(100_000, 1), filled(100_000, 2)], declareLength: true },
      { name: 'chunked', chunks: [filled(70_000, 3), Buffer.from('-'), filled(30_000, 4)], declareLength: false },
    ];
    for (const { name, chunks, declareLength } of cases) {
      const before = upstream.seen.length;
      const answer = await send(url, capability, '/api/items', { chunks, declareLength });
      expect(answer.status, name).toBe(200);
      const seen = upstream.seen[before];
      expect(seen?.body, name).toBe(Buffer.concat(chunks).toString('utf8'));
      expect(seen?.headers.authorization, name).toBe(`Bearer ${UPSTREAM_SECRET}`);
      expect(JSON.stringify(seen?.headers), name).not.toContain(capability);
    }
  });

  it('refuses a body over the limit: a declared one before anything is sent, a chunked one once it passes the limit', async () => {
    const capability = await capabilityFor(replica, upstream.origin);
    const before = upstream.seen.length;
    const declared = await send(url, capability, '/api/items', { chunks: [filled(LIMIT + 1, 5)], declareLength: true }).catch(() => null);
    // The proxy answers 413 at once; a client still writing may see the connection close instead.
    if (declared !== null) {
      expect(declared.status).toBe(413);
      expect(errorOf(declared).code).toBe('payload_too_large');
    }
    expect(upstream.seen.length).toBe(before);
    const chunked = await send(url, capability, '/api/items', { chunks: [filled(LIMIT, 6), filled(1024, 7)], declareLength: false }).catch(() => null);
    if (chunked !== null) {
      expect(chunked.status).toBe(413);
      expect(errorOf(chunked).code).toBe('payload_too_large');
    }
    // Whatever reached the upstream of the chunked one is cut short: never the whole oversized body.
    expect(upstream.seen.slice(before).every((seen) => seen.body.length <= LIMIT)).toBe(true);
    expect(declared !== null || chunked !== null).toBe(true);
  });

  it("streams a large answer back whole, without the upstream's hop-by-hop headers and with the shell's own", async () => {
    const capability = await capabilityFor(replica, upstream.origin);
    const answer = await send(url, capability, '/big');
    expect(answer.status).toBe(200);
    expect(answer.body.length).toBe(BIG_ANSWER_CHUNKS * 64 * 1024);
    expect(answer.body.subarray(64 * 1024 * 5, 64 * 1024 * 5 + 4)).toEqual(Buffer.alloc(4, 5));
    expect(answer.headers['x-upstream']).toBe('yes');
    expect(answer.headers['keep-alive']).not.toBe('timeout=5');
    expect(answer.headers['x-content-type-options']).toBe('nosniff');
    expect(answer.headers['x-request-id']).toMatch(/^req_/);
  });

  it('answers 502 when the upstream cannot be reached and 504 when it does not answer in time', async () => {
    const closed = await startUpstream();
    const origin = closed.origin;
    await closed.close();
    const unreachable = await send(url, await capabilityFor(replica, origin), '/api/items');
    expect(unreachable.status).toBe(502);
    expect(errorOf(unreachable)).toMatchObject({ code: 'upstream_error', reason: 'upstream_unreachable' });

    const impatient = await startReplica(store, state, { config: runtimeConfig({ egress: { allowLoopback: true, allowPrivate: false, timeoutMs: 300 } }) });
    try {
      await waitFor(() => impatient.service.revocations.fresh());
      const base = await impatient.app.listen({ host: '127.0.0.1', port: 0 });
      const started = Date.now();
      const late = await send(base, await capabilityFor(impatient, upstream.origin), '/hang');
      expect(late.status).toBe(504);
      expect(errorOf(late)).toMatchObject({ code: 'upstream_timeout', reason: 'upstream_timeout' });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await impatient.close();
    }
  });
});
