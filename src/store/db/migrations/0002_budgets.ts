/**
 * Budget definitions (admission/economics). One row per (org, subject, metric, period): the subject
 * is the org itself, one of its users, or one of its keys. Caps are bigint integer units (micro-units
 * of money, tokens or requests), never floats. Usage is NOT here: counters live in the hot state,
 * and the hot path never reads this table (it is loaded into a cache invalidated over pub/sub).
 *
 * Rows of an org go with the org (cascade); user and key subjects carry no foreign key because the
 * subject column is polymorphic, and a leftover row for a deleted user or key is inert.
 */
import type { Migration } from './migration.js';

export const budgets: Migration = {
  name: '0002_budgets',
  statements: [
    `CREATE TABLE budgets (
      org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
      subject_kind text NOT NULL CHECK (subject_kind IN ('org', 'user', 'key')),
      subject_id text NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 64),
      metric text NOT NULL CHECK (metric IN ('cost', 'tokens', 'requests')),
      period text NOT NULL CHECK (period IN ('day', 'month', 'total')),
      cap bigint NOT NULL CHECK (cap >= 0 AND cap <= 9007199254740991),
      alert_thresholds jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(alert_thresholds) = 'array'),
      updated_by text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, subject_kind, subject_id, metric, period)
    )`,
  ],
};
