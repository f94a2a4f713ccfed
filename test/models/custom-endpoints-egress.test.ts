/**
 * Custom endpoints are checked on the address actually connected to, not only when stored: DNS can
 * change after the write (rebinding), and a row may predate a stricter config. Loopback is NOT
 * allowed here; the org's "server" is a simulator on loopback that must never be reached. Plain
 * http is allowed for the hosts under test, so every refusal below is the address rule's.
 */
import OpenAI, { APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../bench/simulator/index.js';
import type { ResolvedAddress, Resolver } from '../../src/egress/index.js';
import { openTestRecordStore } from '../../src/store/db/testing.js';
import { ORG_ID, startRig, usageSince, usageTotals, type Rig } from './harness.js';

const PRICE = { inputPerMTok: 1_000_000, outputPerMTok: 2_000_000 };
const PUBLIC: ResolvedAddress = { address: '93.184.216.34', family: 4 };

/** What `rebind.test` resolves to right now; the test changes it between the write and the call. */
let rebindAnswer: ResolvedAddress = PUBLIC;
const dns: Resolver = async (host) => {
  if (host === 'rebind.test') return [rebindAnswer];
  if (host === 'loopback-name.test') return [{ address: '127.0.0.1', family: 4 }];
  throw new Error('no such host');
};

let rig: Rig;
let orgServer: Simulator;
let member: OpenAI;

function put(endpointId: string, baseUrl: string): Promise<Response> {
  return fetch(`${rig.url}/api/orgs/${ORG_ID}/endpoints/${endpointId}`, {
    method: 'PUT',
    headers: { authorization: 'Bearer pk-admin', 'content-type': 'application/json' },
    body: JSON.stringify({ baseUrl, apiKey: 'sk-org-endpoint-key-000111', models: [{ alias: `${endpointId}-chat`, upstream: 'sim-chat', price: PRICE }] }),
  });
}

/** Calls the alias; returns the SDK's error (or null on success) and the request id. */
async function call(alias: string): Promise<{ error: APIError | null; requestId: string }> {
  try {
    const { response } = await member.chat.completions.create({ model: alias, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    return { error: null, requestId: response.headers.get('x-request-id') ?? '' };
  } catch (error) {
    const apiError = error as APIError;
    return { error: apiError, requestId: apiError.requestID ?? '' };
  }
}

/** Refused in the OpenAI envelope, the reservation released, nothing metered, the org server untouched. */
async function expectRefusedCleanly(alias: string): Promise<void> {
  const before = orgServer.requests().length;
  const usageBefore = await usageTotals(rig);
  const { error, requestId } = await call(alias);
  expect(error).toBeInstanceOf(OpenAI.PermissionDeniedError);
  expect(error).toMatchObject({ status: 403, code: 'egress_refused' });
  expect(rig.settlements.filter((s) => s.requestId === requestId)).toEqual([{ requestId, outcome: { kind: 'upstream_failure', reason: 'error' } }]);
  expect(await usageSince(rig, usageBefore)).toEqual({ requests: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costMicros: 0, unmeteredRequests: 0 });
  expect(orgServer.requests().length).toBe(before);
}

beforeAll(async () => {
  orgServer = await startSimulator();
  rig = await startRig({ egress: { allowLoopback: false, allowHttpHosts: ['rebind.test', 'loopback-name.test', '127.0.0.1', '169.254.169.254', '[::ffff:a9fe:a9fe]'] }, dns });
  member = new OpenAI({ apiKey: 'pk-member', baseURL: `${rig.url}/v1`, maxRetries: 0 });
}, 180_000);

afterAll(async () => {
  await rig?.close();
  await orgServer?.close();
});

describe('custom endpoint egress (loopback not allowed)', () => {
  it.each([
    ['169.254.169.254', 'http://169.254.169.254/v1'],
    ['[::ffff:a9fe:a9fe]', 'http://[::ffff:a9fe:a9fe]/v1'],
    ['0x7f.1', 'http://0x7f.1/v1'],
    ['a name resolving to loopback', 'http://loopback-name.test/v1'],
  ])('%s is refused at write time', async (_name, baseUrl) => {
    const response = await put('written', baseUrl);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain('address_refused');
  });

  it.each([
    ['loopback', { address: '127.0.0.1', family: 4 }],
    ['metadata', { address: '169.254.169.254', family: 4 }],
    ['IPv4-mapped metadata', { address: '::ffff:a9fe:a9fe', family: 6 }],
  ] as const)('a name that was public when stored and resolves to %s at call time is refused cleanly', async (_name, answer) => {
    rebindAnswer = PUBLIC;
    expect((await put('rebind', `http://rebind.test:${orgServer.port}/v1`)).status).toBe(204);
    rebindAnswer = answer;
    await expectRefusedCleanly('rebind-chat');
    rebindAnswer = PUBLIC;
  });

  it.each([
    ['169.254.169.254', 'http://169.254.169.254/v1'],
    ['[::ffff:a9fe:a9fe]', 'http://[::ffff:a9fe:a9fe]/v1'],
    ['0x7f.1', () => `http://0x7f.1:${orgServer.port}/v1`],
    ['a name resolving to loopback', () => `http://loopback-name.test:${orgServer.port}/v1`],
    ["the configured providers' own loopback host", () => `http://127.0.0.1:${orgServer.port}/v1`],
  ])('a stored endpoint at %s (as under an older config) is refused at call time', async (_name, url) => {
    const baseUrl = typeof url === 'string' ? url : url();
    await rig.service.customEndpoints.put(ORG_ID, 'stored', { baseUrl, models: [{ alias: 'stored-chat', upstream: 'sim-chat', price: PRICE }] }, 'usr_admin');
    await rig.service.resolver.changed(ORG_ID);
    await expectRefusedCleanly('stored-chat');
  });

  it("configured providers' own hosts stay allowed", async () => {
    const { error } = await call('chat');
    expect(error).toBeNull();
    expect(rig.primary.requests().length).toBeGreaterThan(0);
  });
});

describe('record store down with a cold cache', () => {
  it("an org's custom model answers 503 dependency_unavailable in the OpenAI envelope; a catalogue model with a warm key cache still answers", async () => {
    const store = await openTestRecordStore();
    const replica = await startRig({ store, egress: { allowLoopback: true, allowHttpHosts: ['127.0.0.1'] } });
    try {
      const client = new OpenAI({ apiKey: 'pk-member', baseURL: `${replica.url}/v1`, maxRetries: 0 });
      await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'warm the key cache' }] });
      await replica.service.customEndpoints.put(ORG_ID, 'own', { baseUrl: `http://127.0.0.1:${orgServer.port}/v1`, models: [{ alias: 'own-chat', upstream: 'sim-chat', price: PRICE }] }, 'usr_admin');
      await store.close();
      const refused = (await client.chat.completions.create({ model: 'own-chat', messages: [{ role: 'user', content: 'x' }] }).catch((error: unknown) => error)) as APIError;
      expect(refused).toBeInstanceOf(APIError);
      expect(refused).toMatchObject({ status: 503, code: 'dependency_unavailable', type: 'server_error' });
      expect(refused.headers?.get('retry-after')).toBe('1');
      expect((await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'still fine' }] })).choices).toHaveLength(1);
      const models = await fetch(`${replica.url}/v1/models`, { headers: { authorization: 'Bearer pk-member' } });
      expect(models.status).toBe(503);
    } finally {
      await replica.close();
    }
  });
});
