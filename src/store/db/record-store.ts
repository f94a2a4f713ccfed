/**
 * Opening the record store: PostgreSQL when a database URL is given (distributed deployment),
 * otherwise PGlite with its files in the data folder (embedded default), or in memory for tests.
 */
import { sql } from 'kysely';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Db } from './schema.js';
import { migrateToLatest } from './migrate.js';

export type RecordStoreKind = 'pglite' | 'postgres';

export interface RecordStore {
  db: Db;
  kind: RecordStoreKind;
  /** Resolves when the database answers a trivial query; throws AppError('dependency_unavailable') otherwise. */
  ping(): Promise<void>;
  /** Closes the pool (or the embedded database) after in-flight work; idempotent. */
  close(): Promise<void>;
}

export interface OpenRecordStoreOptions {
  /** postgres://… — selects PostgreSQL. */
  databaseUrl?: string;
  /** Embedded deployment folder; files go to `<dataDir>/db` (created if missing). */
  dataDir?: string;
  /** Embedded database in memory (tests). Used when neither databaseUrl nor dataDir is given. */
  inMemory?: boolean;
  /** PostgreSQL only: schema pinned as search_path on every connection. */
  schema?: string;
  /** Apply pending migrations before returning (default true). */
  migrate?: boolean;
  /** PostgreSQL only: pool size bound (default 10). */
  maxConnections?: number;
  logger?: Logger;
}

/** Wraps an opened Kysely instance (used by openRecordStore and testing.ts, not exported from index). */
export function storeOf(db: Db, kind: RecordStoreKind): RecordStore {
  let closing: Promise<void> | undefined;
  return {
    db,
    kind,
    async ping() {
      try {
        await sql`SELECT 1`.execute(db);
      } catch (err) {
        throw new AppError('dependency_unavailable', { message: 'The record store is unavailable.', cause: err });
      }
    },
    close() {
      closing ??= db.destroy();
      return closing;
    },
  };
}

export async function openRecordStore(options: OpenRecordStoreOptions = {}): Promise<RecordStore> {
  let store: RecordStore;
  if (options.databaseUrl !== undefined) {
    if (options.dataDir !== undefined || options.inMemory === true) {
      throw new AppError('internal', { message: 'Choose one record store: a database URL, or a data folder / memory.' });
    }
    // Each dialect (and its driver) loads only for the deployment that uses it.
    const { openPostgres } = await import('./dialects/postgres.js');
    const db = openPostgres({
      databaseUrl: options.databaseUrl,
      ...(options.schema === undefined ? {} : { schema: options.schema }),
      ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
    store = storeOf(db, 'postgres');
  } else {
    if (options.schema !== undefined) {
      throw new AppError('internal', { message: 'A schema can only be chosen for PostgreSQL.' });
    }
    if (options.dataDir === undefined && options.inMemory !== true) {
      throw new AppError('internal', { message: 'The record store needs a database URL, a data folder, or inMemory.' });
    }
    const { openPglite } = await import('./dialects/pglite.js');
    const { db } = await openPglite(options.dataDir === undefined ? {} : { dataDir: options.dataDir });
    store = storeOf(db, 'pglite');
  }
  if (options.migrate !== false) {
    try {
      await migrateToLatest(store.db, options.logger === undefined ? {} : { logger: options.logger });
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
  }
  return store;
}
