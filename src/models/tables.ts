/**
 * Kysely types of the tables migrations 0003_usage and 0005_usage_rollups create. Kept next to their only user and
 * joined to the shared `Database` with `withTables`, so the store's schema file stays untouched.
 * (Type aliases, not interfaces: `withTables` needs an indexable shape.)
 */
import type { ColumnType, Kysely } from 'kysely';
import type { Database, Db } from '../store/db/index.js';

/** A rollup sum: written as a number, incremented in an upsert, read back as a string (bigint). */
type CounterColumn = ColumnType<string, number, number>;

/** One hour of one (org, user, key, model, provider, free) bucket; absent ids are ''. */
export type UsageRollupsTable = {
  bucket_start: ColumnType<Date, Date, never>;
  org_id: string;
  user_id: string;
  key_id: string;
  model: string;
  provider: string;
  free: boolean;
  requests: CounterColumn;
  input_tokens: CounterColumn;
  output_tokens: CounterColumn;
  cached_input_tokens: CounterColumn;
  cost_micros: CounterColumn;
  unmetered_requests: CounterColumn;
};

export type UsageRollupFlushesTable = {
  flush_id: string;
  flushed_at: ColumnType<Date, Date | undefined, never>;
};

export type OrgProviderKeysTable = {
  org_id: string;
  provider_id: string;
  sealed: string;
  key_id: string;
  updated_by: string;
  updated_at: ColumnType<Date, Date | undefined, Date>;
};

export type ModelTables = {
  usage_rollups: UsageRollupsTable;
  usage_rollup_flushes: UsageRollupFlushesTable;
  org_provider_keys: OrgProviderKeysTable;
};

export type ModelsDb = Kysely<Database & ModelTables>;

export function modelsDb(db: Db): ModelsDb {
  return db.withTables<ModelTables>();
}
