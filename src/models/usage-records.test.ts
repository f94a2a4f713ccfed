import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../core/logger.js';
import type { RecordStore } from '../store/db/index.js';
import { openTestRecordStore } from '../store/db/testing.js';
import { queryUsage } from './usage-queries.js';
import { USAGE_BUCKET_MS, UsageRecorder, writeUsageFlush, type UsageRecord } from './usage-records.js';
import { modelsDb } from './tables.js';

const HOUR = USAGE_BUCKET_MS;
const T0 = Date.UTC(2026, 10, 30, 9, 0, 0);

function call(overrides: Partial<UsageRecord> = {}): UsageRecord {
  return {
    at: T0 + 1000,
    orgId: 'org_a',
    userId: 'usr_a',
    keyId: 'key_a',
    model: 'chat',
    provider: 'sim',
    inputTokens: 10,
    outputTokens: 20,
    cachedInputTokens: 3,
    costMicros: 250,
    free: false,
    unmetered: false,
    ...overrides,
  };
}

describe('usage recorder (hourly rollups)', () => {
  let store: RecordStore;
  const logger = createLogger({ level: 'silent' });
  const recorders: UsageRecorder[] = [];
  const recorder = (batchSize = 500) => {
    const made = new UsageRecorder({ db: store.db, logger, flushIntervalMs: 60_000, batchSize });
    recorders.push(made);
    return made;
  };
  const rollups = () => modelsDb(store.db).selectFrom('usage_rollups').selectAll().orderBy('bucket_start').orderBy('key_id').execute();

  beforeAll(async () => {
    store = await openTestRecordStore();
  });
  beforeEach(async () => {
    await sql`DELETE FROM usage_rollups`.execute(store.db);
    await sql`DELETE FROM usage_rollup_flushes`.execute(store.db);
  });
  afterAll(async () => {
    for (const made of recorders) await made.close();
    await store.close();
  });

  it('sums calls into one bucket per hour and dimension, exactly', async () => {
    const usage = recorder();
    for (let i = 0; i < 1000; i += 1) usage.record(call({ at: T0 + i * 1000, inputTokens: i, unmetered: i % 10 === 0 }));
    usage.record(call({ at: T0 + HOUR, keyId: 'key_b' }));
    usage.record(call({ orgId: null, userId: null, keyId: null, free: true, costMicros: 0 }));
    await usage.flush();
    const rows = await rollups();
    expect(rows).toHaveLength(3);
    const main = rows.find((r) => r.key_id === 'key_a');
    expect(main).toMatchObject({ requests: '1000', input_tokens: String((999 * 1000) / 2), output_tokens: '20000', cached_input_tokens: '3000', cost_micros: '250000', unmetered_requests: '100', free: false });
    expect(main?.bucket_start.getTime()).toBe(T0);
    expect(rows.find((r) => r.key_id === 'key_b')?.bucket_start.getTime()).toBe(T0 + HOUR);
    expect(rows.find((r) => r.org_id === '')).toMatchObject({ user_id: '', key_id: '', free: true, requests: '1' });
    expect(usage.pending).toBe(0);
  });

  it('two replicas adding to the same bucket never lose an increment', async () => {
    const a = recorder();
    const b = recorder();
    for (let i = 0; i < 300; i += 1) (i % 2 === 0 ? a : b).record(call());
    await Promise.all([a.flush(), b.flush()]);
    expect(await rollups()).toMatchObject([{ requests: '300', cost_micros: String(300 * 250) }]);
  });

  it('a flush written twice (an attempt whose answer was lost, then its retry) counts once', async () => {
    const flush = { id: 'flush-twice', buckets: [{ bucketStart: T0, orgId: 'org_a', userId: 'usr_a', keyId: 'key_a', model: 'chat', provider: 'sim', free: false, requests: 2, inputTokens: 5, outputTokens: 6, cachedInputTokens: 0, costMicros: 70, unmeteredRequests: 1 }] };
    await writeUsageFlush(modelsDb(store.db), flush);
    await writeUsageFlush(modelsDb(store.db), flush);
    expect(await rollups()).toMatchObject([{ requests: '2', input_tokens: '5', cost_micros: '70', unmetered_requests: '1' }]);
  });

  it('keeps a failed flush with its id and writes it once the store works again, with later calls', async () => {
    const usage = recorder();
    usage.record(call());
    await sql`ALTER TABLE usage_rollups RENAME TO usage_rollups_away`.execute(store.db);
    try {
      await usage.flush();
      expect(usage.pending).toBe(1);
      usage.record(call({ costMicros: 1 }));
      await usage.flush();
      expect(usage.pending).toBe(2);
    } finally {
      await sql`ALTER TABLE usage_rollups_away RENAME TO usage_rollups`.execute(store.db);
    }
    usage.record(call({ costMicros: 2 }));
    await usage.flush();
    expect(usage.pending).toBe(0);
    expect(await rollups()).toMatchObject([{ requests: '3', cost_micros: '253' }]);
    // The failed flush was retried under its first id, and nothing newer was cut while it waited:
    // one write for the first call, one for the two that came after.
    const ids = await modelsDb(store.db).selectFrom('usage_rollup_flushes').select('flush_id').execute();
    expect(ids.length).toBe(2);
  });

  it('splits large flushes into batches and close() writes what is left', async () => {
    const usage = recorder(2);
    for (let i = 0; i < 7; i += 1) usage.record(call({ keyId: `key_${i}` }));
    await usage.close();
    expect(await rollups()).toHaveLength(7);
  });

  it('answers the admin queries by org, user, key, model and day', async () => {
    const usage = recorder();
    usage.record(call());
    usage.record(call({ keyId: null, userId: 'usr_b', model: 'embed' }));
    usage.record(call({ at: T0 + 24 * HOUR }));
    usage.record(call({ orgId: 'org_other' }));
    await usage.flush();
    const byDayAndKey = await queryUsage(store.db, { orgId: 'org_a', groupBy: ['day', 'key'], from: new Date(T0 - HOUR), to: new Date(T0 + 48 * HOUR) });
    expect(byDayAndKey).toEqual([
      { day: '2026-11-30', key: null, requests: 1, inputTokens: 10, outputTokens: 20, cachedInputTokens: 3, costMicros: 250, unmeteredRequests: 0 },
      { day: '2026-11-30', key: 'key_a', requests: 1, inputTokens: 10, outputTokens: 20, cachedInputTokens: 3, costMicros: 250, unmeteredRequests: 0 },
      { day: '2026-12-01', key: 'key_a', requests: 1, inputTokens: 10, outputTokens: 20, cachedInputTokens: 3, costMicros: 250, unmeteredRequests: 0 },
    ]);
    const firstDayOnly = await queryUsage(store.db, { orgId: 'org_a', groupBy: [], from: new Date(T0), to: new Date(T0 + HOUR) });
    expect(firstDayOnly).toEqual([{ requests: 2, inputTokens: 20, outputTokens: 40, cachedInputTokens: 6, costMicros: 500, unmeteredRequests: 0 }]);
  });
});
