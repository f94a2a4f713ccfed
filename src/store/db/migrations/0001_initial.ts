/**
 * The first schema: every table of schema.ts with its constraints. Foreign keys cascade where a
 * child means nothing without its parent (memberships, keys, sessions, MFA of a deleted user or
 * org). The audit tables deliberately have NO foreign keys: an org or user being deleted must
 * neither delete nor rewrite audit rows, since either would break the hash chain.
 */
import type { Migration } from './migration.js';

export const initial: Migration = {
  name: '0001_initial',
  statements: [
    `CREATE TABLE orgs (
      id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
      name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
      slug text NOT NULL CHECK (length(slug) BETWEEN 1 AND 100),
      created_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT orgs_slug_unique UNIQUE (slug)
    )`,
    // Emails are stored lowercased (the CHECK enforces it), so a plain UNIQUE is case-insensitive.
    `CREATE TABLE users (
      id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
      email text NOT NULL CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 320),
      display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
      user_type text NOT NULL DEFAULT 'registered' CHECK (user_type IN ('registered', 'paid', 'privileged')),
      platform_admin boolean NOT NULL DEFAULT false,
      password_hash text,
      pepper text NOT NULL CHECK (length(pepper) > 0),
      disabled boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT users_email_unique UNIQUE (email)
    )`,
    `CREATE TABLE memberships (
      org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
      user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (org_id, user_id)
    )`,
    `CREATE INDEX memberships_by_user ON memberships (user_id)`,
    `CREATE TABLE api_keys (
      id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
      org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
      user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      name text NOT NULL CHECK (length(name) <= 200),
      scopes jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(scopes) = 'array'),
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      revoked_at timestamptz,
      created_by text NOT NULL
    )`,
    `CREATE INDEX api_keys_by_user ON api_keys (user_id)`,
    `CREATE INDEX api_keys_by_org ON api_keys (org_id)`,
    `CREATE TABLE mfa (
      user_id text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
      totp_secret_sealed text NOT NULL,
      enabled boolean NOT NULL DEFAULT false,
      recovery_codes jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(recovery_codes) = 'array'),
      last_step bigint CHECK (last_step >= 0),
      created_at timestamptz NOT NULL DEFAULT now()
    )`,
    `CREATE TABLE sessions (
      id_hash text PRIMARY KEY,
      user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      csrf_hash text NOT NULL,
      mfa_verified boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      revoked_at timestamptz
    )`,
    `CREATE INDEX sessions_by_user ON sessions (user_id)`,
    `CREATE INDEX sessions_by_expiry ON sessions (expires_at)`,
    // scope is 'platform' or an org id; being polymorphic it cannot carry a foreign key.
    `CREATE TABLE settings (
      scope text NOT NULL CHECK (length(scope) BETWEEN 1 AND 64),
      key text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
      value jsonb NOT NULL,
      version bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
      updated_by text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (scope, key)
    )`,
    `CREATE TABLE revocations (
      kind text NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),
      subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
      revoked_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (kind, subject)
    )`,
    `CREATE INDEX revocations_by_expiry ON revocations (expires_at)`,
    `CREATE TABLE runtime_instances (
      id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
      org_id text NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
      user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      key_id text REFERENCES api_keys (id) ON DELETE SET NULL,
      key_expires_at timestamptz,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
    `CREATE INDEX runtime_instances_by_org ON runtime_instances (org_id)`,
    `CREATE INDEX runtime_instances_by_user ON runtime_instances (user_id)`,
    // seq is assigned by the audit writer (it is part of the hashed record), hence no identity.
    `CREATE TABLE audit_log (
      seq bigint PRIMARY KEY CHECK (seq >= 1),
      id text NOT NULL,
      at timestamptz NOT NULL,
      actor text NOT NULL,
      org_id text,
      action text NOT NULL,
      target text,
      outcome text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
      details jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
      prev_hash text NOT NULL,
      hash text NOT NULL,
      CONSTRAINT audit_log_id_unique UNIQUE (id)
    )`,
    `CREATE INDEX audit_log_by_org_at ON audit_log (org_id, at)`,
    `CREATE INDEX audit_log_by_actor ON audit_log (actor)`,
    `CREATE INDEX audit_log_by_action ON audit_log (action)`,
    `CREATE INDEX audit_log_by_at ON audit_log (at)`,
    `CREATE TABLE audit_checkpoints (
      seq bigint PRIMARY KEY CHECK (seq >= 1),
      hash text NOT NULL,
      at timestamptz NOT NULL,
      signature text NOT NULL,
      key_id text NOT NULL
    )`,
  ],
};
