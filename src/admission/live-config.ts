/**
 * Live admission configuration: defaults from the file, then two kinds of overrides in the
 * `settings` table — platform-wide ones (scope `platform`, key `admission.platform`: default rate
 * limits, backpressure, circuit settings, route patterns; platform-config.ts) and per-org ones
 * (scope = org id, key `admission`: rate limits per user type and per key).
 *
 * Every change goes through `update` / `updatePlatform`: one upsert bumps the row's version
 * (monotonic per row, decided by PostgreSQL, not by any replica), the change is audited with its
 * actor and published over hot-state pub/sub with its version and content. Every replica applies a
 * message only if its version is newer than what it holds, so a stale or replayed message never
 * wins. Pub/sub is at most once, so each replica also re-reads the table periodically; that bounds
 * how long a replica that missed a message stays behind.
 */
import { sql } from 'kysely';
import type { AuditSink } from '../audit/sink.js';
import { AppError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Principal } from '../identity/principal.js';
import type { Db } from '../store/db/schema.js';
import type { HotState } from '../store/state/port.js';
import { orgOverridesSchema, type AdmissionConfig, type OrgOverrides, type TypeLimit } from './config.js';
import { parseMessageObject } from './messages.js';
import { applyPlatformOverrides, platformOverridesSchema, type PlatformOverrides } from './platform-config.js';

export const ADMISSION_CONFIG_CHANNEL = 'admission-config';
const ORG_KEY = 'admission';
const PLATFORM_SCOPE = 'platform';
const PLATFORM_KEY = 'admission.platform';

export interface Versioned<T> {
  version: number;
  overrides: T;
}
export type VersionedOverrides = Versioned<OrgOverrides>;

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
  private platform: Versioned<PlatformOverrides> = { version: 0, overrides: {} };
  private effective: AdmissionConfig;
  private unsubscribe: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: LiveConfigDeps) {
    this.effective = deps.base;
  }

  /** The effective platform-wide config: the file's section with the platform overrides applied. */
  config = (): AdmissionConfig => this.effective;

  /** Limits of a principal: org key override → org type override → file key override → platform/file type default. */
  limits = (principal: Principal): TypeLimit => {
    const org = principal.orgId === null ? undefined : this.orgs.get(principal.orgId)?.overrides;
    const keyId = principal.keyId;
    if (keyId !== undefined) {
      const byKey = org?.keyOverrides[keyId] ?? this.effective.keyOverrides[keyId];
      if (byKey !== undefined) return byKey;
    }
    return org?.rateLimits[principal.userType] ?? this.effective.rateLimits[principal.userType];
  };

  overridesFor(orgId: string): VersionedOverrides {
    return this.orgs.get(orgId) ?? EMPTY;
  }

  platformOverrides(): Versioned<PlatformOverrides> {
    return this.platform;
  }

  /** Applies an org's version if newer than the one held; returns whether it was applied. */
  apply(orgId: string, incoming: VersionedOverrides): boolean {
    const current = this.orgs.get(orgId);
    if (current !== undefined && current.version >= incoming.version) return false;
    this.orgs.set(orgId, incoming);
    return true;
  }

  /** Applies a platform version if newer and valid against the file's config; returns whether it was applied. */
  applyPlatform(incoming: Versioned<PlatformOverrides>): boolean {
    if (this.platform.version >= incoming.version) return false;
    const merged = applyPlatformOverrides(this.deps.base, incoming.overrides);
    if (!merged.ok) {
      // Validated when written; only a file change since then can make it invalid. The file wins.
      this.deps.logger?.error({ version: incoming.version, problem: merged.problem }, 'platform admission overrides do not fit the file config; ignored');
      return false;
    }
    this.platform = incoming;
    this.effective = merged.config;
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

  /** Re-reads the platform's and every org's overrides from the record store. */
  async reload(): Promise<void> {
    if (this.deps.db === undefined) return;
    const rows = await this.deps.db.selectFrom('settings').select(['scope', 'key', 'value', 'version']).where('key', 'in', [ORG_KEY, PLATFORM_KEY]).execute();
    for (const row of rows) {
      if (row.key === PLATFORM_KEY) {
        const parsed = platformOverridesSchema.safeParse(row.value);
        if (parsed.success) this.applyPlatform({ version: Number(row.version), overrides: parsed.data });
        else this.deps.logger?.error('stored platform admission overrides are invalid; ignored');
        continue;
      }
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
    const version = await this.store(orgId, ORG_KEY, overrides, actor);
    this.apply(orgId, { version, overrides });
    await this.deps.audit?.record({
      actor,
      orgId,
      action: 'settings.update',
      target: 'admission',
      outcome: 'success',
      details: { version, keyOverrides: Object.keys(overrides.keyOverrides).length, typeOverrides: Object.keys(overrides.rateLimits).join(',') },
    });
    await this.broadcast({ orgId, version, overrides });
    return version;
  }

  /**
   * Replaces the platform overrides (shape validated by the caller), after checking that the
   * result is a valid config; refuses with 400 `validation_failed` naming the key otherwise.
   */
  async updatePlatform(overrides: PlatformOverrides, actor: string): Promise<number> {
    const merged = applyPlatformOverrides(this.deps.base, overrides);
    if (!merged.ok) throw new AppError('validation_failed', { message: merged.problem });
    const version = await this.store(PLATFORM_SCOPE, PLATFORM_KEY, overrides, actor);
    this.applyPlatform({ version, overrides });
    await this.deps.audit?.record({
      actor,
      orgId: null,
      action: 'settings.update',
      target: PLATFORM_KEY,
      outcome: 'success',
      details: { version, changed: Object.keys(overrides).join(',') },
    });
    await this.broadcast({ platform: true, version, overrides });
    return version;
  }

  /** One upsert; the version PostgreSQL returns is the change's version. */
  private async store(scope: string, key: string, value: unknown, actor: string): Promise<number> {
    if (this.deps.db === undefined) throw new Error('live admission config needs a record store to change overrides');
    const json = JSON.stringify(value);
    const row = await this.deps.db
      .insertInto('settings')
      .values({ scope, key, value: json, version: 1, updated_by: actor, updated_at: new Date() })
      .onConflict((oc) =>
        oc.columns(['scope', 'key']).doUpdateSet({
          value: json,
          version: sql<string>`settings.version + 1`,
          updated_by: actor,
          updated_at: new Date(),
        }),
      )
      .returning('version')
      .executeTakeFirstOrThrow();
    return Number(row.version);
  }

  private async broadcast(message: Record<string, unknown>): Promise<void> {
    try {
      await this.deps.state.publish(ADMISSION_CONFIG_CHANNEL, JSON.stringify(message));
    } catch (error) {
      // The change is stored and applied here; other replicas pick it up at their next refresh.
      this.deps.logger?.warn({ err: error, version: message.version }, 'admission config change not broadcast');
    }
  }

  private onMessage(message: string): void {
    const parsed = parseMessageObject(message);
    if (parsed === null) return;
    const { orgId, platform, version, overrides } = parsed;
    if (typeof version !== 'number' || !Number.isSafeInteger(version)) return;
    if (platform === true) {
      const valid = platformOverridesSchema.safeParse(overrides);
      if (valid.success) this.applyPlatform({ version, overrides: valid.data });
      return;
    }
    if (typeof orgId !== 'string') return;
    const valid = orgOverridesSchema.safeParse(overrides);
    if (!valid.success) return;
    this.apply(orgId, { version, overrides: valid.data });
  }
}
