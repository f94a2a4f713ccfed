/**
 * Organisations' own provider keys (bring your own key). Stored sealed with the AEAD, bound to
 * org and provider by the associated data so a sealed value copied to another row will not open.
 * Write-only: nothing here returns a key to a caller other than the gateway's request path.
 * Opened keys are cached briefly per replica so a model call does not hit the database; a write on
 * this replica drops its entry at once, other replicas see it within the cache lifetime.
 */
import type { Aead } from '../core/aead.js';
import type { Clock } from '../core/clock.js';
import type { Db } from '../store/db/index.js';
import { modelsDb, type ModelsDb } from './tables.js';

const CACHE_MS = 30_000;
const CACHE_MAX = 10_000;

function associatedData(orgId: string, providerId: string): string {
  return `org-provider-key:${orgId}:${providerId}`;
}

export class OrgProviderKeys {
  readonly #db: ModelsDb;
  readonly #cache = new Map<string, { key: string | null; until: number }>();

  constructor(db: Db, private readonly aead: Aead, private readonly clock: Clock) {
    this.#db = modelsDb(db);
  }

  async put(orgId: string, providerId: string, apiKey: string, actor: string): Promise<void> {
    const sealed = this.aead.seal(apiKey, associatedData(orgId, providerId));
    const row = { org_id: orgId, provider_id: providerId, sealed, key_id: this.aead.activeKeyId, updated_by: actor, updated_at: new Date(this.clock.now()) };
    await this.#db
      .insertInto('org_provider_keys')
      .values(row)
      .onConflict((conflict) => conflict.columns(['org_id', 'provider_id']).doUpdateSet({ sealed, key_id: row.key_id, updated_by: actor, updated_at: row.updated_at }))
      .execute();
    this.#cache.delete(`${orgId}\u0000${providerId}`);
  }

  async remove(orgId: string, providerId: string): Promise<boolean> {
    const result = await this.#db.deleteFrom('org_provider_keys').where('org_id', '=', orgId).where('provider_id', '=', providerId).executeTakeFirst();
    this.#cache.delete(`${orgId}\u0000${providerId}`);
    return Number(result.numDeletedRows) > 0;
  }

  /** Which providers have a key set; the keys themselves never leave. */
  async list(orgId: string): Promise<{ providerId: string; updatedAt: string }[]> {
    const rows = await this.#db.selectFrom('org_provider_keys').select(['provider_id', 'updated_at']).where('org_id', '=', orgId).orderBy('provider_id').execute();
    return rows.map((row) => ({ providerId: row.provider_id, updatedAt: new Date(row.updated_at).toISOString() }));
  }

  /** The org's key for a provider, or null; for the request path only. */
  async keyFor(orgId: string, providerId: string): Promise<string | null> {
    const cacheKey = `${orgId}\u0000${providerId}`;
    const now = this.clock.now();
    const cached = this.#cache.get(cacheKey);
    if (cached !== undefined && cached.until > now) return cached.key;
    const row = await this.#db.selectFrom('org_provider_keys').select('sealed').where('org_id', '=', orgId).where('provider_id', '=', providerId).executeTakeFirst();
    const key = row === undefined ? null : this.aead.open(row.sealed, associatedData(orgId, providerId)).toString('utf8');
    if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
    this.#cache.set(cacheKey, { key, until: now + CACHE_MS });
    return key;
  }
}
