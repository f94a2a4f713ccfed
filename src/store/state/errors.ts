/**
 * How hot-state failures surface to callers.
 *
 * - The store could not be reached (connection refused, timeout, failover in progress):
 *   `HotStateUnavailable`, an AppError with code `dependency_unavailable` (HTTP 503). Callers that
 *   must fail closed only need `isHotStateUnavailable(err)` (or `err instanceof HotStateUnavailable`);
 *   the HTTP error mapper already turns it into a 503 without side effects.
 * - A caller passed an argument outside the contract (a scope with a brace, a negative amount, an
 *   oversized payload): AppError `internal` — that is a bug in the caller, not a client mistake.
 * - Anything else the store answers unexpectedly: AppError `internal`.
 *
 * Causes are rebuilt from the error's class and first message line only, because client libraries
 * attach the failing command and its arguments to errors, and arguments can be one-time secrets.
 */
import { AppError } from '../../core/errors.js';

export class HotStateUnavailable extends AppError {
  /** `retryAfterSeconds`: set when the caller knows when trying again makes sense (a breaker that is open). */
  constructor(cause?: unknown, retryAfterSeconds?: number) {
    super('dependency_unavailable', {
      ...(cause === undefined ? {} : { cause: sanitizeCause(cause) }),
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    });
    this.name = 'HotStateUnavailable';
  }
}

export function isHotStateUnavailable(err: unknown): err is HotStateUnavailable {
  return err instanceof HotStateUnavailable;
}

/** Thrown for arguments outside the contract; the reason names the argument, never its value. */
export function invalidArgument(reason: string): AppError {
  return new AppError('internal', { cause: new RangeError(`hot-state: ${reason}`) });
}

export function storeFailure(cause: unknown): AppError {
  return new AppError('internal', { cause: sanitizeCause(cause) });
}

/** A copy of an error carrying only its class name and the first 200 characters of its first line. */
export function sanitizeCause(cause: unknown): Error {
  if (cause instanceof Error) {
    const firstLine = (cause.message.split('\n')[0] ?? '').slice(0, 200);
    const copy = new Error(firstLine);
    copy.name = cause.name;
    return copy;
  }
  return new Error('non-error thrown');
}
