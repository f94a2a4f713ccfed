/** Shared by the distributed tests: the Redis they talk to and cleanup of one test run's keys. */
import { deleteRedisPrefix } from '../../bench/throwaway-stores.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Deletes every key under `prefix:` (SCAN, never FLUSH: other test runs share this Redis). */
export function deletePrefix(prefix: string): Promise<void> {
  return deleteRedisPrefix(REDIS_URL, prefix);
}
