/**
 * Canonical JSON for hashing audit records: object keys sorted by UTF-16 code units, no
 * whitespace, strings and numbers written exactly as JSON.stringify writes them. Two values that
 * are equal as JSON always produce the same bytes, whatever order their keys were built in — which
 * matters because PostgreSQL's jsonb hands keys back in its own order.
 *
 * Only plain JSON is accepted: a non-finite number, undefined, a function, a Date or any other
 * class instance throws, so nothing is silently coerced into a different value than was hashed.
 */

export type CanonicalValue = null | boolean | number | string | CanonicalValue[] | { [key: string]: CanonicalValue };

/** Nesting bound: audit details are flat, so anything deeper is a bug, not data. */
const MAX_DEPTH = 16;

export class CanonicalJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CanonicalJsonError';
  }
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function write(value: unknown, depth: number, out: string[]): void {
  if (depth > MAX_DEPTH) throw new CanonicalJsonError('value is nested too deeply');
  if (value === null) {
    out.push('null');
    return;
  }
  switch (typeof value) {
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalJsonError('non-finite numbers have no JSON form');
      // -0 and 0 are the same JSON number; JSON.stringify already writes both as "0".
      out.push(JSON.stringify(value));
      return;
    case 'string':
      out.push(JSON.stringify(value));
      return;
    case 'object':
      break;
    default:
      throw new CanonicalJsonError(`a ${typeof value} has no JSON form`);
  }
  if (Array.isArray(value)) {
    out.push('[');
    value.forEach((item, index) => {
      if (index > 0) out.push(',');
      write(item, depth + 1, out);
    });
    out.push(']');
    return;
  }
  if (!isPlainObject(value)) throw new CanonicalJsonError('only plain objects have a canonical form');
  const record = value as Record<string, unknown>;
  // Default sort compares UTF-16 code units, which is deterministic across engines.
  const keys = Object.keys(record).sort();
  out.push('{');
  keys.forEach((key, index) => {
    if (index > 0) out.push(',');
    out.push(JSON.stringify(key), ':');
    write(record[key], depth + 1, out);
  });
  out.push('}');
}

export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  write(value, 0, out);
  return out.join('');
}
