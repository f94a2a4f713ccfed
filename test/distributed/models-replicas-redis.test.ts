/**
 * Two model-gateway replicas, each with its own Redis connection and its own PostgreSQL pool on a
 * throwaway database: an org's provider key and custom endpoints changed through one are used or
 * dropped by the other within 1 s, over real Redis pub/sub. Fails, never skips, when Redis or
 * PostgreSQL is unreachable.
 */
import { randomBytes } from 'node:crypto';
import { openRecordStore } from '../../src/store/db/index.js';
import { RedisHotState } from '../../src/store/state/redis/redis-hot-state.js';
import { describeReplicaInvalidation } from '../models/replica-scenarios.js';
import { createTempDatabase } from '../support/postgres.js';
import { REDIS_URL, deletePrefix } from '../support/redis.js';

describeReplicaInvalidation('Redis + PostgreSQL', async () => {
  const database = await createTempDatabase();
  const prefix = `pc-models-${randomBytes(5).toString('hex')}`;
  const replica = async () => ({
    store: await openRecordStore({ databaseUrl: database.url, migrate: true }),
    state: await RedisHotState.connect({ url: REDIS_URL, prefix }),
  });
  const a = await replica();
  const b = await replica();
  return {
    a,
    b,
    close: async () => {
      for (const { store, state } of [a, b]) {
        await state.close();
        await store.close();
      }
      await deletePrefix(prefix);
      await database.drop();
    },
  };
});
