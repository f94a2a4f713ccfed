import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { MemoryHotState } from '../store/state/index.js';
import { ModelCatalogue } from './catalogue.js';
import { modelsConfigSchema } from './config.js';
import type { OpenedEndpoint } from './custom-endpoints-store.js';
import { RECORD_CACHE_TTL_MS } from './invalidated-cache.js';
import { ModelResolver } from './model-resolver.js';

const catalogue = new ModelCatalogue(
  modelsConfigSchema.parse({
    providers: [{ id: 'openai', kind: 'openai', baseUrl: 'https://api.openai.example/v1' }],
    models: [{ alias: 'gpt', provider: 'openai', upstreamModel: 'gpt-x', price: { inputPerMTok: 1, outputPerMTok: 2 } }],
  }),
);

const ORG_ENDPOINTS: Record<string, OpenedEndpoint[]> = {
  org_a: [
    { endpointId: 'a-first', baseUrl: 'https://llm.a.example/v1/', apiKey: 'sk-a-endpoint', models: [{ alias: 'llama', upstream: 'llama-3', price: { inputPerMTok: 5, outputPerMTok: 7 }, maxOutputTokens: 64 }, { alias: 'gpt', upstream: 'shadowed' }] },
    { endpointId: 'b-second', baseUrl: 'https://other.a.example/v1', apiKey: null, models: [{ alias: 'llama', upstream: 'loses' }, { alias: 'plain', upstream: 'p' }] },
  ],
  org_b: [{ endpointId: 'a-first', baseUrl: 'https://llm.b.example/v1', apiKey: 'sk-b-endpoint', models: [{ alias: 'b-only', upstream: 'm' }] }],
};

function setup() {
  const clock = new ManualClock();
  const reads: string[] = [];
  let failing = false;
  const endpoints = {
    openOrg: async (orgId: string) => {
      reads.push(orgId);
      if (failing) throw new Error('record store down');
      return ORG_ENDPOINTS[orgId] ?? [];
    },
  };
  const resolver = new ModelResolver({ catalogue, endpoints, pubsub: new MemoryHotState({ clock }), clock });
  return { resolver, reads, clock, fail: (value: boolean) => (failing = value) };
}

describe('ModelResolver', () => {
  it('catalogue aliases resolve without reading the org, even while the record store is down', async () => {
    const { resolver, reads, fail } = setup();
    fail(true);
    expect((await resolver.resolve('org_a', 'gpt'))?.provider.id).toBe('openai');
    expect((await resolver.resolve(null, 'gpt'))?.upstreamModel).toBe('gpt-x');
    expect(reads).toEqual([]);
  });

  it("an org's custom model resolves for that org only; another org and anonymous callers find nothing", async () => {
    const { resolver } = setup();
    const llama = await resolver.resolve('org_a', 'llama');
    expect(llama).toMatchObject({ alias: 'llama', upstreamModel: 'llama-3', free: false, price: { inputPerMTok: 5, outputPerMTok: 7 }, maxOutputTokens: 64, fallbacks: [] });
    expect(llama?.provider).toMatchObject({ id: 'custom:a-first', kind: 'openai_compatible', baseUrl: 'https://llm.a.example/v1', managedKey: 'sk-a-endpoint', egress: 'org', dependency: 'provider:custom:org_a:a-first' });
    expect(await resolver.resolve('org_b', 'llama')).toBeUndefined();
    expect(await resolver.resolve(null, 'llama')).toBeUndefined();
    expect((await resolver.resolve('org_b', 'b-only'))?.provider).toMatchObject({ managedKey: 'sk-b-endpoint', dependency: 'provider:custom:org_b:a-first' });
    expect(await resolver.resolve('org_a', 'b-only')).toBeUndefined();
  });

  it('the catalogue wins over a custom alias, and the first endpoint by id wins among the org’s own', async () => {
    const { resolver } = setup();
    expect((await resolver.resolve('org_a', 'gpt'))?.provider.id).toBe('openai');
    expect((await resolver.resolve('org_a', 'llama'))?.upstreamModel).toBe('llama-3');
    const own = await resolver.orgModels('org_a');
    expect(own.map((m) => m.alias).sort()).toEqual(['llama', 'plain']);
    const plain = own.find((m) => m.alias === 'plain');
    expect(plain).toMatchObject({ price: null, maxOutputTokens: 4096, provider: { managedKey: null } });
    expect(await resolver.orgModels(null)).toEqual([]);
  });

  it('reads an org once per TTL, not per request; names no org could have chosen cost no read', async () => {
    const { resolver, reads, clock } = setup();
    for (let i = 0; i < 20; i += 1) await resolver.resolve('org_a', i % 2 === 0 ? 'llama' : 'missing');
    expect(reads).toEqual(['org_a']);
    await resolver.resolve('org_a', 'has spaces');
    await resolver.resolve('org_a', 'x'.repeat(129));
    expect(reads).toEqual(['org_a']);
    clock.advance(RECORD_CACHE_TTL_MS);
    await resolver.resolve('org_a', 'llama');
    expect(reads).toEqual(['org_a', 'org_a']);
    await resolver.changed('org_a');
    await resolver.resolve('org_a', 'llama');
    expect(reads).toEqual(['org_a', 'org_a', 'org_a']);
  });

  it('a cold org with the record store down is 503 dependency_unavailable, never a 500', async () => {
    const { resolver, fail } = setup();
    fail(true);
    await expect(resolver.resolve('org_a', 'llama')).rejects.toMatchObject({ code: 'dependency_unavailable', status: 503 });
    await expect(resolver.orgModels('org_a')).rejects.toMatchObject({ code: 'dependency_unavailable' });
  });

  it('hashes an org id the circuit breaker could not take', async () => {
    const clock = new ManualClock();
    const odd = 'org with spaces/and:colons';
    const resolver = new ModelResolver({ catalogue, endpoints: { openOrg: async () => ORG_ENDPOINTS.org_b ?? [] }, pubsub: new MemoryHotState({ clock }), clock });
    const dependency = (await resolver.resolve(odd, 'b-only'))?.provider.dependency ?? '';
    expect(dependency).toMatch(/^provider:custom:[A-Za-z0-9_-]{22}:a-first$/);
    expect(dependency).toMatch(/^[A-Za-z0-9_.:-]{1,128}$/);
  });
});
