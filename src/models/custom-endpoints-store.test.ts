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
  it('stores an endpoint with a write-only key and resolves its models for that org only', async () => {
    await endpoints.put('org_a', 'local', { baseUrl: 'https://llm.example.com/v1', apiKey: 'sk-secret-value', models: [{ alias: 'my-llama', upstream: 'llama-3' }] }, 'usr_1');
    const view = await endpoints.get('org_a', 'local');
    expect(view).toEqual({ endpointId: 'local', baseUrl: 'https://llm.example.com/v1', hasKey: true, models: [{ alias: 'my-llama', upstream: 'llama-3' }], updatedAt: '2026-01-01T00:00:00.000Z' });
    expect(JSON.stringify(await endpoints.list('org_a'))).not.toContain('sk-secret-value');
    expect(await endpoints.resolveModel('org_a', 'my-llama')).toEqual({ endpointId: 'local', baseUrl: 'https://llm.example.com/v1', apiKey: 'sk-secret-value', upstreamModel: 'llama-3' });
    expect(await endpoints.resolveModel('org_b', 'my-llama')).toBeNull();
    expect(await endpoints.get('org_b', 'local')).toBeNull();
    expect(await endpoints.resolveModel('org_a', 'other')).toBeNull();
  });

  it('keeps the key on update without one, clears it with null, and deletes', async () => {
    await endpoints.put('org_a', 'local', { baseUrl: 'https://llm2.example.com/v1', models: [{ alias: 'my-llama', upstream: 'llama-3.1' }] }, 'usr_1');
    expect((await endpoints.resolveModel('org_a', 'my-llama'))?.apiKey).toBe('sk-secret-value');
    await endpoints.put('org_a', 'local', { baseUrl: 'https://llm2.example.com/v1', apiKey: null, models: [{ alias: 'my-llama', upstream: 'llama-3.1' }] }, 'usr_1');
    expect((await endpoints.get('org_a', 'local'))?.hasKey).toBe(false);
    expect(await endpoints.remove('org_b', 'local')).toBe(false);
    expect(await endpoints.remove('org_a', 'local')).toBe(true);
    expect(await endpoints.list('org_a')).toEqual([]);
  });

  it('rejects malformed model lists', async () => {
    await expect(endpoints.put('org_a', 'x', { baseUrl: 'https://a.example.com', models: [] }, 'usr_1')).rejects.toThrow();
  });
});
