/**
 * Org custom endpoints on real PostgreSQL, where transactions truly run side by side (PGlite
 * serializes them): simultaneous writes from several replicas that each claim the same alias for a
 * different endpoint leave exactly one endpoint serving it, because the check and the write run
 * under the org's row lock. In a throwaway database, dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAead } from '../../src/core/aead.js';
import { systemClock } from '../../src/core/clock.js';
import { OrgCustomEndpoints, type CustomEndpointView } from '../../src/models/custom-endpoints-store.js';
import { openRecordStore, type RecordStore } from '../../src/store/db/index.js';
import { createTempDatabase, type TempDatabase } from '../support/postgres.js';

const aead = createAead({ activeKeyId: 'k', keys: { k: randomBytes(32) } });

let database: TempDatabase;
/** Several stores = several connection pools, like several replicas. */
let stores: RecordStore[] = [];

beforeAll(async () => {
  database = await createTempDatabase();
  const first = await openRecordStore({ databaseUrl: database.url });
  const rest = await Promise.all([1, 2, 3].map(() => openRecordStore({ databaseUrl: database.url, migrate: false })));
  stores = [first, ...rest];
  await first.db.insertInto('orgs').values({ id: 'org_race', name: 'Race', slug: 'race' }).execute();
});

afterAll(async () => {
  await Promise.allSettled(stores.map((s) => s.close()));
  await database?.drop();
});

/** The route's rule, reduced to the alias: another endpoint of the org already serves it. */
const aliasTaken = (endpointId: string) => (existing: readonly CustomEndpointView[]): string | null =>
  existing.some((endpoint) => endpoint.endpointId !== endpointId && endpoint.models.some((model) => model.alias === 'raced')) ? 'taken' : null;

describe('custom endpoints on PostgreSQL', () => {
  it('lets exactly one of many simultaneous writes from several replicas claim an alias', async () => {
    const writers = stores.map((store) => new OrgCustomEndpoints(store.db, aead, systemClock));
    const attempts = Array.from({ length: 16 }, (_, i) => {
      const endpointId = `race${i}`;
      const writer = writers[i % writers.length] as OrgCustomEndpoints;
      return writer.put('org_race', endpointId, { baseUrl: 'https://api.example.com/v1', models: [{ alias: 'raced', upstream: 'x' }] }, 'usr_test', aliasTaken(endpointId));
    });
    const verdicts = await Promise.all(attempts);
    expect(verdicts.filter((verdict) => verdict === null)).toHaveLength(1);
    expect(verdicts.filter((verdict) => verdict === 'taken')).toHaveLength(15);
    const serving = (await writers[0]?.list('org_race'))?.filter((endpoint) => endpoint.models.some((model) => model.alias === 'raced'));
    expect(serving).toHaveLength(1);
  });
});
