/**
 * Live admission configuration: defaults from the file, per-org overrides in the `settings` table
 * (scope = org id, key = 'admission'). A change goes through `update`: one upsert bumps the row's
 * version (monotonic per org, decided by PostgreSQL, not by any replica), is audited with its
 * actor, and is published over hot-state pub/sub with its version and content. Every replica
 * applies a message only if its version is newer than what it holds, so a stale or replayed message
 * never wins. Pub/sub is at most once, so each replica also re-reads the table periodically; that
 * bounds how long a replica that missed a message stays behind.
 */
import { sql } from 'kysely';
import type { AuditSink } from '../audit/sink.js';
import type { Logger } from '../core/logger.js';
import type { Principal } from '../identity/principal.js';
import type { Db } from '../store/db/schema.js';
import type { HotState } from '../store/state/port.js';
import { orgOverridesSchema, type AdmissionConfig, type OrgOverrides, type TypeLimit } from './config.js';

export const ADMISSION_CONFIG_CHANNEL = 'admission-config';
const SETTINGS_KEY = 'admission';

export interface VersionedOverrides {
  version: number;
  overrides: OrgOverrides;
}

export interface LiveConfigDeps {
  base: AdmissionConfig;
  state: HotState;
  db?: Db;
  audit?: AuditSink;
  logger?: Logger;
  /** Safety-net re-read of the table (ms); default 30 s. */
  refreshMs?: number;
}

const EMPTY: VersionedOverrides = { version: 0, overrides: { rateLimits: {}, keyOverrides: {} } };

export class LiveAdmissionConfig {
  private readonly orgs = new Map<string, VersionedOverrides>();
  private unsubscribe: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: LiveConfigDeps) {}

  /** The file's admission section (thresholds, circuit, routes are platform-wide). */
  config = (): AdmissionConfig => this.deps.base;

  /** Limits of a principal: org key override → org type override → file key override → file type default. */
  limits = (principal: Principal): TypeLimit => {
    const org = principal.orgId === null ? undefined : this.orgs.get(principal.orgId)?.overrides;
    const keyId = principal.keyId;
    if (keyId !== undefined) {
      const byKey = org?.keyOverrides[keyId] ?? this.deps.base.keyOverrides[keyId];
      if (byKey !== undefined) return byKey;
    }
    return org?.rateLimits[principal.userType] ?? this.deps.base.rateLimits[principal.userType];
  };

  overridesFor(orgId: string): VersionedOverrides {
    return this.orgs.get(orgId) ?? EMPTY;
  }

  /** Applies a version if newer than the one held; returns whether it was applied. */
  apply(orgId: string, incoming: VersionedOverrides): boolean {
    const current = this.orgs.get(orgId);
    if (current !== undefined && current.version >= incoming.version) return false;
    this.orgs.set(orgId, incoming);
    return true;
  }

  async start(): Promise<void> {
    this.unsubscribe = await this.deps.state.subscribe(ADMISSION_CONFIG_CHANNEL, (message) => this.onMessage(message));
    await this.reload();
    if (this.deps.db !== undefined) {
      this.timer = setInterval(() => {
        this.reload().catch((error: unknown) => this.deps.logger?.warn({ err: error }, 'admission config refresh failed'));
      }, this.deps.refreshMs ?? 30_000);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** Re-reads every org's overrides from the record store. */
  async reload(): Promise<void> {
    if (this.deps.db === undefined) return;
    const rows = await this.deps.db.selectFrom('settings').select(['scope', 'value', 'version']).where('key', '=', SETTINGS_KEY).execute();
    for (const row of rows) {
      const parsed = orgOverridesSchema.safeParse(row.value);
      if (parsed.success) this.apply(row.scope, { version: Number(row.version), overrides: parsed.data });
      else this.deps.logger?.error({ orgId: row.scope }, 'stored admission overrides are invalid; ignored');
    }
  }

  /**
   * Stores new overrides for an org (already validated by the caller), bumps the version, audits
   * the change with its actor and publishes it. Returns the new version.
   */
  async update(orgId: string, overrides: OrgOverrides, actor: string): Promise<number> {
    if (this.deps.db === undefined) throw new Error('live admission config needs a record store to change overrides');
    const row = await this.deps.db
      .insertInto('settings')
      .values({ scope: orgId, key: SETTINGS_KEY, value: JSON.stringify(overrides), version: 1, updated_by: actor, updated_at: new Date() })
      .onConflict((oc) =>
        oc.columns(['scope', 'key']).doUpdateSet({
          value: JSON.stringify(overrides),
          version: sql<string>`settings.version + 1`,
          updated_by: actor,
          updated_at: new Date(),
        }),
      )
      .returning('version')
      .executeTakeFirstOrThrow();
    const version = Number(row.version);
    this.apply(orgId, { version, overrides });
    await this.deps.audit?.record({
      actor,
      orgId,
      action: 'settings.update',
      target: 'admission',
      outcome: 'success',
      details: { version, keyOverrides: Object.keys(overrides.keyOverrides).length, typeOverrides: Object.keys(overrides.rateLimits).join(',') },
    });
    try {
      await this.deps.state.publish(ADMISSION_CONFIG_CHANNEL, JSON.stringify({ orgId, version, overrides }));
    } catch (error) {
      // The change is stored and applied here; other replicas pick it up at their next refresh.
      this.deps.logger?.warn({ err: error, orgId, version }, 'admission config change not broadcast');
    }
    return version;
  }

  private onMessage(message: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    const { orgId, version, overrides } = parsed as Record<string, unknown>;
    if (typeof orgId !== 'string' || typeof version !== 'number' || !Number.isSafeInteger(version)) return;
    const valid = orgOverridesSchema.safeParse(overrides);
    if (!valid.success) return;
    this.apply(orgId, { version, overrides: valid.data });
  }
}
