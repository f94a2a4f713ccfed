/**
 * Usage as hourly rollups instead of one row per model call (models/usage-rollups.ts).
 *
 * A row per call cost the embedded database more CPU than everything else a request does, and
 * grows without bound at gateway rates; every question the admin API answers (per org, user, key,
 * model and day) is a sum. Each row is one (hour, org, user, key, model, provider, free) bucket
 * with exact integer sums; replicas add to it with an upsert, so concurrent flushes never lose an
 * increment. Absent ids are stored as '' (not NULL) so the bucket key is a plain unique index on
 * every PostgreSQL version.
 *
 * `usage_rollup_flushes` makes a flush exactly-once: its id is inserted in the same transaction as
 * the increments, so a retried flush whose first attempt did commit is recognised and skipped.
 *
 * Existing per-call rows are folded into buckets, then the old table goes.
 */
import type { Migration } from './migration.js';

export const usageRollups: Migration = {
  name: '0005_usage_rollups',
  statements: [
    `CREATE TABLE usage_rollups (
      bucket_start timestamptz NOT NULL,
      org_id text NOT NULL CHECK (length(org_id) <= 128),
      user_id text NOT NULL CHECK (length(user_id) <= 256),
      key_id text NOT NULL CHECK (length(key_id) <= 128),
      model text NOT NULL CHECK (length(model) BETWEEN 1 AND 128),
      provider text NOT NULL CHECK (length(provider) BETWEEN 1 AND 64),
      free boolean NOT NULL,
      requests bigint NOT NULL CHECK (requests >= 0),
      input_tokens bigint NOT NULL CHECK (input_tokens >= 0),
      output_tokens bigint NOT NULL CHECK (output_tokens >= 0),
      cached_input_tokens bigint NOT NULL CHECK (cached_input_tokens >= 0),
      cost_micros bigint NOT NULL CHECK (cost_micros >= 0),
      unmetered_requests bigint NOT NULL CHECK (unmetered_requests >= 0),
      PRIMARY KEY (bucket_start, org_id, user_id, key_id, model, provider, free)
    )`,
    `CREATE INDEX usage_rollups_org_time ON usage_rollups (org_id, bucket_start)`,
    `CREATE INDEX usage_rollups_free_time ON usage_rollups (bucket_start) WHERE free`,
    `CREATE TABLE usage_rollup_flushes (
      flush_id text PRIMARY KEY CHECK (length(flush_id) BETWEEN 1 AND 64),
      flushed_at timestamptz NOT NULL DEFAULT now()
    )`,
    `INSERT INTO usage_rollups (bucket_start, org_id, user_id, key_id, model, provider, free, requests, input_tokens, output_tokens, cached_input_tokens, cost_micros, unmetered_requests)
      SELECT date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', coalesce(org_id, ''), coalesce(user_id, ''), coalesce(key_id, ''), model, provider, free,
        count(*), sum(input_tokens), sum(output_tokens), sum(cached_input_tokens), sum(cost_micros), count(*) FILTER (WHERE unmetered)
      FROM usage_records
      GROUP BY 1, 2, 3, 4, 5, 6, 7`,
    `DROP TABLE usage_records`,
  ],
};
