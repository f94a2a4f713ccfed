/** Prefixed random identifiers: readable in logs, unguessable, URL-safe. */
import { randomBytes } from 'node:crypto';

export type IdPrefix = 'org' | 'usr' | 'key' | 'req' | 'ses' | 'aud' | 'cap' | 'tsk' | 'wrk' | 'rsv' | 'evt' | 'prv' | 'chk' | 'inv';

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

const ID_PATTERN = /^[a-z]{3}_[A-Za-z0-9_-]{16}$/;

export function isWellFormedId(value: string, prefix?: IdPrefix): boolean {
  return ID_PATTERN.test(value) && (prefix === undefined || value.startsWith(`${prefix}_`));
}
