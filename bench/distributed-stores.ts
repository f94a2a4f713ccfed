/**
 * Real Redis and PostgreSQL for the distributed runs: a throwaway database on the server and a
 * key prefix of its own in Redis, both removed afterwards (bench/throwaway-stores.ts). Loopback
 * only, like every load this repository generates.
 */
import { randomBytes } from 'node:crypto';
import { isLoopbackHost } from './load.js';
import { createTempDatabase, deleteRedisPrefix } from './throwaway-stores.js';

export interface DistributedStores {
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  remove(): Promise<void>;
}

const ADMIN_DATABASE_URL = process.env.DATABASE_URL_TEST ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function requireLoopback(url: string, what: string): void {
  if (!isLoopbackHost(new URL(url).hostname)) throw new Error(`${what} must be on a loopback address for benchmarks`);
}

export async function createDistributedStores(): Promise<DistributedStores> {
  requireLoopback(ADMIN_DATABASE_URL, 'DATABASE_URL_TEST');
  requireLoopback(REDIS_URL, 'REDIS_URL');
  const database = await createTempDatabase(ADMIN_DATABASE_URL, 'pc_bench');
  const redisPrefix = `pcbench${randomBytes(4).toString('hex')}`;
  return {
    databaseUrl: database.url,
    redisUrl: REDIS_URL,
    redisPrefix,
    remove: async () => {
      await deleteRedisPrefix(REDIS_URL, redisPrefix);
      await database.drop();
    },
  };
}

/** The environment a `portcullis start` on these stores needs; `workers` is PORTCULLIS_WORKERS ('auto' or a count). */
export function storesEnv(stores: DistributedStores, workers = '1'): Record<string, string> {
  return { DATABASE_URL: stores.databaseUrl, REDIS_URL: stores.redisUrl, PORTCULLIS_REDIS_PREFIX: stores.redisPrefix, PORTCULLIS_WORKERS: workers };
}
