/**
 * Org custom endpoints on real PostgreSQL, where transactions truly run side by side (PGlite
 * serializes them): simultaneous writes from several replicas that each claim the same alias for a
 * different endpoint leave exactly one endpoint serving it, because the check and the write run
 * under the org's row lock. Isolated in a unique schema, dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAead } from '../../src/core/aead.js';
import { systemClock } from '../../src/core/clock.js';
import { OrgCustomEndpoints, type CustomEndpointView } from '../../src/models/custom-endpoints-store.js';
import { openRecordStore, type RecordStore } from '../../src/store/db/index.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SCHEMA = `endpoints_${randomBytes(5).toString('hex')}`;
const aead = createAead({ activeKeyId: 'k', keys: { k: randomBytes(32) } });

let admin: pg.Client;
/** Several stores = several connection pools, like several replicas. */
let stores: RecordStore[] = [];

beforeAll(async () => {
  admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${SCHEMA}`);
  const first = await openRecordStore({ databaseUrl: DATABASE_URL, schema: SCHEMA });
  const rest = await Promise.all([1, 2, 3].map(() => openRecordStore({ databaseUrl: DATABASE_URL, schema: SCHEMA, migrate: false })));
  stores = [first, ...rest];
  await first.db.insertInto('orgs').values({ id: 'org_race', name: 'Race', slug: 'race' }).execute();
});

afterAll(async () => {
  await Promise.allSettled(stores.map((s) => s.close()));
  if (admin !== undefined) {
    await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    await admin.end();
  }
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
