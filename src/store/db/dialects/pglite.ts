/**
 * Kysely over PGlite (PostgreSQL compiled to WASM, in-process). PGlite is one backend with one
 * session, so it is exposed to Kysely's stock PostgresDialect as a pool of exactly one connection
 * that is handed out exclusively: a transaction keeps it from BEGIN until release, and every other
 * caller queues. That makes concurrent transactions serialize instead of interleaving their
 * statements inside one session, which is what a real pool of separate sessions would guarantee.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient, type PostgresQueryResult } from 'kysely';
import type { Database } from '../schema.js';
import { sanitizeDbError } from '../errors.js';
import { lockDataDir } from './data-dir-lock.js';
import { refuseUnstorableParameters } from '../parameter-check.js';

const INT8_OID = 20;
/**
 * PGlite's own default is 128 MB of shared buffers, most of which it touches: that alone was
 * more than half the gateway's resident memory. The embedded records are small, hot rows are few,
 * the request path never waits on them, and the files sit in the OS page cache anyway, so 4 MB
 * (512 pages) is enough: the record-store and audit suites took 33–38 s with 4 MB and with 8 MB
 * alike, while every megabyte of it is a megabyte of resident memory once the gateway has run a while.
 *
 * PGlite runs one backend, but PostgreSQL sizes its shared lock, process and snapshot tables for
 * `max_connections` (100 by default) and touches them at start: 10 keeps 4 MB of the store's
 * WebAssembly memory untouched (17.7 MB resident after a query on every table, 13.7 MB with 10),
 * and still leaves room for the locks of 24 backends — far more than one migration takes.
 */
const EMBEDDED_SETTINGS = ['shared_buffers=4MB', 'max_connections=10'];

export interface PgliteOptions {
  /** Folder of the embedded deployment; the database files live in `<dataDir>/db`. Omit for memory. */
  dataDir?: string;
  /** Start from a dump made by `dumpPglite` (tests clone a migrated template this way). */
  loadDataDir?: Blob;
}

type Command = PostgresQueryResult<unknown>['command'];
const KYSELY_COMMANDS = new Set<string>(['UPDATE', 'DELETE', 'INSERT', 'SELECT', 'MERGE']);

/** A FIFO mutex: the one PGlite session goes to one borrower at a time. */
class ExclusiveSession {
  #busy = false;
  readonly #waiters: Array<() => void> = [];

  async acquire(): Promise<void> {
    if (!this.#busy) {
      this.#busy = true;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#busy = false;
  }
}

class PglitePool implements PostgresPool {
  readonly #db: PGlite;
  readonly #session = new ExclusiveSession();
  #ended = false;

  readonly #onClosed: (() => void) | undefined;

  constructor(db: PGlite, onClosed?: () => void) {
    this.#db = db;
    this.#onClosed = onClosed;
  }

  async connect(): Promise<PostgresPoolClient> {
    if (this.#ended) throw new Error('the embedded database is closed');
    await this.#session.acquire();
    let released = false;
    const db = this.#db;
    const client = {
      query: async <R>(text: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>> => {
        if (released) throw new Error('query on a released embedded-database connection');
        refuseUnstorableParameters(parameters);
        try {
          const result = await db.query<R>(text, [...parameters]);
          const command = (result.command ?? 'SELECT').toUpperCase();
          return {
            // Kysely only reads `command` to decide whether rowCount means "affected rows".
            command: (KYSELY_COMMANDS.has(command) ? command : 'SELECT') as Command,
            rowCount: result.rowCount ?? result.affectedRows ?? result.rows.length,
            rows: result.rows,
          };
        } catch (err) {
          throw sanitizeDbError(err);
        }
      },
      release: () => {
        // Idempotent: a double release must never hand the session to two borrowers.
        if (released) return;
        released = true;
        this.#session.release();
      },
    };
    // Kysely's PostgresPoolClient overloads query() for cursors, which this pool does not offer.
    return client as PostgresPoolClient;
  }

  async end(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    // Wait for the current borrower so close never cuts a transaction in half.
    await this.#session.acquire();
    try {
      await this.#db.close();
    } finally {
      this.#session.release();
      this.#onClosed?.();
    }
  }
}

/** An uncompressed snapshot of a PGlite database, to start fresh instances from. */
export async function dumpPglite(pglite: PGlite): Promise<Blob> {
  return pglite.dumpDataDir('none');
}

/** Opens PGlite (files under `<dataDir>/db`, or memory) and wraps it in a Kysely instance. */
export async function openPglite(options: PgliteOptions = {}): Promise<{ db: Kysely<Database>; pglite: PGlite }> {
  let dataDir: string | undefined;
  if (options.dataDir !== undefined) {
    dataDir = join(options.dataDir, 'db');
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
  }
  const lock = dataDir === undefined ? undefined : lockDataDir(dataDir);
  let pglite: PGlite;
  try {
    pglite = await PGlite.create({
    ...(dataDir === undefined ? {} : { dataDir }),
    ...(options.loadDataDir === undefined ? {} : { loadDataDir: options.loadDataDir }),
    // bigint columns come back as strings, exactly as node-postgres returns them, so code written
    // against one record store behaves the same on the other (and no precision is lost).
    parsers: { [INT8_OID]: (value: string) => value },
    startParams: [...PGlite.defaultStartParams, ...EMBEDDED_SETTINGS.flatMap((setting) => ['-c', setting])],
    });
  } catch (error) {
    lock?.release();
    throw error;
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new PglitePool(pglite, () => lock?.release()) }) });
  return { db, pglite };
}
