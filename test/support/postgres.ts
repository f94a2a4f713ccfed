/** A throwaway PostgreSQL database per test file on the real server, dropped afterwards. */
import { createTempDatabase as createOn, type TempDatabase } from '../../bench/throwaway-stores.js';

export type { TempDatabase };

export const ADMIN_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export function createTempDatabase(): Promise<TempDatabase> {
  return createOn(ADMIN_DATABASE_URL, 'pc_test');
}
