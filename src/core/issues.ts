/**
 * How a schema problem is named to whoever has to fix it: the key path as it is written in a
 * config file or a request body (`oidc.issuers[0].jwksUrl`, `admission.keyOverrides["a\u0000b"]`),
 * and the message of the rule that actually failed — a record key's own rule rather than zod's
 * generic "Invalid key in record".
 *
 * Keys come from whoever wrote the input, so a key that is not a plain name is quoted with JSON's
 * escapes and cut short: no control character, lone surrogate or megabyte-long key reaches an error
 * message, a response or a log line through its path.
 */
import type { z } from 'zod';

type Issue = z.core.$ZodIssue;

/** Keys printed bare after a dot; anything else is quoted in brackets. */
const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;
/** Longest part of a key repeated in a path. */
const MAX_KEY_CHARS = 64;

/** Unknown keys named in one message; the rest are counted. */
const MAX_KEYS_LISTED = 5;

/** A key as written by whoever sent it: JSON-quoted (escapes included) and cut short. */
export function quoteKey(key: string): string {
  return JSON.stringify(key.length > MAX_KEY_CHARS ? `${key.slice(0, MAX_KEY_CHARS)}…` : key);
}

function segment(key: PropertyKey): string {
  if (typeof key === 'number') return `[${key}]`;
  if (typeof key === 'symbol') return '[symbol]';
  return PLAIN_KEY.test(key) ? `.${key}` : `[${quoteKey(key)}]`;
}

/** `prefix` followed by the path; `fallback` when both are empty. */
export function issuePath(prefix: string, path: readonly PropertyKey[], fallback = '(top level)'): string {
  const rendered = prefix + path.map(segment).join('');
  if (rendered === '') return fallback;
  return rendered.startsWith('.') ? rendered.slice(1) : rendered;
}

/**
 * The failed rule's own message: for a record key, the key's rule, prefixed so it reads as about
 * the key; for keys a strict object does not know, the keys quoted and cut short as in a path
 * (zod's own message repeats each key whole and raw).
 */
export function issueMessage(issue: Issue): string {
  if (issue.code === 'invalid_key') {
    const inner = issue.issues[0];
    if (inner !== undefined) return `the key is not allowed: ${issueMessage(inner)}`;
  }
  if (issue.code === 'unrecognized_keys') {
    const listed = issue.keys.slice(0, MAX_KEYS_LISTED).map(quoteKey).join(', ');
    const more = issue.keys.length > MAX_KEYS_LISTED ? ` and ${issue.keys.length - MAX_KEYS_LISTED} more` : '';
    return `Unrecognized key${issue.keys.length === 1 ? '' : 's'}: ${listed}${more}`;
  }
  return issue.message;
}
