/** Real PostgreSQL for the distributed suites: a throwaway database, or a schema shared by replicas. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createTempDatabase as createOn, type TempDatabase } from '../../bench/throwaway-stores.js';
import { openRecordStore, type RecordStore } from '../../src/store/db/index.js';

export type { TempDatabase };

export const ADMIN_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A throwaway database per test file on the real server, dropped afterwards. */
export function createTempDatabase(): Promise<TempDatabase> {
  return createOn(ADMIN_DATABASE_URL, 'pc_test');
}

/** A schema of its own on the real server with several record stores on it, as several replicas have. */
export interface SharedSchema {
  /** The schema's name, for SQL a test runs behind the stores' backs. */
  name: string;
  /** A plain connection for what a test reads or tampers with directly. */
  admin: pg.Client;
  /** One store per replica: the first migrated the schema, the others opened it as it stood. */
  stores: RecordStore[];
  /** Closes the stores, drops the schema and ends the admin connection; safe after a failed start. */
  drop(): Promise<void>;
}

/** Creates `<prefix>_<random>` and opens `replicas` stores on it (each its own connection pool). */
export async function openSharedSchema(prefix: string, replicas: number): Promise<SharedSchema> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  const stores: RecordStore[] = [];
  const drop = async (): Promise<void> => {
    await Promise.allSettled(stores.map((store) => store.close()));
    await admin.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
    await admin.end();
  };
  try {
    await admin.query(`CREATE SCHEMA ${name}`);
    stores.push(await openRecordStore({ databaseUrl: ADMIN_DATABASE_URL, schema: name }));
    const rest = await Promise.allSettled(Array.from({ length: replicas - 1 }, () => openRecordStore({ databaseUrl: ADMIN_DATABASE_URL, schema: name, migrate: false })));
    for (const opened of rest) if (opened.status === 'fulfilled') stores.push(opened.value);
    const failed = rest.find((opened) => opened.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  } catch (error) {
    await drop();
    throw error;
  }
  return { name, admin, stores, drop };
}
