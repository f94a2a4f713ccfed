/**
 * Two gateway instances in one process sharing one record store and one in-memory hot state:
 * the embedded stand-in for two replicas. The same scenarios run on real Redis and PostgreSQL in
 * test/distributed/models-replicas-redis.test.ts.
 */
import { openTestRecordStore } from '../../src/store/db/testing.js';
import { MemoryHotState } from '../../src/store/state/index.js';
import { describeReplicaInvalidation } from './replica-scenarios.js';

describeReplicaInvalidation('in-process hot state', async () => {
  const store = await openTestRecordStore();
  const state = new MemoryHotState();
  return {
    a: { store, state },
    b: { store, state },
    close: async () => {
      await state.close();
      await store.close();
    },
  };
});
