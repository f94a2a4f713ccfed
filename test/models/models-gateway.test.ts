/**
 * The model gateway as the composition root builds it: a config file with a `models:` section,
 * startGateway in-process on the embedded store, the real authenticator and admission pipeline,
 * the official SDKs in front, the simulator behind; usage rows flushed on a clean shutdown.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../bench/simulator/index.js';
import type { LoadedConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/core/logger.js';
import { openStores, startGateway, type BootstrappedAdmin, type RunningGateway } from '../../src/main.js';
import { modelsDb } from '../../src/models/tables.js';
import { freshEmbeddedDeployment } from '../support/embedded-deployment.js';

const PROVIDER_KEY = 'sk-gateway-test-provider-key-000111222';

let loaded: LoadedConfig;
let gateway: RunningGateway | undefined;
let admin: BootstrappedAdmin;
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({ apiKey: PROVIDER_KEY });
  ({ loaded, admin } = await freshEmbeddedDeployment(
    `
models:
  providers:
    - { id: sim, kind: openai, baseUrl: "${sim.url}/v1", apiKey: { file: provider.key }, timeoutMs: 5000 }
    - { id: sim-anthropic, kind: anthropic, baseUrl: "${sim.url}/v1", apiKey: { file: provider.key } }
  models:
    - { alias: gpt-sim, provider: sim, upstreamModel: sim-chat, price: { inputPerMTok: 1000000, outputPerMTok: 2000000 }, maxOutputTokens: 500 }
    - { alias: claude-sim, provider: sim-anthropic, upstreamModel: sim-claude, price: { inputPerMTok: 3000000, outputPerMTok: 15000000 } }
    - { alias: free-sim, provider: sim, upstreamModel: sim-chat, free: true }
    - { alias: unpriced-sim, provider: sim, upstreamModel: sim-chat }
`,
    { 'provider.key': PROVIDER_KEY },
  ));
  gateway = await startGateway(loaded, { logger: createLogger({ level: 'silent' }) });
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  await sim?.close();
});

describe('model gateway wired into startGateway', () => {
  it('serves both SDKs through authentication and admission, and a clean shutdown writes every usage row', async () => {
    const url = gateway?.url ?? '';
    const openai = new OpenAI({ apiKey: admin.token, baseURL: `${url}/v1`, maxRetries: 0 });
    const chat = await openai.chat.completions.create({ model: 'gpt-sim', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] });
    expect(chat.choices[0]?.message.content).toBeTruthy();
    let streamed = '';
    for await (const chunk of await openai.chat.completions.create({ model: 'gpt-sim', stream: true, messages: [{ role: 'user', content: 'stream' }] })) streamed += chunk.choices[0]?.delta.content ?? '';
    expect(streamed.length).toBeGreaterThan(0);
    const anthropic = new Anthropic({ apiKey: admin.token, baseURL: url, maxRetries: 0 });
    const message = await anthropic.messages.create({ model: 'claude-sim', max_tokens: 30, messages: [{ role: 'user', content: 'hello' }] });
    expect(message.content[0]?.type).toBe('text');
    const anonymousFree = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'free-sim', messages: [{ role: 'user', content: 'free?' }] }) });
    expect(anonymousFree.status).toBe(200);
    const anonymousPaid = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-sim', messages: [{ role: 'user', content: 'paid?' }] }) });
    expect(anonymousPaid.status).toBe(401);
    // No price and models.allowUnpricedModels off: the economics gate refuses before any provider call.
    const upstreamBefore = sim.requests().length;
    await expect(openai.chat.completions.create({ model: 'unpriced-sim', messages: [{ role: 'user', content: 'free lunch?' }] })).rejects.toMatchObject({ status: 400, code: 'unknown_price' });
    expect(sim.requests().length).toBe(upstreamBefore);

    const upstream = sim.requests().filter((r) => r.path === '/v1/chat/completions' || r.path === '/v1/messages');
    const expectedInput = upstream.reduce((sum, r) => sum + (r.usage?.promptTokens ?? 0), 0);
    const expectedOutput = upstream.reduce((sum, r) => sum + (r.usage?.completionTokens ?? 0), 0);

    await gateway?.close();
    gateway = undefined;
    const stores = await openStores(loaded, { migrate: false });
    try {
      const rows = await modelsDb(stores.records.db).selectFrom('usage_rollups').selectAll().execute();
      const sum = (list: typeof rows, pick: (r: (typeof rows)[number]) => string) => list.reduce((total, r) => total + Number(pick(r)), 0);
      expect(sum(rows, (r) => r.requests)).toBe(4);
      expect(sum(rows, (r) => r.input_tokens)).toBe(expectedInput);
      expect(sum(rows, (r) => r.output_tokens)).toBe(expectedOutput);
      expect(sum(rows.filter((r) => r.org_id === admin.orgId), (r) => r.requests)).toBe(3);
      // The anonymous free call has no org, user or key.
      expect(rows.filter((r) => r.org_id === '')).toMatchObject([{ user_id: '', key_id: '', model: 'free-sim', free: true, requests: '1' }]);
      expect(sum(rows, (r) => r.unmetered_requests)).toBe(0);
    } finally {
      await stores.close();
    }
  });
});
