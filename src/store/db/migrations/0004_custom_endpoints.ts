/**
 * Organisations' own OpenAI-compatible endpoints (models/custom-endpoints-store.ts). The base URL
 * was checked at write time and is checked again at connect time; the optional API key is sealed
 * with the AEAD, bound to org and endpoint. `models` is a JSON array of { alias, upstream, price?,
 * maxOutputTokens? } entries, validated and bounded by the application before it is written.
 */
import type { Migration } from './migration.js';

export const customEndpoints: Migration = {
  name: '0004_custom_endpoints',
  statements: [
    `CREATE TABLE org_custom_endpoints (
      org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
      endpoint_id text NOT NULL CHECK (length(endpoint_id) BETWEEN 1 AND 64),
      base_url text NOT NULL CHECK (length(base_url) BETWEEN 1 AND 2048),
      sealed_key text,
      key_id text,
      models text NOT NULL CHECK (length(models) <= 65536),
      updated_by text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, endpoint_id)
    )`,
  ],
};
