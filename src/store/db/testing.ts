/**
 * For tests in any folder: a fresh, migrated, in-memory record store. Each call is a separate
 * PGlite instance, so tests never see each other's rows. Close it in afterAll/afterEach.
 */
import { openRecordStore, type RecordStore } from './record-store.js';

export async function openTestRecordStore(): Promise<RecordStore> {
  return openRecordStore({ inMemory: true });
}
