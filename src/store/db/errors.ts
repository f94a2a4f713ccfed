/**
 * Database errors as the rest of the code should see them: the SQLSTATE code and the constraint
 * name survive, while the statement text, bound parameters and row detail are dropped, because
 * those can carry password hashes, peppers or token hashes into a log line or an error `cause`.
 */

/** The fields of a driver error (pg or PGlite) that are safe to keep. */
export class DbError extends Error {
  readonly code: string | undefined;
  readonly constraint: string | undefined;
  readonly table: string | undefined;
  readonly column: string | undefined;

  constructor(fields: { message: string; code?: string; constraint?: string; table?: string; column?: string }) {
    super(fields.message);
    this.name = 'DbError';
    this.code = fields.code;
    this.constraint = fields.constraint;
    this.table = fields.table;
    this.column = fields.column;
  }
}

function stringField(source: object, key: string): string | undefined {
  const value: unknown = (source as Record<string, unknown>)[key];
  return typeof value === 'string' ? value : undefined;
}

/** Rebuilds a driver error with only the safe fields. Non-object throws become a generic DbError. */
export function sanitizeDbError(err: unknown): DbError {
  if (err instanceof DbError) return err;
  if (typeof err !== 'object' || err === null) return new DbError({ message: 'database error' });
  const message = stringField(err, 'message') ?? 'database error';
  const code = stringField(err, 'code');
  const constraint = stringField(err, 'constraint');
  const table = stringField(err, 'table');
  const column = stringField(err, 'column');
  return new DbError({
    message,
    ...(code === undefined ? {} : { code }),
    ...(constraint === undefined ? {} : { constraint }),
    ...(table === undefined ? {} : { table }),
    ...(column === undefined ? {} : { column }),
  });
}

function sqlStateOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  return stringField(err, 'code');
}

/** SQLSTATE 23505: a UNIQUE or PRIMARY KEY constraint refused the row. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  if (sqlStateOf(err) !== '23505') return false;
  return constraint === undefined || (typeof err === 'object' && err !== null && stringField(err, 'constraint') === constraint);
}

/** SQLSTATE 23503: a row referenced a missing parent, or a parent still has children. */
export function isForeignKeyViolation(err: unknown): boolean {
  return sqlStateOf(err) === '23503';
}

/** SQLSTATE 23514: a CHECK constraint refused the row. */
export function isCheckViolation(err: unknown): boolean {
  return sqlStateOf(err) === '23514';
}

/**
 * SQLSTATE 22021 / 22P05: text PostgreSQL cannot store or compare — a NUL character, in a text value
 * or escaped inside JSON. Such text can only have come from outside (a path, a query, a body).
 */
export function isUnstorableTextError(err: unknown): boolean {
  const code = sqlStateOf(err);
  return code === '22021' || code === '22P05';
}

/**
 * SQLSTATE class 22 (data exception) or 23 (integrity constraint violation): the database was
 * reachable and refused this statement for what it carried. Says nothing about the store's health.
 */
export function isRefusedForItsData(err: unknown): boolean {
  const code = sqlStateOf(err);
  return code !== undefined && (code.startsWith('22') || code.startsWith('23'));
}

/** SQLSTATE 40001 / 40P01: the transaction lost a serialization race or a deadlock and may be retried. */
export function isRetryableTransactionError(err: unknown): boolean {
  const code = sqlStateOf(err);
  return code === '40001' || code === '40P01';
}
