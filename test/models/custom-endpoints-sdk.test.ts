/**
 * Org custom OpenAI-compatible endpoints through `/v1`, driven by the official `openai` SDK: an
 * org admin routes aliases to its own server (the provider simulator on loopback, with loopback
 * and plain http explicitly allowed for it), its members call them on every OpenAI route with the
 * org's sealed key injected, metered and priced exactly, and no other org can see or reach them.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { toFile, type APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../bench/simulator/index.js';
import type { Resolver } from '../../src/egress/index.js';
import { costMicros } from '../../src/models/index.js';
import { modelsDb } from '../../src/models/tables.js';
import { ORG_ID, eventually, startRig, usageSince, usageTotals, type Rig } from './harness.js';

const ENDPOINT_KEY = 'sk-org-endpoint-key-NEVER-SHOWN-7731';
const PRICE = { inputPerMTok: 4_000_000, outputPerMTok: 12_000_000 };
const MODELS = [
  { alias: 'org-chat', upstream: 'sim-chat', price: PRICE, maxOutputTokens: 300 },
  { alias: 'org-embed', upstream: 'sim-embed', price: { inputPerMTok: 30_000, outputPerMTok: 0 } },
  { alias: 'org-whisper', upstream: 'sim-whisper', price: { inputPerMTok: 0, outputPerMTok: 0, audioPerSecond: 250 } },
  { alias: 'org-unpriced', upstream: 'sim-chat' },
];

// `sim.test` is the org's server: a name that resolves to loopback, so the connect-time guard runs.
const dns: Resolver = async (host) => {
  if (host === 'sim.test' || host === 'not-listed.test') return [{ address: '127.0.0.1', family: 4 }];
  throw new Error('no such host');
};

let rig: Rig;
let orgServer: Simulator;
let member: OpenAI;

function admin(method: string, path: string, body?: unknown, token = 'pk-admin'): Promise<Response> {
  return fetch(`${rig.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
}

/** The usage buckets of one alias: whose they are and which provider served them. */
async function bucketsOf(alias: string) {
  await rig.service.usage.flush();
  return modelsDb(rig.store.db).selectFrom('usage_rollups').select(['org_id', 'model', 'provider', 'requests']).where('model', '=', alias).execute();
}

function chat(client: OpenAI, model: string) {
  return client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hello, own server' }] });
}

beforeAll(async () => {
  orgServer = await startSimulator({ apiKey: ENDPOINT_KEY });
  rig = await startRig({ egress: { allowLoopback: true, allowHttpHosts: ['sim.test'] }, dns });
  member = new OpenAI({ apiKey: 'pk-member', baseURL: `${rig.url}/v1`, maxRetries: 0 });
  const put = await admin('PUT', `/api/orgs/${ORG_ID}/endpoints/local`, { baseUrl: `http://sim.test:${orgServer.port}/v1`, apiKey: ENDPOINT_KEY, models: MODELS });
  expect(put.status).toBe(204);
}, 180_000);

afterAll(async () => {
  await rig?.close();
  await orgServer?.close();
});

describe('org custom endpoint models on /v1', () => {
  it('chat: the org key is injected upstream, the upstream model named, usage and cost recorded exactly', async () => {
    const before = await usageTotals(rig);
    const data = await member.chat.completions.create({ model: 'org-chat', messages: [{ role: 'user', content: 'Hello, own server!' }] });
    expect(data.choices[0]?.message.content).toBeTruthy();
    const upstream = orgServer.lastRequest();
    expect(upstream?.headers.authorization).toBe(`Bearer ${ENDPOINT_KEY}`);
    expect((upstream?.body as { model: string } | undefined)?.model).toBe('sim-chat');
    expect(rig.primary.requests()).toHaveLength(0);
    const simUsage = { inputTokens: upstream?.usage?.promptTokens ?? -1, outputTokens: upstream?.usage?.completionTokens ?? -1, cachedInputTokens: 0, audioSeconds: 0 };
    expect(await usageSince(rig, before)).toEqual({ requests: 1, inputTokens: simUsage.inputTokens, outputTokens: simUsage.outputTokens, cachedInputTokens: 0, costMicros: costMicros(simUsage, PRICE), unmeteredRequests: 0 });
    expect(await bucketsOf('org-chat')).toEqual([{ org_id: ORG_ID, model: 'org-chat', provider: 'custom:local', requests: '1' }]);
    // Admitted like any model: priced from the org's table, the breaker keyed by org and endpoint.
    expect(rig.admissions.at(-1)).toMatchObject({ dependency: `provider:custom:${ORG_ID}:local`, cost: { model: 'org-chat', maxTokens: expect.any(Number) as number } });
    expect(rig.admissions.at(-1)?.cost?.unpriced).toBeUndefined();
    expect(rig.admissions.at(-1)?.cost?.maxMicros).toBeGreaterThanOrEqual(Math.ceil((300 * PRICE.outputPerMTok) / 1_000_000));
  });

  it('streaming chat is relayed and metered from the usage the gateway asked for', async () => {
    const before = await usageTotals(rig);
    const { data: stream, response } = await member.chat.completions.create({ model: 'org-chat', stream: true, messages: [{ role: 'user', content: 'stream it' }] }).withResponse();
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    const upstream = orgServer.lastRequest();
    expect((upstream?.body as { stream_options?: { include_usage?: boolean } } | undefined)?.stream_options?.include_usage).toBe(true);
    const requestId = response.headers.get('x-request-id') ?? '';
    await eventually(() => rig.settlements.some((s) => s.requestId === requestId));
    expect(await usageSince(rig, before)).toMatchObject({ requests: 1, inputTokens: upstream?.usage?.promptTokens, outputTokens: upstream?.usage?.completionTokens, unmeteredRequests: 0 });
  });

  it('completions, responses, embeddings and transcriptions reach the org server with its key', async () => {
    const completion = await member.completions.create({ model: 'org-chat', prompt: 'def f(', suffix: 'return 1' });
    expect(completion.choices[0]?.text).toBeTruthy();
    expect(orgServer.lastRequest()?.path).toBe('/v1/completions');
    const response = await member.responses.create({ model: 'org-chat', input: 'hi' });
    expect(response.output.length).toBeGreaterThan(0);
    expect(orgServer.lastRequest()?.path).toBe('/v1/responses');
    const embedded = await member.embeddings.create({ model: 'org-embed', input: ['a', 'b'] });
    expect(embedded.data).toHaveLength(2);
    expect((orgServer.lastRequest()?.body as { model: string } | undefined)?.model).toBe('sim-embed');
    const before = await usageTotals(rig);
    const transcript = await member.audio.transcriptions.create({ model: 'org-whisper', file: await toFile(Buffer.alloc(32_000, 1), 'a.wav') });
    expect(transcript.text.length).toBeGreaterThan(0);
    const upstream = orgServer.lastRequest();
    expect(upstream?.path).toBe('/v1/audio/transcriptions');
    expect(upstream?.headers.authorization).toBe(`Bearer ${ENDPOINT_KEY}`);
    expect((upstream?.body as { model: string } | undefined)?.model).toBe('sim-whisper');
    expect(await usageSince(rig, before)).toMatchObject({ requests: 1, costMicros: (upstream?.usage?.audioSeconds ?? -1) * 250, unmeteredRequests: 0 });
    expect(await bucketsOf('org-whisper')).toMatchObject([{ org_id: ORG_ID, provider: 'custom:local' }]);
  });

  it('a model without a price goes to admission flagged unpriced (the one place that applies models.allowUnpricedModels)', async () => {
    await chat(member, 'org-unpriced');
    expect(rig.admissions.at(-1)?.cost).toMatchObject({ model: 'org-unpriced', maxMicros: 0, unpriced: true });
  });

  it('GET /v1/models lists the org’s models to its members only', async () => {
    const own = (await member.models.list()).data.map((m) => m.id);
    expect(own).toEqual(expect.arrayContaining(['chat', 'org-chat', 'org-embed', 'org-whisper', 'org-unpriced']));
    const other = new OpenAI({ apiKey: 'pk-other', baseURL: `${rig.url}/v1`, maxRetries: 0 });
    const theirs = (await other.models.list()).data.map((m) => m.id);
    expect(theirs).toContain('chat');
    expect(theirs.filter((id) => id.startsWith('org-'))).toEqual([]);
    const anonymous = (await (await fetch(`${rig.url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(anonymous.data.map((m) => m.id)).toEqual(['free-chat']);
  });

  it('another org, an anonymous caller and the Anthropic route get model_not_found, exactly as for a name nobody uses', async () => {
    const other = new OpenAI({ apiKey: 'pk-other', baseURL: `${rig.url}/v1`, maxRetries: 0 });
    const before = orgServer.requests().length;
    const refusal = (await chat(other, 'org-chat').catch((error: unknown) => error)) as APIError;
    const unknown = (await chat(other, 'nobody-has-this').catch((error: unknown) => error)) as APIError;
    expect(refusal).toBeInstanceOf(OpenAI.NotFoundError);
    expect(refusal.error).toEqual(unknown.error);
    expect(refusal.code).toBe('model_not_found');
    // Anonymous: a 404 like any unknown name, not the 401 a paid catalogue model gives (that would say it exists).
    const anonymous = await fetch(`${rig.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'org-chat', messages: [{ role: 'user', content: 'x' }] }) });
    expect(anonymous.status).toBe(404);
    expect(((await anonymous.json()) as { error: unknown }).error).toEqual(unknown.error);
    const anthropic = new Anthropic({ apiKey: 'pk-member', baseURL: rig.url, maxRetries: 0 });
    await expect(anthropic.messages.create({ model: 'org-chat', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404 });
    expect(orgServer.requests().length).toBe(before);
  });

  it('plain http to a host the operator did not list is refused at call time, even when its address is allowed', async () => {
    // Stored as under an older, looser config (the store does not check; the routes and the connection do).
    await rig.service.customEndpoints.put(ORG_ID, 'unlisted', { baseUrl: `http://not-listed.test:${orgServer.port}/v1`, models: [{ alias: 'unlisted-chat', upstream: 'sim-chat', price: PRICE }] }, 'usr_admin');
    await rig.service.resolver.changed(ORG_ID);
    const before = orgServer.requests().length;
    const { response } = await member.chat.completions.create({ model: 'unlisted-chat', messages: [{ role: 'user', content: 'x' }] }).withResponse().catch((error: unknown) => ({ response: error as APIError }));
    expect(response).toMatchObject({ status: 403, code: 'egress_refused' });
    expect(orgServer.requests().length).toBe(before);
    expect((await admin('PUT', `/api/orgs/${ORG_ID}/endpoints/unlisted`, { baseUrl: `http://not-listed.test:${orgServer.port}/v1`, models: [{ alias: 'unlisted-chat', upstream: 'sim-chat' }] })).status).toBe(400);
    expect((await admin('DELETE', `/api/orgs/${ORG_ID}/endpoints/unlisted`)).status).toBe(204);
  });

  it('the org key is never shown: not by the admin API, not in any response or log line; a refused key is a clean gateway error', async () => {
    const view = await (await admin('GET', `/api/orgs/${ORG_ID}/endpoints/local`)).text();
    expect(JSON.parse(view)).toMatchObject({ hasKey: true, baseUrl: `http://sim.test:${orgServer.port}/v1` });
    expect(view).not.toContain(ENDPOINT_KEY);
    // The org's server now demands another key: its 401 is about our credential, said without it.
    const stricter = await startSimulator({ apiKey: 'sk-some-other-key-000000000000' });
    try {
      expect((await admin('PUT', `/api/orgs/${ORG_ID}/endpoints/strict`, { baseUrl: `http://sim.test:${stricter.port}/v1`, apiKey: ENDPOINT_KEY, models: [{ alias: 'strict-chat', upstream: 'sim-chat', price: PRICE }] })).status).toBe(204);
      const refused = (await chat(member, 'strict-chat').catch((error: unknown) => error)) as APIError;
      expect(refused.status).toBe(502);
      expect(JSON.stringify(refused.error)).not.toContain(ENDPOINT_KEY);
      // Released, and not held against the endpoint's breaker: it answered; it refused the org's key.
      expect(rig.settlements.at(-1)?.outcome).toEqual({ kind: 'upstream_failure', reason: 'refused' });
    } finally {
      await admin('DELETE', `/api/orgs/${ORG_ID}/endpoints/strict`);
      await stricter.close();
    }
    for (const line of rig.logs) expect(line).not.toContain(ENDPOINT_KEY);
  });

  it('a removed endpoint is gone at once; re-adding it brings its models back', async () => {
    expect((await admin('DELETE', `/api/orgs/${ORG_ID}/endpoints/local`)).status).toBe(204);
    await expect(chat(member, 'org-chat')).rejects.toMatchObject({ status: 404, code: 'model_not_found' });
    expect((await member.models.list()).data.map((m) => m.id)).not.toContain('org-chat');
    expect((await admin('PUT', `/api/orgs/${ORG_ID}/endpoints/local`, { baseUrl: `http://sim.test:${orgServer.port}/v1`, apiKey: ENDPOINT_KEY, models: MODELS })).status).toBe(204);
    expect((await chat(member, 'org-chat')).choices).toHaveLength(1);
  });
});
