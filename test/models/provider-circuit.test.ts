/**
 * The provider's circuit breaker through the whole gateway (startGateway on the embedded store,
 * the real admission pipeline): it opens on the provider's own failures, and never on requests
 * the provider refuses as the caller's mistake — otherwise one tenant's bad requests would pause
 * the provider for every tenant.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../bench/simulator/index.js';
import { createLogger } from '../../src/core/logger.js';
import { startGateway, type BootstrappedAdmin, type RunningGateway } from '../../src/main.js';
import { freshEmbeddedDeployment } from '../support/embedded-deployment.js';

const PROVIDER_KEY = 'sk-circuit-test-provider-key-000111222';
/** Fewer than the provider breaker's default failure threshold (5 in 30 s) would prove nothing. */
const REFUSED_CALLS = 12;

let gateway: RunningGateway | undefined;
let admin: BootstrappedAdmin;
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({ apiKey: PROVIDER_KEY });
  const deployment = await freshEmbeddedDeployment(
    `
models:
  providers:
    - { id: sim, kind: openai, baseUrl: "${sim.url}/v1", apiKey: { file: provider.key }, timeoutMs: 5000 }
  models:
    - { alias: gpt-sim, provider: sim, upstreamModel: sim-chat, price: { inputPerMTok: 1000000, outputPerMTok: 2000000 }, maxOutputTokens: 500 }
`,
    { 'provider.key': PROVIDER_KEY },
  );
  admin = deployment.admin;
  gateway = await startGateway(deployment.loaded, { logger: createLogger({ level: 'silent' }) });
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  await sim?.close();
});

function post(path: string, body: unknown): Promise<Response> {
  return fetch(`${gateway?.url ?? ''}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${admin.token}` }, body: JSON.stringify(body) });
}

const chat = () => post('/v1/chat/completions', { model: 'gpt-sim', max_tokens: 10, messages: [{ role: 'user', content: 'still there?' }] });

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
    expect(((await paused.json()) as { error: { code: string } }).error.code).toBe('circuit_open');
  });
});
