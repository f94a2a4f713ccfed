/**
 * Egress proxy details that need more than the main suite: key-bound capabilities with DPoP proofs
 * naming the egress URL (replay refused), and the upstream request aborted when the client leaves.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordStore } from '../../store/db/record-store.js';
import { openTestRecordStore } from '../../store/db/testing.js';
import { MemoryHotState } from '../../store/state/index.js';
import { ath, makeProof, proofKey, type ProofKey } from '../testing/proofs.js';
import { AGENT_USER, ORG, seedOrgs, startReplica, waitFor, type Replica } from './testing/harness.js';

let store: RecordStore;
let state: MemoryHotState;
let replica: Replica;
let upstream: Server;
let origin: string;
let upstreamClosed = false;
let key: ProofKey;

beforeAll(async () => {
  store = await openTestRecordStore();
  await seedOrgs(store);
  state = new MemoryHotState();
  upstream = createServer((request, response) => {
    if (request.url === '/slow') {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.write('first chunk\n');
      // Never finishes on its own: only the proxy giving up ends it.
      response.on('close', () => {
        upstreamClosed = true;
      });
      return;
    }
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.end('ok');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  replica = await startReplica(store, state);
  await waitFor(() => replica.service.revocations.fresh());
  key = await proofKey('ES256');
}, 60_000);

afterAll(async () => {
  await replica?.close();
  upstream?.closeAllConnections();
  await new Promise<void>((resolve) => (upstream === undefined ? resolve() : upstream.close(() => resolve())));
  await state?.close();
  await store?.close();
});

async function issue(binding: Record<string, string>): Promise<string> {
  const response = await replica.app.inject({
    method: 'POST',
    url: `/api/orgs/${ORG}/capabilities`,
    headers: { authorization: 'Bearer issuer' },
    payload: {
      userId: AGENT_USER,
      sessionId: 'ses_binding',
      binding,
      grants: [{ name: 'backend', origin, methods: ['GET'], pathPrefixes: ['/'], credential: { ref: 'backend:service', header: 'authorization', scheme: 'Bearer' }, routeClass: 'backend_api' }],
    },
  });
  expect(response.statusCode).toBe(201);
  return response.json<{ token: string }>().token;
}

describe('key-bound capabilities through the egress proxy', () => {
  it('accepts a fresh proof naming the egress URL, refuses its replay and a proof for another URL', async () => {
    const token = await issue({ type: 'pop', jkt: key.jkt });
    const call = (proof: string, path = '/egress/backend/items?x=1') =>
      replica.app.inject({ method: 'GET', url: path, headers: { host: 'gateway.test', authorization: `Bearer ${token}`, dpop: proof } });
    const now = Math.floor(Date.now() / 1000);
    const proof = await makeProof(key, { htm: 'GET', htu: 'http://gateway.test/egress/backend/items', iat: now, ath: ath(token) });
    expect((await call(proof)).statusCode).toBe(200);

    const replayed = await call(proof);
    expect(replayed.statusCode).toBe(403);
    expect(replayed.json<{ error: { reason: string } }>().error.reason).toBe('proof_replayed');

    const elsewhere = await makeProof(key, { htm: 'GET', htu: 'http://gateway.test/egress/backend/other', iat: now, ath: ath(token) });
    const moved = await call(elsewhere);
    expect(moved.statusCode).toBe(403);
    expect(moved.json<{ error: { reason: string } }>().error.reason).toBe('proof_url_mismatch');

    const noProof = await replica.app.inject({ method: 'GET', url: '/egress/backend/items', headers: { authorization: `Bearer ${token}` } });
    expect(noProof.statusCode).toBe(403);
    expect(noProof.json<{ error: { reason: string } }>().error.reason).toBe('binding_missing');
  });
});

describe('client going away', () => {
  it('aborts the upstream request', async () => {
    const token = await issue({ type: 'container', containerId: 'ctr-abort' });
    const address = await replica.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = new URL(address);
    await new Promise<void>((resolve, reject) => {
      const outgoing = httpRequest(
        { host: '127.0.0.1', port, path: '/egress/backend/slow', headers: { authorization: `Bearer ${token}`, 'x-portcullis-container': 'ctr-abort' } },
        (response) => {
          expect(response.statusCode).toBe(200);
          response.once('data', () => {
            outgoing.destroy();
            resolve();
          });
        },
      );
      outgoing.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ECONNRESET') reject(error);
      });
      outgoing.end();
    });
    await waitFor(() => upstreamClosed, 3000);
    expect(upstreamClosed).toBe(true);
  });
});
