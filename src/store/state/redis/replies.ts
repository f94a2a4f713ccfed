/** Narrowing of script replies: a reply of an unexpected shape is a bug, reported as an internal error. */
import { storeFailure } from '../errors.js';

export function asArray(reply: unknown): unknown[] {
  if (!Array.isArray(reply)) throw storeFailure(new Error('script reply is not an array'));
  return reply as unknown[];
}

export function asString(reply: unknown): string {
  if (typeof reply === 'string') return reply;
  if (Buffer.isBuffer(reply)) return reply.toString('utf8');
  throw storeFailure(new Error('script reply is not a string'));
}

/** Integers arrive as numbers (integer replies) or decimal strings (hash fields). */
export function asInt(reply: unknown): number {
  const n = typeof reply === 'number' ? reply : Number(asString(reply));
  if (!Number.isSafeInteger(n)) throw storeFailure(new Error('script reply is not an integer'));
  return n;
}
