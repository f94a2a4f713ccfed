/**
 * Model gateway records (models/): one usage row per model call, and organisations' own provider
 * keys, sealed with the AEAD (the table never holds a plaintext key).
 *
 * Usage rows carry no foreign keys: anonymous calls have no org, and the rows of a deleted org or
 * key stay as billing history. Free-model rows are deleted after the retention period by a job
 * that walks the (free, created_at) index in bounded batches.
 */
import type { Migration } from './migration.js';

export const usage: Migration = {
  name: '0003_usage',
  statements: [
    `CREATE TABLE usage_records (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      request_id text NOT NULL CHECK (length(request_id) BETWEEN 1 AND 128),
      created_at timestamptz NOT NULL,
      org_id text,
      user_id text,
      key_id text,
      principal_id text NOT NULL CHECK (length(principal_id) BETWEEN 1 AND 256),
      model text NOT NULL CHECK (length(model) BETWEEN 1 AND 128),
      provider text NOT NULL CHECK (length(provider) BETWEEN 1 AND 64),
      route text NOT NULL CHECK (length(route) BETWEEN 1 AND 64),
      input_tokens bigint NOT NULL CHECK (input_tokens >= 0),
      output_tokens bigint NOT NULL CHECK (output_tokens >= 0),
      cached_input_tokens bigint NOT NULL CHECK (cached_input_tokens >= 0),
      cost_micros bigint NOT NULL CHECK (cost_micros >= 0),
      free boolean NOT NULL,
      unmetered boolean NOT NULL
    )`,
    `CREATE INDEX usage_records_org_time ON usage_records (org_id, created_at)`,
    `CREATE INDEX usage_records_free_time ON usage_records (created_at) WHERE free`,
    `CREATE TABLE org_provider_keys (
      org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
      provider_id text NOT NULL CHECK (length(provider_id) BETWEEN 1 AND 64),
      sealed text NOT NULL,
      key_id text NOT NULL,
      updated_by text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, provider_id)
    )`,
  ],
};
