/**
 * Usage rows are buffered in memory and written in batches off the request path: a request only
 * pushes to an array. A timer (and a full batch) flushes; close() flushes whatever is left, so a
 * clean shutdown loses nothing. A failed write keeps its rows for the next flush, up to a bound —
 * past it the oldest are dropped and the loss is logged, because memory must stay bounded.
 */
import { sql } from 'kysely';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Db } from '../store/db/index.js';
import { modelsDb, type ModelsDb } from './tables.js';

export interface UsageRecord {
  requestId: string;
  at: number;
  orgId: string | null;
  userId: string | null;
  keyId: string | null;
  principalId: string;
  model: string;
  provider: string;
  route: string;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  costMicros: number;
  free: boolean;
  unmetered: boolean;
}

export interface UsageSink {
  record(row: UsageRecord): void;
}

export interface UsageRecorderOptions {
  db: Db;
  logger: Logger;
  flushIntervalMs: number;
  batchSize: number;
  /** Most rows held while the database is failing. */
  maxBuffered?: number;
}

export class UsageRecorder implements UsageSink {
  readonly #db: ModelsDb;
  readonly #logger: Logger;
  readonly #batchSize: number;
  readonly #maxBuffered: number;
  #buffer: UsageRecord[] = [];
  #flushing: Promise<void> | null = null;
  readonly #timer: NodeJS.Timeout;
  #closed = false;

  constructor(options: UsageRecorderOptions) {
    this.#db = modelsDb(options.db);
    this.#logger = options.logger;
    this.#batchSize = options.batchSize;
    this.#maxBuffered = options.maxBuffered ?? 100_000;
    this.#timer = setInterval(() => void this.flush(), options.flushIntervalMs);
    this.#timer.unref();
  }

  record(row: UsageRecord): void {
    this.#buffer.push(row);
    if (this.#buffer.length > this.#maxBuffered) {
      const dropped = this.#buffer.length - this.#maxBuffered;
      this.#buffer.splice(0, dropped);
      this.#logger.error({ dropped }, 'usage records dropped: the record store has been failing');
    }
    if (this.#buffer.length >= this.#batchSize) void this.flush();
  }

  get pending(): number {
    return this.#buffer.length;
  }

  /** Writes everything buffered now; concurrent calls share one write loop. */
  flush(): Promise<void> {
    this.#flushing ??= this.#drain().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  async #drain(): Promise<void> {
    while (this.#buffer.length > 0) {
      const batch = this.#buffer.splice(0, this.#batchSize);
      try {
        await this.#db.insertInto('usage_records').values(batch.map(toRow)).execute();
      } catch (error) {
        this.#buffer.unshift(...batch);
        this.#logger.warn({ err: error instanceof Error ? error.message : 'unknown', pending: this.#buffer.length }, 'usage records not written; will retry');
        return;
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.flush();
    // One more pass for rows recorded while the last flush ran.
    if (this.#buffer.length > 0) await this.flush();
  }
}

function toRow(row: UsageRecord) {
  return {
    request_id: row.requestId,
    created_at: new Date(row.at),
    org_id: row.orgId,
    user_id: row.userId,
    key_id: row.keyId,
    principal_id: row.principalId,
    model: row.model,
    provider: row.provider,
    route: row.route,
    input_tokens: row.inputTokens,
    output_tokens: row.outputTokens,
    cached_input_tokens: row.cachedInputTokens,
    cost_micros: row.costMicros,
    free: row.free,
    unmetered: row.unmetered,
  };
}

export const USAGE_GROUPS = ['org', 'user', 'key', 'model', 'day'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

export interface UsageQuery {
  orgId: string;
  groupBy: readonly UsageGroup[];
  from: Date;
  to: Date;
}

export interface UsageTotals {
  org?: string;
  user?: string | null;
  key?: string | null;
  model?: string;
  day?: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  costMicros: number;
  unmeteredRequests: number;
}

const GROUP_COLUMNS = {
  org: sql<string>`org_id`,
  user: sql<string | null>`user_id`,
  key: sql<string | null>`key_id`,
  model: sql<string>`model`,
  day: sql<string>`to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
} as const;

const toNumber = (value: unknown): number => (typeof value === 'number' ? value : Number(value ?? 0));

/** Sums of one org's usage rows in [from, to), grouped by the requested dimensions. */
export async function queryUsage(db: Db, query: UsageQuery): Promise<UsageTotals[]> {
  const groups = [...new Set(query.groupBy)];
  const selected = groups.map((group) => sql`${GROUP_COLUMNS[group]} AS ${sql.ref(`g_${group}`)}`);
  const groupBy = groups.map((group) => GROUP_COLUMNS[group]);
  const rows = await sql<Record<string, unknown>>`
    SELECT ${sql.join([...selected, sql`count(*) AS requests`], sql`, `)},
      coalesce(sum(input_tokens), 0) AS input_tokens,
      coalesce(sum(output_tokens), 0) AS output_tokens,
      coalesce(sum(cached_input_tokens), 0) AS cached_input_tokens,
      coalesce(sum(cost_micros), 0) AS cost_micros,
      count(*) FILTER (WHERE unmetered) AS unmetered
    FROM usage_records
    WHERE org_id = ${query.orgId} AND created_at >= ${query.from} AND created_at < ${query.to}
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
    for (const group of groups) (totals as unknown as Record<string, unknown>)[group] = row[`g_${group}`] ?? null;
    return totals;
  });
}

/**
 * Deletes free-model rows older than `before`, `batchSize` rows per statement so no statement
 * holds locks for long; returns how many went. Stops after `maxBatches` to bound one run.
 */
export async function deleteExpiredFreeUsage(db: Db, before: Date, options: { batchSize?: number; maxBatches?: number } = {}): Promise<number> {
  const batchSize = options.batchSize ?? 1000;
  const maxBatches = options.maxBatches ?? 100;
  let deleted = 0;
  for (let batch = 0; batch < maxBatches; batch += 1) {
    const result = await sql`
      DELETE FROM usage_records WHERE id IN (
        SELECT id FROM usage_records WHERE free AND created_at < ${before} ORDER BY created_at LIMIT ${batchSize}
      )`.execute(db);
    const count = Number(result.numAffectedRows ?? 0n);
    deleted += count;
    if (count < batchSize) break;
  }
  return deleted;
}

/** Runs the retention job now and then every `everyMs`; returns a stop function. */
export function scheduleFreeUsageRetention(options: { db: Db; clock: Clock; logger: Logger; retentionDays: number; everyMs?: number }): () => void {
  const run = async (): Promise<void> => {
    try {
      const before = new Date(options.clock.now() - options.retentionDays * 24 * 60 * 60 * 1000);
      const deleted = await deleteExpiredFreeUsage(options.db, before);
      if (deleted > 0) options.logger.info({ deleted }, 'expired free-model usage rows deleted');
    } catch (error) {
      options.logger.warn({ err: error instanceof Error ? error.message : 'unknown' }, 'free-model usage retention failed; will retry');
    }
  };
  const timer = setInterval(() => void run(), options.everyMs ?? 60 * 60 * 1000);
  timer.unref();
  void run();
  return () => clearInterval(timer);
}
