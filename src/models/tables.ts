/**
 * Kysely types of the tables migration 0003_usage creates. Kept next to their only user and
 * joined to the shared `Database` with `withTables`, so the store's schema file stays untouched.
 * (Type aliases, not interfaces: `withTables` needs an indexable shape.)
 */
import type { ColumnType, Generated, Kysely } from 'kysely';
import type { Database, Db } from '../store/db/index.js';

type BigintColumn = ColumnType<string, number, never>;

export type UsageRecordsTable = {
  id: Generated<string>;
  request_id: string;
  created_at: ColumnType<Date, Date, never>;
  org_id: string | null;
  user_id: string | null;
  key_id: string | null;
  principal_id: string;
  model: string;
  provider: string;
  route: string;
  input_tokens: BigintColumn;
  output_tokens: BigintColumn;
  cached_input_tokens: BigintColumn;
  cost_micros: BigintColumn;
  free: boolean;
  unmetered: boolean;
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
  usage_records: UsageRecordsTable;
  org_provider_keys: OrgProviderKeysTable;
};

export type ModelsDb = Kysely<Database & ModelTables>;

export function modelsDb(db: Db): ModelsDb {
  return db.withTables<ModelTables>();
}
