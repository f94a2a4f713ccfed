import { afterAll, beforeAll, beforeEach } from 'vitest';
import { openTestRecordStore } from '../store/db/testing.js';
import type { RecordStore } from '../store/db/record-store.js';

/**
 * Test-only: registers one embedded record store for the calling test file (starting one is slow)
 * and empties the audit tables before each test. Returns a getter because the store opens in beforeAll.
 */
export function useEmptyAuditStore(): () => RecordStore {
  let store: RecordStore | undefined;
  beforeAll(async () => {
    store = await openTestRecordStore();
  });
  afterAll(async () => {
    await store?.close();
  });
  beforeEach(async () => {
    const db = current().db;
    await db.deleteFrom('audit_log').execute();
    await db.deleteFrom('audit_checkpoints').execute();
  });
  const current = (): RecordStore => {
    if (store === undefined) throw new Error('audit test store is not open yet');
    return store;
  };
  return current;
}
