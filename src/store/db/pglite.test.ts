import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { describeRecordStoreContract } from './contract.js';
import { openTestRecordStore } from './testing.js';
import { openRecordStore } from './record-store.js';
import { openPglite } from './dialects/pglite.js';
import { migrateToLatest, migrationStatus } from './migrate.js';
import { MIGRATIONS } from './migrations/index.js';

describeRecordStoreContract('pglite (memory)', openTestRecordStore);

describe('pglite record store', () => {
  it('keeps its files under <dataDir>/db and survives a reopen', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'portcullis-db-'));
    try {
      const first = await openRecordStore({ dataDir });
      await first.db.insertInto('orgs').values({ id: 'persisted', name: 'P', slug: 'persisted' }).execute();
      await first.close();
      await first.close(); // idempotent
      expect((await stat(join(dataDir, 'db'))).isDirectory()).toBe(true);

      const second = await openRecordStore({ dataDir });
      const rows = await second.db.selectFrom('orgs').select('id').execute();
      expect(rows).toEqual([{ id: 'persisted' }]);
      await second.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('applies migrations once when several callers race on one database', async () => {
    const { db } = await openPglite();
    try {
      expect(await migrationStatus(db)).toEqual({ applied: [], pending: MIGRATIONS.map((m) => m.name) });
      const results = await Promise.all([migrateToLatest(db), migrateToLatest(db), migrateToLatest(db), migrateToLatest(db)]);
      expect(results.flatMap((r) => r.ranNow)).toEqual(MIGRATIONS.map((m) => m.name));
      const recorded = await sql<{ n: string }>`SELECT count(*) AS n FROM portcullis_migrations`.execute(db);
      expect(recorded.rows[0]?.n).toBe(String(MIGRATIONS.length));
    } finally {
      await db.destroy();
    }
  }, 120_000);

  it('rolls back a failing migration completely and refuses an unknown applied one', async () => {
    const { db } = await openPglite();
    try {
      const broken = [{ name: '0001_ok', statements: ['CREATE TABLE t_ok (a int)'] }, { name: '0002_bad', statements: ['CREATE TABLE t_bad (a int)', 'SELECT * FROM no_such_table'] }];
      await expect(migrateToLatest(db, { migrations: broken })).rejects.toMatchObject({ code: 'internal', message: 'Database migration 0002_bad failed.' });
      const exists = await sql<{ t: string | null }>`SELECT to_regclass('t_ok')::text AS t`.execute(db);
      expect(exists.rows[0]?.t).toBeNull();

      await migrateToLatest(db, { migrations: [{ name: '0001_ok', statements: ['CREATE TABLE t_ok (a int)'] }] });
      await expect(migrateToLatest(db, { migrations: [{ name: '0001_other', statements: [] }] })).rejects.toMatchObject({ code: 'internal' });
    } finally {
      await db.destroy();
    }
  }, 120_000);

  it('refuses ambiguous options', async () => {
    await expect(openRecordStore({})).rejects.toMatchObject({ code: 'internal' });
    await expect(openRecordStore({ inMemory: true, schema: 'x' })).rejects.toMatchObject({ code: 'internal' });
  });
});
