import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRefusedForItsData, isUnstorableTextError } from './errors.js';
import { refuseUnstorableParameters } from './parameter-check.js';
import { openTestRecordStore } from './testing.js';
import type { RecordStore } from './record-store.js';

function refused(parameters: unknown[]): boolean {
  try {
    refuseUnstorableParameters(parameters);
    return false;
  } catch (error) {
    return isUnstorableTextError(error) && isRefusedForItsData(error);
  }
}

describe('statement parameters the record store would not keep as given', () => {
  it('refuses a NUL or a lone surrogate in text, in arrays and in JSON objects, keys included', () => {
    expect(refused(['a\u0000b'])).toBe(true);
    expect(refused(['x\ud800'])).toBe(true);
    expect(refused(['\udc00x'])).toBe(true);
    expect(refused([['ok', 'bad\ud800']])).toBe(true);
    expect(refused([{ nested: { deep: ['\udfff'] } }])).toBe(true);
    expect(refused([{ ['k\u0000']: 1 }])).toBe(true);
  });

  it('passes ordinary text, surrogate pairs, numbers, bytes and dates', () => {
    expect(refused(['plain', 'emoji \u{1F600}', 42, 10n, null, undefined, true, Buffer.from([0, 0xd8, 0]), new Date(0), { a: ['b', 1] }])).toBe(false);
  });
});

describe('the embedded record store', () => {
  let store: RecordStore;
  beforeAll(async () => {
    store = await openTestRecordStore();
  });
  afterAll(async () => {
    await store.close();
  });

  it('refuses a lone surrogate before sending it (a text column would keep U+FFFD instead)', async () => {
    const attempt = sql<{ v: string }>`SELECT ${'a\ud800'}::text AS v`.execute(store.db);
    await expect(attempt).rejects.toSatisfy((error: unknown) => isUnstorableTextError(error));
    const fine = await sql<{ v: string }>`SELECT ${'a\u{1F600}'}::text AS v`.execute(store.db);
    expect(fine.rows[0]?.v).toBe('a\u{1F600}');
  });
});
