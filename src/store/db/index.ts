/** The record store's public surface: open it, type queries with `Db`, classify database errors. */
export type * from './schema.js';
export { openRecordStore, type RecordStore, type RecordStoreKind, type OpenRecordStoreOptions } from './record-store.js';
export { migrateToLatest, migrationStatus, type MigrationStatus, type MigrateResult, type MigrateOptions } from './migrate.js';
export { isUniqueViolation, isForeignKeyViolation, isCheckViolation, isRetryableTransactionError, DbError } from './errors.js';
