/**
 * Org custom endpoints and the unpriced-model switch as the composition root wires them:
 * startGateway with a config file, the real authenticator and admission pipeline (budgets
 * included), the official `openai` SDK in front and the simulator behind as the org's own
 * OpenAI-compatible server on loopback (loopback and plain http explicitly allowed for it). The
 * file uses the deprecated `budgets.allowUnpricedModels`, which must warn at start and act as
 * `models.allowUnpricedModels`.
 */
import { Writable } from 'node:stream';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../bench/simulator/index.js';
import type { LoadedConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/core/logger.js';
import { openStores, startGateway, type BootstrappedAdmin, type RunningGateway } from '../../src/main.js';
import { costMicros } from '../../src/models/index.js';
import { modelsDb } from '../../src/models/tables.js';
import { freshEmbeddedDeployment } from '../support/embedded-deployment.js';

const ENDPOINT_KEY = 'sk-org-own-server-key-4455667788';
const PRICE = { inputPerMTok: 3_000_000, outputPerMTok: 9_000_000 };

let loaded: LoadedConfig;
let gateway: RunningGateway | undefined;
let admin: BootstrappedAdmin;
let platformSim: Simulator;
let orgServer: Simulator;
const logs: string[] = [];

beforeAll(async () => {
  platformSim = await startSimulator();
  orgServer = await startSimulator({ apiKey: ENDPOINT_KEY });
  ({ loaded, admin } = await freshEmbeddedDeployment(`
budgets:
  allowUnpricedModels: true
models:
  providers:
    - { id: sim, kind: openai_compatible, baseUrl: "${platformSim.url}/v1" }
  models:
    - { alias: gpt-sim, provider: sim, upstreamModel: sim-chat, price: { inputPerMTok: 1000000, outputPerMTok: 2000000 } }
    - { alias: unpriced-sim, provider: sim, upstreamModel: sim-chat }
  egress:
    allowLoopback: true
    allowHttpHosts: [127.0.0.1]
`));
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  gateway = await startGateway(loaded, { logger: createLogger({ level: 'info', destination }) });
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  await platformSim?.close();
  await orgServer?.close();
});

describe('org custom endpoints through startGateway', () => {
  it('warns at start about the deprecated key', () => {
    expect(logs.some((line) => line.includes('budgets.allowUnpricedModels is deprecated') && line.includes('"level":40'))).toBe(true);
  });

  it('an org admin adds its own server; members call it through the full pipeline; usage is priced from the org table; unpriced models pass under the one switch', async () => {
    const url = gateway?.url ?? '';
    const put = await fetch(`${url}/api/orgs/${admin.orgId}/endpoints/own`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ baseUrl: `http://127.0.0.1:${orgServer.port}/v1`, apiKey: ENDPOINT_KEY, models: [{ alias: 'own-chat', upstream: 'sim-chat', price: PRICE }, { alias: 'own-unpriced', upstream: 'sim-chat' }] }),
    });
    expect(put.status).toBe(204);
    const openai = new OpenAI({ apiKey: admin.token, baseURL: `${url}/v1`, maxRetries: 0 });
    expect((await openai.models.list()).data.map((m) => m.id)).toEqual(expect.arrayContaining(['gpt-sim', 'own-chat', 'own-unpriced']));
    await openai.chat.completions.create({ model: 'own-chat', messages: [{ role: 'user', content: 'to my own server' }] });
    const priced = orgServer.lastRequest();
    expect(priced?.headers.authorization).toBe(`Bearer ${ENDPOINT_KEY}`);
    await openai.chat.completions.create({ model: 'own-unpriced', messages: [{ role: 'user', content: 'no price' }] });
    await openai.chat.completions.create({ model: 'unpriced-sim', messages: [{ role: 'user', content: 'no price either' }] });
    expect(platformSim.lastRequest()?.headers.authorization).toBeUndefined();

    await gateway?.close();
    gateway = undefined;
    const stores = await openStores(loaded, { migrate: false });
    try {
      const rows = await modelsDb(stores.records.db).selectFrom('usage_rollups').select(['org_id', 'model', 'provider', 'requests', 'input_tokens', 'output_tokens', 'cost_micros', 'unmetered_requests']).orderBy('model').execute();
      const usage = { inputTokens: priced?.usage?.promptTokens ?? -1, outputTokens: priced?.usage?.completionTokens ?? -1, cachedInputTokens: 0, audioSeconds: 0 };
      expect(rows).toEqual([
        { org_id: admin.orgId, model: 'own-chat', provider: 'custom:own', requests: '1', input_tokens: String(usage.inputTokens), output_tokens: String(usage.outputTokens), cost_micros: String(costMicros(usage, PRICE)), unmetered_requests: '0' },
        expect.objectContaining({ org_id: admin.orgId, model: 'own-unpriced', provider: 'custom:own', requests: '1', cost_micros: '0', unmetered_requests: '0' }),
        expect.objectContaining({ org_id: admin.orgId, model: 'unpriced-sim', provider: 'sim', requests: '1', cost_micros: '0', unmetered_requests: '0' }),
      ]);
    } finally {
      await stores.close();
    }
    for (const line of logs) expect(line).not.toContain(ENDPOINT_KEY);
  });
});
