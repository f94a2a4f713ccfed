/**
 * Text PostgreSQL can keep: no NUL character (text refuses it) and no lone UTF-16 surrogate
 * (a JSON column refuses its escape; a text column would silently turn it into U+FFFD).
 */

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function isStorableText(value: string): boolean {
  // search() ignores the global flag's lastIndex, which test() would carry between calls.
  return !value.includes('\u0000') && value.search(LONE_SURROGATE) === -1;
}
