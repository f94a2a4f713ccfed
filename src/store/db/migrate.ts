/**
 * Applies the versioned migrations under a lock, so replicas starting together are safe.
 *
 * Why not Kysely's Migrator: it does take a PostgreSQL advisory lock, but (1) it creates its
 * bookkeeping tables before taking the lock, (2) without an explicit schema it decides whether
 * its table exists by looking in every schema, which breaks when several schemas share a database
 * (our tests isolate that way), and (3) its lock id is one constant for the whole database. Here
 * everything — bookkeeping table, lock, reading what was applied, applying the rest — happens in
 * ONE transaction on one connection, after a transaction-scoped advisory lock keyed by the current
 * schema. PostgreSQL DDL is transactional, so a failed migration leaves nothing half-applied, and
 * a replica that waited on the lock sees the winner's committed work and applies nothing.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Database } from './schema.js';
import { MIGRATIONS, type Migration } from './migrations/index.js';

const MIGRATIONS_TABLE = 'portcullis_migrations';
/** How long a starting replica waits for another one's migration before failing (ms). */
const LOCK_TIMEOUT_MS = 60_000;

export interface MigrationStatus {
  /** Names recorded in the database, in apply order. */
  applied: string[];
  /** Names known to this build and not yet applied, in apply order. */
  pending: string[];
}

export interface MigrateResult extends MigrationStatus {
  /** Names this call applied (empty when another replica or an earlier start already did). */
  ranNow: string[];
}

export interface MigrateOptions {
  logger?: Logger;
  /** Overrides the built-in list; for tests. */
  migrations?: readonly Migration[];
}

async function ensureMigrationsTable(trx: Transaction<Database>): Promise<void> {
  await sql`CREATE TABLE IF NOT EXISTS ${sql.table(MIGRATIONS_TABLE)} (
    name text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`.execute(trx);
}

async function readApplied(db: Kysely<Database> | Transaction<Database>): Promise<string[]> {
  const result = await sql<{ name: string }>`SELECT name FROM ${sql.table(MIGRATIONS_TABLE)} ORDER BY name`.execute(db);
  return result.rows.map((row) => row.name);
}

async function migrationsTableExists(db: Kysely<Database>): Promise<boolean> {
  const result = await sql<{ found: string | null }>`SELECT to_regclass(${MIGRATIONS_TABLE})::text AS found`.execute(db);
  return result.rows[0]?.found != null;
}

/**
 * The database must have applied a prefix of this build's list. Anything else — a migration this
 * build does not know (the database is newer than the code) or a gap — stops the start: running
 * against a schema we do not understand would be guessing.
 */
function planPending(applied: readonly string[], known: readonly Migration[]): Migration[] {
  applied.forEach((name, index) => {
    if (known[index]?.name !== name) {
      throw new AppError('internal', {
        message: `The database schema does not match this build (migration ${name} is unknown or out of order); upgrade Portcullis.`,
      });
    }
  });
  return known.slice(applied.length);
}

function assertOrdered(known: readonly Migration[]): void {
  for (let i = 1; i < known.length; i++) {
    const prev = known[i - 1];
    const cur = known[i];
    if (prev === undefined || cur === undefined || !(prev.name < cur.name)) {
      throw new AppError('internal', { message: 'Migrations are not in strictly increasing name order.' });
    }
  }
}

/** What is applied and what is pending, without changing anything. */
export async function migrationStatus(db: Kysely<Database>, options: MigrateOptions = {}): Promise<MigrationStatus> {
  const known = options.migrations ?? MIGRATIONS;
  const applied = (await migrationsTableExists(db)) ? await readApplied(db) : [];
  return { applied, pending: planPending(applied, known).map((m) => m.name) };
}

/** Applies every pending migration, exactly once across concurrent callers. Idempotent. */
export async function migrateToLatest(db: Kysely<Database>, options: MigrateOptions = {}): Promise<MigrateResult> {
  const known = options.migrations ?? MIGRATIONS;
  assertOrdered(known);
  const result = await db.transaction().execute(async (trx) => {
    // Bounded wait: a stuck peer makes this start fail loudly instead of hanging forever.
    await sql`SELECT set_config('lock_timeout', ${String(LOCK_TIMEOUT_MS)}, true)`.execute(trx);
    const schema = await sql<{ name: string | null }>`SELECT current_schema() AS name`.execute(trx);
    if (schema.rows[0]?.name == null) {
      // search_path names no existing schema: say so instead of failing on the first CREATE TABLE.
      throw new AppError('internal', { message: 'The configured database schema does not exist; create it first.' });
    }
    await sql`SELECT pg_advisory_xact_lock(hashtext('portcullis.migrate:' || current_schema()))`.execute(trx);
    await ensureMigrationsTable(trx);
    const applied = await readApplied(trx);
    const pending = planPending(applied, known);
    for (const migration of pending) {
      try {
        for (const statement of migration.statements) {
          await sql.raw(statement).execute(trx);
        }
      } catch (err) {
        // The whole transaction rolls back: no migration of this run stays applied.
        throw new AppError('internal', { message: `Database migration ${migration.name} failed.`, cause: err });
      }
      await sql`INSERT INTO ${sql.table(MIGRATIONS_TABLE)} (name) VALUES (${migration.name})`.execute(trx);
    }
    const ranNow = pending.map((m) => m.name);
    return { applied: [...applied, ...ranNow], pending: [], ranNow };
  });
  if (result.ranNow.length > 0) options.logger?.info({ migrations: result.ranNow }, 'database migrations applied');
  else options.logger?.debug({ applied: result.applied.length }, 'database schema up to date');
  return result;
}
