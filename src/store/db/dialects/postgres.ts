/**
 * Kysely over node-postgres. The pool is bounded and connecting is bounded in time, so a database
 * outage turns into prompt errors instead of an ever-growing queue. An optional schema pins
 * `search_path` on every connection at startup (tests use one schema per file for isolation).
 */
import pg from 'pg';
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient, type PostgresQueryResult } from 'kysely';
import type { Database } from '../schema.js';
import { sanitizeDbError } from '../errors.js';
import type { Logger } from '../../../core/logger.js';
import { refuseUnstorableParameters } from '../parameter-check.js';

export interface PostgresOptions {
  databaseUrl: string;
  /** Unquoted identifier: lowercase letters, digits and underscores. */
  schema?: string;
  /** Upper bound of open connections per process (default 10). */
  maxConnections?: number;
  /** Give up connecting after this long (default 5000 ms). */
  connectionTimeoutMs?: number;
  /** Abort any single statement after this long (default 30000 ms; 0 disables). */
  statementTimeoutMs?: number;
  logger?: Logger;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertSchemaName(schema: string): void {
  if (!SCHEMA_NAME.test(schema)) {
    throw new Error(`invalid schema name: use lowercase letters, digits and underscores (at most 63), starting with a letter or underscore`);
  }
}

/**
 * Wraps pg's pool so driver errors lose their statement parameters before anyone can log them,
 * and so a connection that drops while a client is checked out cannot crash the process: pg emits
 * 'error' on such a client, and the pool listens only while the client is idle. The query in
 * flight fails on its own; the listener only keeps the event from being unhandled.
 */
class SanitizingPool implements PostgresPool {
  readonly #pool: pg.Pool;
  readonly #logger: Logger | undefined;

  constructor(pool: pg.Pool, logger?: Logger) {
    this.#pool = pool;
    this.#logger = logger;
  }

  async connect(): Promise<PostgresPoolClient> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw sanitizeDbError(err);
    }
    const onError = (err: unknown): void => this.#logger?.warn({ err: sanitizeDbError(err) }, 'PostgreSQL connection failed while in use');
    client.on('error', onError);
    const wrapped = {
      query: async <R>(text: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> => {
        refuseUnstorableParameters(parameters);
        try {
          const result = await client.query(text, [...parameters]);
          return { command: result.command as PostgresQueryResult<R>['command'], rowCount: result.rowCount ?? 0, rows: result.rows as R[] };
        } catch (err) {
          throw sanitizeDbError(err);
        }
      },
      release: () => {
        client.removeListener('error', onError);
        client.release();
      },
    };
    return wrapped as PostgresPoolClient;
  }

  async end(): Promise<void> {
    await this.#pool.end();
  }
}

export function openPostgres(options: PostgresOptions): Kysely<Database> {
  if (options.schema !== undefined) assertSchemaName(options.schema);
  const startupOptions: string[] = [];
  // Startup parameters apply to every connection the pool ever opens, including reconnects.
  if (options.schema !== undefined) startupOptions.push(`-c search_path=${options.schema}`);
  startupOptions.push(`-c statement_timeout=${options.statementTimeoutMs ?? 30_000}`);
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5_000,
    idleTimeoutMillis: 30_000,
    options: startupOptions.join(' '),
  });
  // An idle client that loses its server emits 'error' on the pool; unhandled, it would crash the
  // process. The pool drops that client by itself, so logging is all that is needed.
  pool.on('error', (err) => {
    options.logger?.warn({ err: sanitizeDbError(err) }, 'idle PostgreSQL connection failed');
  });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: new SanitizingPool(pool, options.logger) }) });
}
