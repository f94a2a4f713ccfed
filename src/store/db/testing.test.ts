import { afterAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openTestRecordStore } from './testing.js';
import type { RecordStore } from './record-store.js';
import { MIGRATIONS } from './migrations/index.js';

describe('openTestRecordStore', () => {
  const stores: RecordStore[] = [];
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
  });

  it('returns a migrated in-memory store, isolated per call', async () => {
    const a = await openTestRecordStore();
    const b = await openTestRecordStore();
    stores.push(a, b);
    expect(a.kind).toBe('pglite');
    await a.ping();
    await a.db.insertInto('orgs').values({ id: 'o1', name: 'One', slug: 'one' }).execute();
    const inA = await a.db.selectFrom('orgs').selectAll().execute();
    const inB = await b.db.selectFrom('orgs').selectAll().execute();
    expect(inA).toHaveLength(1);
    expect(inA[0]?.created_at).toBeInstanceOf(Date);
    expect(inB).toHaveLength(0);
    const tables = await sql<{ n: string }>`SELECT count(*) AS n FROM portcullis_migrations`.execute(a.db);
    expect(tables.rows[0]?.n).toBe(String(MIGRATIONS.length));
  }, 180_000);
});
