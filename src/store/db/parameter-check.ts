/**
 * Text the record store would not keep as given is refused before a statement is sent. A NUL the
 * server refuses on its own, but a lone UTF-16 surrogate it does not: the driver encodes it as
 * U+FFFD, so a text column would silently keep something other than what was written (two names
 * that differ only there become the same name), and inside JSON it is a syntax error the caller
 * could not tell from a bug of ours. Both come only from outside, so both are refused alike, with
 * the SQLSTATE the server gives a NUL (22021, character_not_in_repertoire): the HTTP layer answers
 * it 400, and the record store's breaker does not count it against the store.
 */
import { isStorableText } from '../../core/text.js';
import { DbError } from './errors.js';

/** Deeper than any value the record store is given; below it nothing is looked at. */
const MAX_DEPTH = 32;

function storable(value: unknown, depth: number): boolean {
  if (typeof value === 'string') return isStorableText(value);
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH || value instanceof Uint8Array || value instanceof Date) return true;
  if (Array.isArray(value)) return value.every((item: unknown) => storable(item, depth + 1));
  // Plain objects are sent as JSON: their keys are text too.
  return Object.entries(value).every(([key, item]) => isStorableText(key) && storable(item, depth + 1));
}

/** Throws a DbError (SQLSTATE 22021) when a bound parameter holds a NUL or a lone surrogate. */
export function refuseUnstorableParameters(parameters: ReadonlyArray<unknown>): void {
  for (const parameter of parameters) {
    if (!storable(parameter, 0)) throw new DbError({ message: 'a statement parameter holds a NUL character or a lone surrogate', code: '22021' });
  }
}
