/**
 * Usage is metered per call and stored per hour: a request only adds its counts to an in-memory
 * bucket (org, user, key, model, provider, free, hour); a timer (and a full set of buckets) flushes
 * the buckets as increments to `usage_rollups` (migration 0005), off the request path.
 *
 * Nothing is lost and nothing counts twice:
 *   - a flush is one transaction that also inserts the flush's id into `usage_rollup_flushes`; a
 *     retried flush whose first attempt did commit (reply lost) finds its id and is skipped;
 *   - a flush that fails stays queued, unchanged, with its id, and is retried before anything newer;
 *     meanwhile new calls keep adding to the in-memory buckets, whose number is bounded by the
 *     distinct (org, user, key, model) combinations of one hour, not by the number of calls;
 *   - close() flushes everything left, so a clean shutdown loses nothing.
 */
import { randomBytes } from 'node:crypto';
import { sql, type Insertable } from 'kysely';
import type { Logger } from '../core/logger.js';
import type { Db } from '../store/db/index.js';
import { modelsDb, type ModelsDb, type UsageRollupsTable } from './tables.js';

export const USAGE_BUCKET_MS = 60 * 60 * 1000;

/** One metered call, as the gateway reports it. */
export interface UsageRecord {
  at: number;
  orgId: string | null;
  userId: string | null;
  keyId: string | null;
  model: string;
  provider: string;
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
  /** Most buckets written by one statement. */
  batchSize: number;
}

/** What usage adds up to, for a bucket or for any group of them. */
export interface UsageSums {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  costMicros: number;
  unmeteredRequests: number;
}

export interface UsageBucket extends UsageSums {
  bucketStart: number;
  orgId: string;
  userId: string;
  keyId: string;
  model: string;
  provider: string;
  free: boolean;
}

/** One write: its buckets and the id that makes writing it twice a no-op. */
export interface UsageFlush {
  id: string;
  buckets: UsageBucket[];
}

const SEP = '\u0000';
const ROLLUP_KEY = ['bucket_start', 'org_id', 'user_id', 'key_id', 'model', 'provider', 'free'] as const;

export class UsageRecorder implements UsageSink {
  readonly #db: ModelsDb;
  readonly #logger: Logger;
  readonly #batchSize: number;
  #buckets = new Map<string, UsageBucket>();
  /** Flushes cut but not yet known to be written, oldest first; retried unchanged. */
  readonly #unwritten: UsageFlush[] = [];
  #flushing: Promise<void> | null = null;
  /** When a write last failed (monotonic ms); full batches wait `#retryMs` after it. */
  #failedAt = Number.NEGATIVE_INFINITY;
  readonly #retryMs: number;
  readonly #timer: NodeJS.Timeout;
  #closed = false;

  constructor(options: UsageRecorderOptions) {
    this.#db = modelsDb(options.db);
    this.#logger = options.logger;
    this.#batchSize = options.batchSize;
    this.#retryMs = options.flushIntervalMs;
    this.#timer = setInterval(() => void this.flush(), options.flushIntervalMs);
    this.#timer.unref();
  }

  record(row: UsageRecord): void {
    const bucketStart = row.at - (row.at % USAGE_BUCKET_MS);
    const orgId = row.orgId ?? '';
    const userId = row.userId ?? '';
    const keyId = row.keyId ?? '';
    const id = `${bucketStart}${SEP}${orgId}${SEP}${userId}${SEP}${keyId}${SEP}${row.model}${SEP}${row.provider}${SEP}${row.free ? 1 : 0}`;
    let bucket = this.#buckets.get(id);
    if (bucket === undefined) {
      bucket = { bucketStart, orgId, userId, keyId, model: row.model, provider: row.provider, free: row.free, requests: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costMicros: 0, unmeteredRequests: 0 };
      this.#buckets.set(id, bucket);
    }
    bucket.requests += 1;
    bucket.inputTokens += row.inputTokens;
    bucket.outputTokens += row.outputTokens;
    bucket.cachedInputTokens += row.cachedInputTokens;
    bucket.costMicros += row.costMicros;
    if (row.unmetered) bucket.unmeteredRequests += 1;
    // A full batch is written at once, but not while the store is failing: the timer retries then.
    if (this.#buckets.size >= this.#batchSize && performance.now() - this.#failedAt >= this.#retryMs) void this.flush();
  }

  /** Calls recorded but not yet known to be written. */
  get pending(): number {
    let calls = 0;
    for (const bucket of this.#buckets.values()) calls += bucket.requests;
    for (const flush of this.#unwritten) for (const bucket of flush.buckets) calls += bucket.requests;
    return calls;
  }

  /** Writes everything recorded so far; concurrent calls share one write loop. */
  flush(): Promise<void> {
    this.#flushing ??= this.#drain().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  /**
   * Older flushes first, unchanged; the buckets are cut into new flushes only when nothing older is
   * waiting, so an outage grows the buckets (bounded by their dimensions), never a queue of writes.
   */
  async #drain(): Promise<void> {
    let cut = false;
    for (;;) {
      if (this.#unwritten.length === 0) {
        if (cut) return;
        this.#cut();
        cut = true;
      }
      const flush = this.#unwritten[0];
      if (flush === undefined) return;
      try {
        await writeUsageFlush(this.#db, flush);
      } catch (error) {
        this.#failedAt = performance.now();
        this.#logger.warn({ err: error instanceof Error ? error.message : 'unknown', pendingCalls: this.pending }, 'usage not written; will retry');
        return;
      }
      this.#unwritten.shift();
    }
  }

  /** Moves the in-memory buckets into flushes of at most `batchSize`, each with its own id. */
  #cut(): void {
    if (this.#buckets.size === 0) return;
    const buckets = [...this.#buckets.values()];
    this.#buckets = new Map();
    for (let start = 0; start < buckets.length; start += this.#batchSize) {
      this.#unwritten.push({ id: randomBytes(16).toString('base64url'), buckets: buckets.slice(start, start + this.#batchSize) });
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.flush();
    // One more pass for calls recorded while the last flush ran.
    if (this.#buckets.size > 0 || this.#unwritten.length > 0) await this.flush();
    const left = this.pending;
    if (left > 0) this.#logger.error({ calls: left }, 'usage of these calls could not be written before shutdown: the record store is failing');
  }
}

/**
 * Adds one flush's buckets to the rollups in one transaction, exactly once: the flush id goes in
 * first, and an id already present means an earlier attempt committed (its answer was lost).
 */
export async function writeUsageFlush(db: ModelsDb, flush: UsageFlush): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const first = await trx
      .insertInto('usage_rollup_flushes')
      .values({ flush_id: flush.id })
      .onConflict((conflict) => conflict.column('flush_id').doNothing())
      .returning('flush_id')
      .executeTakeFirst();
    if (first === undefined) return;
    await trx
      .insertInto('usage_rollups')
      .values(flush.buckets.map(toRow))
      .onConflict((conflict) =>
        conflict.columns([...ROLLUP_KEY]).doUpdateSet({
          requests: sql<number>`usage_rollups.requests + excluded.requests`,
          input_tokens: sql<number>`usage_rollups.input_tokens + excluded.input_tokens`,
          output_tokens: sql<number>`usage_rollups.output_tokens + excluded.output_tokens`,
          cached_input_tokens: sql<number>`usage_rollups.cached_input_tokens + excluded.cached_input_tokens`,
          cost_micros: sql<number>`usage_rollups.cost_micros + excluded.cost_micros`,
          unmetered_requests: sql<number>`usage_rollups.unmetered_requests + excluded.unmetered_requests`,
        }),
      )
      .execute();
  });
}

function toRow(bucket: UsageBucket): Insertable<UsageRollupsTable> {
  return {
    bucket_start: new Date(bucket.bucketStart),
    org_id: bucket.orgId,
    user_id: bucket.userId,
    key_id: bucket.keyId,
    model: bucket.model,
    provider: bucket.provider,
    free: bucket.free,
    requests: bucket.requests,
    input_tokens: bucket.inputTokens,
    output_tokens: bucket.outputTokens,
    cached_input_tokens: bucket.cachedInputTokens,
    cost_micros: bucket.costMicros,
    unmetered_requests: bucket.unmeteredRequests,
  };
}
