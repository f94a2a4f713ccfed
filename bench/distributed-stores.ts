/**
 * Real Redis and PostgreSQL for the distributed runs: a throwaway database on the server and a
 * key prefix of its own in Redis, both removed afterwards (SCAN + DEL on the prefix, never FLUSH:
 * the server is shared). Loopback only, like every load this repository generates.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { isLoopbackHost } from './load.js';

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

async function deletePrefix(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}

export async function createDistributedStores(): Promise<DistributedStores> {
  requireLoopback(ADMIN_DATABASE_URL, 'DATABASE_URL_TEST');
  requireLoopback(REDIS_URL, 'REDIS_URL');
  const name = `pc_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const databaseUrl = new URL(ADMIN_DATABASE_URL);
  databaseUrl.pathname = `/${name}`;
  const redisPrefix = `pcbench${randomBytes(4).toString('hex')}`;
  return {
    databaseUrl: databaseUrl.toString(),
    redisUrl: REDIS_URL,
    redisPrefix,
    remove: async () => {
      await deletePrefix(REDIS_URL, redisPrefix);
      const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL, connectionTimeoutMillis: 5000 });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
