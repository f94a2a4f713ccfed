/** Prefixed random identifiers: readable in logs, unguessable, URL-safe. */
import { randomFillSync } from 'node:crypto';

export type IdPrefix = 'org' | 'usr' | 'key' | 'req' | 'ses' | 'aud' | 'cap' | 'tsk' | 'wrk' | 'rsv' | 'evt' | 'prv' | 'chk' | 'inv';

const ID_BYTES = 12;
/**
 * Random bytes are drawn from the CSPRNG a page at a time: one call per id (every request gets one)
 * costs a system-level random read each time, far more than the id itself. Each byte is used once.
 */
const POOL_BYTES = ID_BYTES * 512;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

function randomSlice(size: number): Buffer {
  if (offset + size > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const slice = pool.subarray(offset, offset + size);
  offset += size;
  return slice;
}

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomSlice(ID_BYTES).toString('base64url')}`;
}

const ID_PATTERN = /^[a-z]{3}_[A-Za-z0-9_-]{16}$/;

export function isWellFormedId(value: string, prefix?: IdPrefix): boolean {
  return ID_PATTERN.test(value) && (prefix === undefined || value.startsWith(`${prefix}_`));
}
