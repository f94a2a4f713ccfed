/**
 * Reading and expiring the usage rollups (migration 0005): sums per org, user, key, model and day
 * for the admin API, and the retention job that deletes free-model buckets after their days.
 * Buckets are hours, so `from` and `to` count whole hours: a bucket is included when it starts in
 * [from, to).
 */
import { sql } from 'kysely';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Db } from '../store/db/index.js';
import type { UsageSums } from './usage-records.js';

export const USAGE_GROUPS = ['org', 'user', 'key', 'model', 'day'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

export interface UsageQuery {
  orgId: string;
  groupBy: readonly UsageGroup[];
  from: Date;
  to: Date;
}

export interface UsageTotals extends UsageSums {
  org?: string;
  user?: string | null;
  key?: string | null;
  model?: string;
  day?: string;
}

const GROUP_COLUMNS = {
  org: sql<string>`org_id`,
  user: sql<string>`user_id`,
  key: sql<string>`key_id`,
  model: sql<string>`model`,
  day: sql<string>`to_char(bucket_start AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
} as const;

const toNumber = (value: unknown): number => (typeof value === 'number' ? value : Number(value ?? 0));
/** Rollups store an absent id as ''; the API says null. */
const idOrNull = (value: unknown): unknown => (value === '' ? null : value);

/** Sums of one org's usage buckets in [from, to), grouped by the requested dimensions. */
export async function queryUsage(db: Db, query: UsageQuery): Promise<UsageTotals[]> {
  const groups = [...new Set(query.groupBy)];
  const selected = groups.map((group) => sql`${GROUP_COLUMNS[group]} AS ${sql.ref(`g_${group}`)}`);
  const groupBy = groups.map((group) => GROUP_COLUMNS[group]);
  const rows = await sql<Record<string, unknown>>`
    SELECT ${sql.join([...selected, sql`coalesce(sum(requests), 0) AS requests`], sql`, `)},
      coalesce(sum(input_tokens), 0) AS input_tokens,
      coalesce(sum(output_tokens), 0) AS output_tokens,
      coalesce(sum(cached_input_tokens), 0) AS cached_input_tokens,
      coalesce(sum(cost_micros), 0) AS cost_micros,
      coalesce(sum(unmetered_requests), 0) AS unmetered
    FROM usage_rollups
    WHERE org_id = ${query.orgId} AND bucket_start >= ${query.from} AND bucket_start < ${query.to}
    ${groupBy.length === 0 ? sql`` : sql`GROUP BY ${sql.join(groupBy, sql`, `)} ORDER BY ${sql.join(groupBy, sql`, `)}`}
  `.execute(db);
  return rows.rows.map((row) => {
    const totals: UsageTotals = {
      requests: toNumber(row.requests),
      inputTokens: toNumber(row.input_tokens),
      outputTokens: toNumber(row.output_tokens),
      cachedInputTokens: toNumber(row.cached_input_tokens),
      costMicros: toNumber(row.cost_micros),
      unmeteredRequests: toNumber(row.unmetered),
    };
    for (const group of groups) (totals as unknown as Record<string, unknown>)[group] = idOrNull(row[`g_${group}`] ?? null);
    return totals;
  });
}

/**
 * Deletes free-model buckets that started before `before`, `batchSize` rows per statement so no
 * statement holds locks for long, and flush ids older than a day (a retry comes within seconds);
 * returns how many buckets went. Stops after `maxBatches` to bound one run.
 */
export async function deleteExpiredFreeUsage(db: Db, before: Date, options: { batchSize?: number; maxBatches?: number } = {}): Promise<number> {
  const batchSize = options.batchSize ?? 1000;
  const maxBatches = options.maxBatches ?? 100;
  let deleted = 0;
  for (let batch = 0; batch < maxBatches; batch += 1) {
    const result = await sql`
      DELETE FROM usage_rollups WHERE ctid IN (
        SELECT ctid FROM usage_rollups WHERE free AND bucket_start < ${before} ORDER BY bucket_start LIMIT ${batchSize}
      )`.execute(db);
    const count = Number(result.numAffectedRows ?? 0n);
    deleted += count;
    if (count < batchSize) break;
  }
  await sql`DELETE FROM usage_rollup_flushes WHERE flushed_at < now() - interval '1 day'`.execute(db);
  return deleted;
}

/** Runs the retention job now and then every `everyMs`; returns a stop function. */
export function scheduleFreeUsageRetention(options: { db: Db; clock: Clock; logger: Logger; retentionDays: number; everyMs?: number }): () => void {
  const run = async (): Promise<void> => {
    try {
      const before = new Date(options.clock.now() - options.retentionDays * 24 * 60 * 60 * 1000);
      const deleted = await deleteExpiredFreeUsage(options.db, before);
      if (deleted > 0) options.logger.info({ deleted }, 'expired free-model usage buckets deleted');
    } catch (error) {
      options.logger.warn({ err: error instanceof Error ? error.message : 'unknown' }, 'free-model usage retention failed; will retry');
    }
  };
  const timer = setInterval(() => void run(), options.everyMs ?? 60 * 60 * 1000);
  timer.unref();
  void run();
  return () => clearInterval(timer);
}
