/**
 * Table types of the record store, shared by the embedded (PGlite) and PostgreSQL adapters.
 * Migrations in migrations/ create exactly these tables; change both together.
 * Times are timestamptz (Date); money is bigint micro-units (string on read, see toMicros).
 */
import type { ColumnType, Generated, Kysely } from 'kysely';

type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Json<T> = ColumnType<T, string, string>;

export type OrgRole = 'owner' | 'admin' | 'member' | 'viewer';
export type UserType = 'registered' | 'paid' | 'privileged';

export interface OrgsTable {
  id: string;
  name: string;
  slug: string;
  created_at: CreatedAt;
}

export interface UsersTable {
  id: string;
  email: string;
  display_name: string;
  user_type: UserType;
  platform_admin: boolean;
  /** argon2id PHC string; null for users who only sign in through OIDC or keys. */
  password_hash: string | null;
  /** Random per-user value embedded in every key; rotating it kills all the user's keys. */
  pepper: string;
  disabled: boolean;
  created_at: CreatedAt;
}

export interface MembershipsTable {
  org_id: string;
  user_id: string;
  role: OrgRole;
  created_at: CreatedAt;
}

export interface ApiKeysTable {
  id: string;
  org_id: string;
  user_id: string;
  name: string;
  scopes: Json<string[]>;
  created_at: CreatedAt;
  expires_at: Date;
  revoked_at: Date | null;
  created_by: string;
}

export interface MfaTable {
  user_id: string;
  /** TOTP secret sealed with the master key (AEAD), never stored in the clear. */
  totp_secret_sealed: string;
  enabled: boolean;
  /** argon2id or sha256 hashes of unused recovery codes. */
  recovery_codes: Json<string[]>;
  /** Last accepted TOTP time step, so a code cannot be replayed within its window. */
  last_step: ColumnType<string, number | string, number | string> | null;
  created_at: CreatedAt;
}

export interface SessionsTable {
  /** sha256 of the session token; the token itself is only in the cookie. */
  id_hash: string;
  user_id: string;
  csrf_hash: string;
  mfa_verified: boolean;
  created_at: CreatedAt;
  expires_at: Date;
  revoked_at: Date | null;
}

export interface SettingsTable {
  /** 'platform' or an org id. */
  scope: string;
  key: string;
  value: Json<unknown>;
  version: ColumnType<string, number | string, number | string>;
  updated_by: string;
  updated_at: Date;
}

export interface RevocationsTable {
  /** What is revoked: 'key' (by key id) and, later, 'capability', 'session', 'container'. */
  kind: string;
  subject: string;
  revoked_at: Date;
  /** After this the subject can no longer be presented anyway, so the entry may be dropped. */
  expires_at: Date;
}

export interface RuntimeInstancesTable {
  id: string;
  org_id: string;
  user_id: string;
  key_id: string | null;
  /** Only the expiry of the stored key is kept here; the key itself is returned to the runtime. */
  key_expires_at: Date | null;
  updated_at: Date;
}

export interface AuditLogTable {
  seq: ColumnType<string, string | number, never>;
  id: string;
  at: Date;
  actor: string;
  org_id: string | null;
  action: string;
  target: string | null;
  outcome: 'success' | 'failure' | 'denied';
  details: Json<Record<string, unknown>>;
  prev_hash: string;
  hash: string;
}

export interface AuditCheckpointsTable {
  seq: ColumnType<string, string | number, never>;
  /** Hash of the audit record at `seq`. */
  hash: string;
  at: Date;
  /** HMAC over (seq, hash, at) with the audit signing secret. */
  signature: string;
  key_id: string;
}

/** Budget definitions of admission/economics (migration 0002_budgets). */
export interface BudgetsTable {
  org_id: string;
  subject_kind: 'org' | 'user' | 'key';
  subject_id: string;
  metric: 'cost' | 'tokens' | 'requests';
  period: 'day' | 'month' | 'total';
  /** bigint: a string on read; callers convert with Number() after a safe-integer check. */
  cap: ColumnType<string, number | string, number | string>;
  alert_thresholds: Json<number[]>;
  updated_by: string;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface Database {
  orgs: OrgsTable;
  users: UsersTable;
  memberships: MembershipsTable;
  api_keys: ApiKeysTable;
  mfa: MfaTable;
  sessions: SessionsTable;
  settings: SettingsTable;
  revocations: RevocationsTable;
  runtime_instances: RuntimeInstancesTable;
  audit_log: AuditLogTable;
  audit_checkpoints: AuditCheckpointsTable;
  budgets: BudgetsTable;
}

export type Db = Kysely<Database>;

export type { Generated };
