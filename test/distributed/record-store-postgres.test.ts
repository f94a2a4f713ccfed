/**
 * The record-store contract on a real PostgreSQL server, plus the replica-start race: several
 * processes' worth of pools migrating one fresh schema at once. Each run works in its own schema,
 * dropped at the end; an unreachable server fails the run (the beforeAll throws), never skips it.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { describeRecordStoreContract } from '../../src/store/db/contract.js';
import { openRecordStore, migrateToLatest, type RecordStore } from '../../src/store/db/index.js';
import { MIGRATIONS } from '../../src/store/db/migrations/index.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = randomBytes(6).toString('hex');
const CONTRACT_SCHEMA = `rs_contract_${RUN}`;
const RACE_SCHEMA = `rs_race_${RUN}`;
const MISSING_SCHEMA = `rs_missing_${RUN}`;

const admin = new pg.Pool({ connectionString: DATABASE_URL, max: 2, connectionTimeoutMillis: 5_000 });

beforeAll(async () => {
  await admin.query(`CREATE SCHEMA ${CONTRACT_SCHEMA}`);
  await admin.query(`CREATE SCHEMA ${RACE_SCHEMA}`);
});

afterAll(async () => {
  try {
    await admin.query(`DROP SCHEMA IF EXISTS ${CONTRACT_SCHEMA} CASCADE`);
    await admin.query(`DROP SCHEMA IF EXISTS ${RACE_SCHEMA} CASCADE`);
  } finally {
    await admin.end();
  }
});

describeRecordStoreContract('postgres', () => openRecordStore({ databaseUrl: DATABASE_URL, schema: CONTRACT_SCHEMA }));

describe('postgres record store', () => {
  it('runs each migration once when four replicas migrate one fresh schema together', async () => {
    const replicas: RecordStore[] = await Promise.all(
      [1, 2, 3, 4].map(() => openRecordStore({ databaseUrl: DATABASE_URL, schema: RACE_SCHEMA, migrate: false, maxConnections: 2 })),
    );
    try {
      const results = await Promise.all(replicas.map((r) => migrateToLatest(r.db)));
      const names = MIGRATIONS.map((m) => m.name);
      for (const result of results) expect(result.applied).toEqual(names);
      // Exactly one replica did the work; the others waited on the lock and found nothing to do.
      expect(results.flatMap((r) => r.ranNow)).toEqual(names);
      const recorded = await admin.query<{ name: string }>(`SELECT name FROM ${RACE_SCHEMA}.portcullis_migrations ORDER BY name`);
      expect(recorded.rows.map((r) => r.name)).toEqual(names);
      // The tables landed in the replica's schema, not in public.
      const tables = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'users'`, [RACE_SCHEMA]);
      expect(tables.rows[0]?.n).toBe('1');
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
    }
  });

  it('pins search_path on every pooled connection', async () => {
    const store = await openRecordStore({ databaseUrl: DATABASE_URL, schema: CONTRACT_SCHEMA, migrate: false, maxConnections: 3 });
    try {
      const seen = await Promise.all(
        [1, 2, 3].map(() => store.db.connection().execute(async (conn) => {
          const row = await sql<{ s: string }>`SELECT current_schema() AS s, pg_sleep(0.05)`.execute(conn);
          return row.rows[0]?.s;
        })),
      );
      expect(seen).toEqual([CONTRACT_SCHEMA, CONTRACT_SCHEMA, CONTRACT_SCHEMA]);
    } finally {
      await store.close();
    }
  });

  it('refuses to migrate into a schema that does not exist', async () => {
    await expect(openRecordStore({ databaseUrl: DATABASE_URL, schema: MISSING_SCHEMA })).rejects.toMatchObject({
      code: 'internal',
      message: 'The configured database schema does not exist; create it first.',
    });
  });

  it('refuses a schema name that is not a plain identifier', async () => {
    await expect(openRecordStore({ databaseUrl: DATABASE_URL, schema: 'x; DROP TABLE users' })).rejects.toThrow(/invalid schema name/);
  });

  it('reports an unreachable server as dependency_unavailable on ping', async () => {
    const store = await openRecordStore({ databaseUrl: 'postgres://postgres@127.0.0.1:1/none', migrate: false });
    try {
      await expect(store.ping()).rejects.toMatchObject({ code: 'dependency_unavailable' });
    } finally {
      await store.close();
    }
  });
});
