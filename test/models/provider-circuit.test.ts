/**
 * The provider's circuit breaker through the whole gateway (startGateway on the embedded store,
 * the real admission pipeline): it opens on the provider's own failures (its 5xx, its 429s and 401s
 * to the operator's key) when they are also half of its recent calls, and never on what only concerns one tenant — requests the provider
 * refuses as the caller's mistake, or an org's own key out of quota — otherwise one tenant could
 * pause the provider for every tenant. Each test has a provider (a breaker) of its own; all but one
 * run on a simulator that checks no key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../bench/simulator/index.js';
import { createLogger } from '../../src/core/logger.js';
import { startGateway, type BootstrappedAdmin, type RunningGateway } from '../../src/main.js';
import { freshEmbeddedDeployment } from '../support/embedded-deployment.js';

const PROVIDER_KEY = 'sk-circuit-test-provider-key-000111222';
const ORG_OWN_KEY = 'sk-circuit-test-org-own-key-333444555';
/** Fewer than the provider breaker's default failure threshold (5 in 30 s) would prove nothing. */
const REFUSED_CALLS = 12;

let gateway: RunningGateway | undefined;
let admin: BootstrappedAdmin;
let sim: Simulator;
/** A provider that no longer accepts the operator's key (revoked at the provider). */
let revoking: Simulator;

beforeAll(async () => {
  sim = await startSimulator();
  revoking = await startSimulator({ apiKey: 'sk-circuit-test-key-the-provider-now-wants' });
  const deployment = await freshEmbeddedDeployment(
    `
models:
  providers:
    - { id: sim, kind: openai, baseUrl: "${sim.url}/v1", apiKey: { file: provider.key }, timeoutMs: 5000 }
    - { id: sim-byok, kind: openai, baseUrl: "${sim.url}/v1", apiKey: { file: provider.key }, timeoutMs: 5000 }
    - { id: sim-flaky, kind: openai, baseUrl: "${sim.url}/v1", apiKey: { file: provider.key }, timeoutMs: 5000 }
    - { id: sim-revoked, kind: openai, baseUrl: "${revoking.url}/v1", apiKey: { file: provider.key }, timeoutMs: 5000 }
  models:
    - { alias: gpt-sim, provider: sim, upstreamModel: sim-chat, price: { inputPerMTok: 1000000, outputPerMTok: 2000000 }, maxOutputTokens: 500 }
    - { alias: byok-sim, provider: sim-byok, upstreamModel: sim-chat, price: { inputPerMTok: 1000000, outputPerMTok: 2000000 }, maxOutputTokens: 500 }
    - { alias: flaky-sim, provider: sim-flaky, upstreamModel: sim-chat, price: { inputPerMTok: 1000000, outputPerMTok: 2000000 }, maxOutputTokens: 500 }
    - { alias: revoked-sim, provider: sim-revoked, upstreamModel: sim-chat, price: { inputPerMTok: 1000000, outputPerMTok: 2000000 }, maxOutputTokens: 500, fallbacks: [gpt-sim] }
    - { alias: revoked-only, provider: sim-revoked, upstreamModel: sim-chat, price: { inputPerMTok: 1000000, outputPerMTok: 2000000 }, maxOutputTokens: 500 }
`,
    { 'provider.key': PROVIDER_KEY },
  );
  admin = deployment.admin;
  gateway = await startGateway(deployment.loaded, { logger: createLogger({ level: 'silent' }) });
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  await sim?.close();
  await revoking?.close();
});

function post(path: string, body: unknown, token = admin.token, method = 'POST'): Promise<Response> {
  return fetch(`${gateway?.url ?? ''}${path}`, { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
}

const chat = (model = 'gpt-sim', token = admin.token) => post('/v1/chat/completions', { model, max_tokens: 10, messages: [{ role: 'user', content: 'still there?' }] }, token);

/** A member key of a second org, which uses the managed provider key. */
async function otherTenantToken(): Promise<string> {
  const org = (await (await post('/api/orgs', { name: 'Other tenant' })).json()) as { id: string };
  const key = (await (await post(`/api/orgs/${org.id}/keys`, { name: 'other', scopes: ['models'] })).json()) as { token: string };
  return key.token;
}

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

describe('provider circuit through the gateway', () => {
  it("requests the provider refuses (400) are relayed and never pause it; the provider's own failures do", async () => {
    const upstreamBefore = sim.requests().length;
    for (let i = 0; i < REFUSED_CALLS; i += 1) {
      // An embeddings call without `input`: the provider answers 400 in its own envelope.
      const refused = await post('/v1/embeddings', { model: 'gpt-sim' });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    }
    expect(sim.requests().length - upstreamBefore).toBe(REFUSED_CALLS);
    const afterRefusals = await chat();
    expect(afterRefusals.status).toBe(200);

    // The same breaker opens on what is the provider's fault: 500s on every attempt.
    sim.configure({ failure: { mode: 500, count: 100 } });
    const failures: number[] = [];
    for (let i = 0; i < 5; i += 1) failures.push((await chat()).status);
    expect(failures).toEqual([502, 502, 502, 502, 502]);
    sim.configure({ failure: null });
    const paused = await chat();
    expect(paused.status).toBe(503);
    expect(await errorCode(paused)).toBe('circuit_open');
  });

  it('a provider failing one call in four is not paused, though its failures pass the threshold; failing every call, it is', async () => {
    const other = await otherTenantToken();
    sim.configure({ failure: { mode: 500, ratio: 0.25 } });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i += 1) statuses.push((await chat('flaky-sim', i % 2 === 0 ? other : admin.token)).status);
    expect(statuses.filter((s) => s === 502)).toHaveLength(10);
    expect(statuses.filter((s) => s === 200)).toHaveLength(30);
    // Healthy for a while, then down: five failures in a row (the threshold) pause it.
    sim.configure({ failure: null });
    for (let i = 0; i < 10; i += 1) expect((await chat('flaky-sim', other)).status).toBe(200);
    sim.configure({ failure: { mode: 500, count: 100 } });
    const failures: number[] = [];
    for (let i = 0; i < 5; i += 1) failures.push((await chat('flaky-sim', other)).status);
    expect(failures).toEqual([502, 502, 502, 502, 502]);
    sim.configure({ failure: null });
    const paused = await chat('flaky-sim', other);
    expect(paused.status).toBe(503);
    expect(await errorCode(paused)).toBe('circuit_open');
  });

  it("an org's own key out of quota (429) answers that org 429 and leaves the provider open to the others; the managed key's 429s pause it", async () => {
    const other = await otherTenantToken();
    expect((await post(`/api/orgs/${admin.orgId}/providers/sim-byok/key`, { apiKey: ORG_OWN_KEY }, admin.token, 'PUT')).status).toBe(204);
    const upstreamBefore = sim.requests().length;
    sim.configure({ failure: { mode: 429, count: REFUSED_CALLS } });
    for (let i = 0; i < REFUSED_CALLS; i += 1) {
      const throttled = await chat('byok-sim');
      expect(throttled.status).toBe(429);
      expect(await errorCode(throttled)).toBe('rate_limited');
    }
    const sent = sim.requests().slice(upstreamBefore);
    expect(sent.map((r) => r.headers.authorization)).toEqual(Array.from({ length: REFUSED_CALLS }, () => `Bearer ${ORG_OWN_KEY}`));
    expect((await chat('byok-sim', other)).status).toBe(200);

    sim.configure({ failure: { mode: 429, count: 5 } });
    const managedThrottled: number[] = [];
    for (let i = 0; i < 5; i += 1) managedThrottled.push((await chat('byok-sim', other)).status);
    expect(managedThrottled).toEqual([502, 502, 502, 502, 502]);
    const paused = await chat('byok-sim', other);
    expect(paused.status).toBe(503);
    expect(await errorCode(paused)).toBe('circuit_open');
  });

  it("the provider refusing the operator's own key (401) falls back to the next provider, and pauses the provider when nothing is left", async () => {
    const other = await otherTenantToken();
    const revokedBefore = revoking.requests().length;
    const served = await chat('revoked-sim', other);
    expect(served.status).toBe(200);
    expect(revoking.requests().length - revokedBefore).toBe(1);
    expect(sim.requests().at(-1)?.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);

    // Without a fallback the caller gets a clean error, never the provider's words about our key,
    // and every tenant's calls count against the provider, as its 5xx do.
    const failures: Response[] = [];
    for (let i = 0; i < 5; i += 1) failures.push(await chat('revoked-only', i % 2 === 0 ? other : admin.token));
    expect(failures.map((r) => r.status)).toEqual([502, 502, 502, 502, 502]);
    const text = await failures[0]!.text();
    expect(text).not.toContain(PROVIDER_KEY);
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'upstream_error' } });
    const paused = await chat('revoked-only', other);
    expect(paused.status).toBe(503);
    expect(await errorCode(paused)).toBe('circuit_open');
  });
});
