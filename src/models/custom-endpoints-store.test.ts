import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAead } from '../core/aead.js';
import type { RecordStore } from '../store/db/index.js';
import { openTestRecordStore } from '../store/db/testing.js';
import { OrgCustomEndpoints } from './custom-endpoints-store.js';

const clock = { now: () => Date.parse('2026-01-01T00:00:00Z') };
let store: RecordStore;
let endpoints: OrgCustomEndpoints;

beforeAll(async () => {
  store = await openTestRecordStore();
  await store.db.insertInto('orgs').values([{ id: 'org_a', name: 'A', slug: 'a' }, { id: 'org_b', name: 'B', slug: 'b' }]).execute();
  endpoints = new OrgCustomEndpoints(store.db, createAead({ activeKeyId: 'k', keys: { k: randomBytes(32) } }), clock);
});
afterAll(async () => {
  await store.close();
});

describe('OrgCustomEndpoints', () => {
  it('stores an endpoint with a write-only key and opens it for that org only', async () => {
    await endpoints.put('org_a', 'local', { baseUrl: 'https://llm.example.com/v1', apiKey: 'sk-secret-value', models: [{ alias: 'my-llama', upstream: 'llama-3' }] }, 'usr_1');
    const view = await endpoints.get('org_a', 'local');
    expect(view).toEqual({ endpointId: 'local', baseUrl: 'https://llm.example.com/v1', hasKey: true, models: [{ alias: 'my-llama', upstream: 'llama-3' }], updatedAt: '2026-01-01T00:00:00.000Z' });
    expect(JSON.stringify(await endpoints.list('org_a'))).not.toContain('sk-secret-value');
    expect(await endpoints.openOrg('org_a')).toEqual([{ endpointId: 'local', baseUrl: 'https://llm.example.com/v1', apiKey: 'sk-secret-value', models: [{ alias: 'my-llama', upstream: 'llama-3' }] }]);
    expect(await endpoints.openOrg('org_b')).toEqual([]);
    expect(await endpoints.get('org_b', 'local')).toBeNull();
    // A sealed key copied into another org's row does not open there (bound to org and endpoint).
    const db = store.db.withTables<{ org_custom_endpoints: { org_id: string; endpoint_id: string; base_url: string; sealed_key: string | null; key_id: string | null; models: string; updated_by: string } }>();
    const row = await db.selectFrom('org_custom_endpoints').selectAll().where('org_id', '=', 'org_a').executeTakeFirstOrThrow();
    expect(row.sealed_key).not.toContain('sk-secret-value');
    await db.insertInto('org_custom_endpoints').values({ ...row, org_id: 'org_b' }).execute();
    await expect(endpoints.openOrg('org_b')).rejects.toThrow();
    await db.deleteFrom('org_custom_endpoints').where('org_id', '=', 'org_b').execute();
  });

  it('keeps the key on update without one, clears it with null, and deletes', async () => {
    await endpoints.put('org_a', 'local', { baseUrl: 'https://llm2.example.com/v1', models: [{ alias: 'my-llama', upstream: 'llama-3.1' }] }, 'usr_1');
    expect((await endpoints.openOrg('org_a'))[0]?.apiKey).toBe('sk-secret-value');
    await endpoints.put('org_a', 'local', { baseUrl: 'https://llm2.example.com/v1', apiKey: null, models: [{ alias: 'my-llama', upstream: 'llama-3.1' }] }, 'usr_1');
    expect((await endpoints.get('org_a', 'local'))?.hasKey).toBe(false);
    expect(await endpoints.remove('org_b', 'local')).toBe(false);
    expect(await endpoints.remove('org_a', 'local')).toBe(true);
    expect(await endpoints.list('org_a')).toEqual([]);
  });

  it('rejects malformed model lists: empty, duplicate aliases, float prices, unknown fields', async () => {
    const put = (models: unknown) => endpoints.put('org_a', 'x', { baseUrl: 'https://a.example.com', models: models as [] }, 'usr_1');
    await expect(put([])).rejects.toThrow();
    await expect(put([{ alias: 'a', upstream: 'u' }, { alias: 'a', upstream: 'v' }])).rejects.toThrow();
    await expect(put([{ alias: 'a', upstream: 'u', price: { inputPerMTok: 1.5, outputPerMTok: 1 } }])).rejects.toThrow();
    await expect(put([{ alias: 'a', upstream: 'u', prices: {} }])).rejects.toThrow();
    expect(await endpoints.list('org_a')).toEqual([]);
  });

  it('keeps prices and output limits with the models', async () => {
    const models = [{ alias: 'priced', upstream: 'u', price: { inputPerMTok: 1_000_000, outputPerMTok: 2_000_000, cachedInputPerMTok: 500_000 }, maxOutputTokens: 256 }, { alias: 'unpriced', upstream: 'v' }];
    await endpoints.put('org_a', 'priced', { baseUrl: 'https://a.example.com', models }, 'usr_1');
    expect((await endpoints.openOrg('org_a'))[0]?.models).toEqual(models);
    await endpoints.remove('org_a', 'priced');
  });
});
