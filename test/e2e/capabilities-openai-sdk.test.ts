/**
 * A sandboxed container using the official `openai` SDK with a capability as its API key
 * (OPENAI_BASE_URL → the gateway, OPENAI_API_KEY → the capability, the container id added by the
 * sandbox's trusted proxy): it gets answers, and the usage is recorded for the capability's user.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../bench/simulator/index.js';
import { MemoryAuditSink } from '../../src/audit/sink.js';
import { createCapabilityService, type CapabilityService } from '../../src/capabilities/http/index.js';
import { AGENT_USER, ISSUER, ORG, principals, runtimeConfig, seedOrgs, waitFor } from '../../src/capabilities/http/testing/harness.js';
import { createAead } from '../../src/core/aead.js';
import { systemClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { createHttpApp } from '../../src/http/app.js';
import { createAuthenticator } from '../../src/identity/authenticate.js';
import { IdentityCache, createDbIdentityRecords } from '../../src/identity/cache/index.js';
import { ApiKeyVerifier } from '../../src/identity/keys/index.js';
import { createModelService, modelsConfigSchema, registerModelRoutes, unguardedAdmission, type ModelService } from '../../src/models/index.js';
import type { RecordStore } from '../../src/store/db/index.js';
import { openTestRecordStore } from '../../src/store/db/testing.js';
import { MemoryHotState } from '../../src/store/state/index.js';
import type { FastifyInstance } from 'fastify';

const MANAGED_KEY = 'sk-managed-0123456789abcdefghijklmnop';
const CONTAINER = 'ctr-sdk';

let simulator: Simulator;
let store: RecordStore;
let state: MemoryHotState;
let identity: IdentityCache;
let models: ModelService;
let capabilities: CapabilityService;
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  simulator = await startSimulator({ apiKey: MANAGED_KEY });
  store = await openTestRecordStore();
  await seedOrgs(store);
  state = new MemoryHotState();
  const logger = createLogger({ level: 'silent' });
  identity = new IdentityCache({ records: createDbIdentityRecords(store.db), pubsub: state, clock: systemClock, logger });
  await identity.start();
  const metrics = new Registry();
  models = await createModelService({
    config: modelsConfigSchema.parse({
      providers: [
        { id: 'sim', kind: 'openai', baseUrl: `${simulator.url}/v1`, apiKey: { env: 'SIM_KEY' }, timeoutMs: 2000 },
        { id: 'sim-anthropic', kind: 'anthropic', baseUrl: `${simulator.url}/v1`, apiKey: { env: 'SIM_KEY' }, timeoutMs: 2000 },
      ],
      models: [
        { alias: 'chat', provider: 'sim', upstreamModel: 'sim-chat', price: { inputPerMTok: 2_500_000, outputPerMTok: 10_000_000 }, maxOutputTokens: 1000 },
        { alias: 'claude', provider: 'sim-anthropic', upstreamModel: 'sim-claude', price: { inputPerMTok: 3_000_000, outputPerMTok: 15_000_000 }, maxOutputTokens: 1000 },
      ],
      freeModels: {},
      allowUnpricedModels: false,
      usage: { flushIntervalMs: 50, batchSize: 100 },
    }),
    db: store.db,
    state,
    aead: createAead({ activeKeyId: 't1', keys: new Map([['t1', randomBytes(32)]]) }),
    admission: unguardedAdmission(() => undefined),
    metrics,
    clock: systemClock,
    logger,
    env: { SIM_KEY: MANAGED_KEY },
  });
  capabilities = createCapabilityService({ config: runtimeConfig(), db: store.db, state, audit: new MemoryAuditSink(), clock: systemClock, heartbeatMs: 40, deafAfterMs: 400 });
  await capabilities.start();
  const authenticate = createAuthenticator({
    keys: new ApiKeyVerifier({ secrets: new Map([['k1', new Uint8Array(randomBytes(32))]]), clock: systemClock, isRevoked: () => false }),
    identity,
    capabilities: capabilities.capabilityPrincipal,
  });
  const http = createHttpApp({
    logger,
    bodyLimitBytes: 1024 * 1024,
    trustedProxies: [],
    behindTls: false,
    authenticate,
    readiness: async () => ({ ready: true, checks: {} }),
    metrics,
    version: 'test',
  });
  app = http.app;
  registerModelRoutes(app, http.registry, { gateway: models.gateway, authenticate, db: store.db, orgKeys: models.orgKeys });
  url = (await app.listen({ host: '127.0.0.1', port: 0 })).replace('[::1]', '127.0.0.1');
}, 60_000);

afterAll(async () => {
  await app?.close();
  await capabilities?.close();
  await models?.close();
  await identity?.stop();
  await store?.close();
  await simulator?.close();
});

/** What the platform's backend asks for its sandbox: a capability with an `org_models` grant, bound to the container. */
async function issueModelCapability(sessionId: string): Promise<{ token: string }> {
  await waitFor(() => capabilities.revocations.fresh());
  const issuer = principals.issuer;
  if (issuer === undefined) throw new Error('fixture missing');
  return capabilities.broker.issue(issuer, ORG, {
    userId: AGENT_USER,
    sessionId,
    binding: { type: 'container', containerId: CONTAINER },
    grants: [{ name: 'models', origin: 'https://models.example.com', methods: ['POST'], pathPrefixes: ['/v1/'], credential: { ref: 'backend:service', header: 'authorization', scheme: 'Bearer' }, routeClass: 'org_models' }],
  });
}

describe('a capability as the OpenAI API key', () => {
  it('gets answers through the official SDK and is metered to its user', async () => {
    const issued = await issueModelCapability('ses_sdk');
    // What the sandbox gets: a base URL and a key; its proxy adds the container header.
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: issued.token, defaultHeaders: { 'x-portcullis-container': CONTAINER }, maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello from the sandbox' }] });
    expect(completion.choices[0]?.message.content?.length ?? 0).toBeGreaterThan(0);

    const deadline = Date.now() + 3000;
    let rows: { user_id: string | null; org_id: string | null }[] = [];
    while (Date.now() < deadline) {
      rows = (await sql<{ user_id: string | null; org_id: string | null }>`SELECT user_id, org_id FROM usage_rollups`.execute(store.db)).rows;
      if (rows.length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(rows).toContainEqual({ user_id: AGENT_USER, org_id: ORG });
    expect(rows.some((row) => row.user_id === ISSUER)).toBe(false);

    // Without the trusted hop's container header the same key is refused.
    const stranger = new OpenAI({ baseURL: `${url}/v1`, apiKey: issued.token, maxRetries: 0 });
    await expect(stranger.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 403 });
  });
});

describe('a capability as the Anthropic API key (x-api-key)', () => {
  it('gets answers through the official SDK; the binding is still required', async () => {
    const issued = await issueModelCapability('ses_sdk_anthropic');
    const client = new Anthropic({ baseURL: url, apiKey: issued.token, defaultHeaders: { 'x-portcullis-container': CONTAINER }, maxRetries: 0 });
    const message = await client.messages.create({ model: 'claude', max_tokens: 20, messages: [{ role: 'user', content: 'hello from the sandbox' }] });
    expect(message.content[0]?.type).toBe('text');
    // The provider got the managed key, never the capability.
    const upstream = simulator.lastRequest();
    expect(upstream?.headers['x-api-key']).toBe(MANAGED_KEY);
    expect(JSON.stringify(upstream?.headers)).not.toContain(issued.token);

    const stranger = new Anthropic({ baseURL: url, apiKey: issued.token, maxRetries: 0 });
    await expect(stranger.messages.create({ model: 'claude', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 403 });
    const forged = new Anthropic({ baseURL: url, apiKey: `${issued.token.slice(0, -4)}AAAA`, defaultHeaders: { 'x-portcullis-container': CONTAINER }, maxRetries: 0 });
    await expect(forged.messages.create({ model: 'claude', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 401 });
  });
});
