/**
 * For tests in any folder: a fresh, migrated, in-memory record store. Each call is a separate
 * PGlite instance, so tests never see each other's rows. Close it in afterAll/afterEach.
 *
 * Booting PGlite and migrating takes seconds; restoring a dump takes well under one. So the first
 * call per test process builds a migrated template once and every call starts from its dump.
 */
import { openPglite, dumpPglite } from './dialects/pglite.js';
import { migrateToLatest } from './migrate.js';
import { storeOf, type RecordStore } from './record-store.js';

let template: Promise<Blob> | undefined;

async function buildTemplate(): Promise<Blob> {
  const { db, pglite } = await openPglite();
  try {
    await migrateToLatest(db);
    return await dumpPglite(pglite);
  } finally {
    await db.destroy();
  }
}

export async function openTestRecordStore(): Promise<RecordStore> {
  template ??= buildTemplate();
  let dump: Blob;
  try {
    dump = await template;
  } catch (err) {
    template = undefined;
    throw err;
  }
  const { db } = await openPglite({ loadDataDir: dump });
  // Cheap when already migrated, and keeps the promise honest should the template ever lag.
  await migrateToLatest(db);
  return storeOf(db, 'pglite');
}
