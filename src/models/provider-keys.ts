/**
 * Organisations' own provider keys (bring your own key). Stored sealed with the AEAD, bound to
 * org and provider by the associated data so a sealed value copied to another row will not open.
 * Write-only: nothing here returns a key to a caller other than the gateway's request path.
 * Opened keys are cached per replica so a model call does not hit the database; a set or a removal
 * drops the entry on every replica through hot-state pub/sub at once (the message carries the org
 * and provider ids, never key material), and the cache TTL bounds a missed message.
 */
import type { Aead } from '../core/aead.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Db } from '../store/db/index.js';
import type { HotState } from '../store/state/index.js';
import { InvalidatedCache } from './invalidated-cache.js';
import { modelsDb, type ModelsDb } from './tables.js';

export const PROVIDER_KEYS_CHANNEL = 'models:provider-keys';
const CACHE_MAX = 10_000;

function associatedData(orgId: string, providerId: string): string {
  return `org-provider-key:${orgId}:${providerId}`;
}

export interface OrgProviderKeysOptions {
  db: Db;
  aead: Aead;
  clock: Clock;
  pubsub: Pick<HotState, 'publish' | 'subscribe'>;
  /** Configured provider ids: only those can have an org key, so other ids never reach the cache or the database. */
  providers: readonly string[];
  logger?: Logger;
}

export class OrgProviderKeys {
  readonly #db: ModelsDb;
  readonly #aead: Aead;
  readonly #clock: Clock;
  readonly #providers: ReadonlySet<string>;
  readonly #cache: InvalidatedCache<string | null>;

  constructor(options: OrgProviderKeysOptions) {
    this.#db = modelsDb(options.db);
    this.#aead = options.aead;
    this.#clock = options.clock;
    this.#providers = new Set(options.providers);
    this.#cache = new InvalidatedCache({
      channel: PROVIDER_KEYS_CHANNEL,
      pubsub: options.pubsub,
      clock: options.clock,
      load: (cacheKey) => this.#open(cacheKey),
      maxEntries: CACHE_MAX,
      what: "organization's provider keys",
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
  }

  /** Subscribes to changes made on other replicas; call before serving. */
  start(): Promise<void> {
    return this.#cache.start();
  }

  stop(): Promise<void> {
    return this.#cache.stop();
  }

  async put(orgId: string, providerId: string, apiKey: string, actor: string): Promise<void> {
    const sealed = this.#aead.seal(apiKey, associatedData(orgId, providerId));
    const row = { org_id: orgId, provider_id: providerId, sealed, key_id: this.#aead.activeKeyId, updated_by: actor, updated_at: new Date(this.#clock.now()) };
    await this.#db
      .insertInto('org_provider_keys')
      .values(row)
      .onConflict((conflict) => conflict.columns(['org_id', 'provider_id']).doUpdateSet({ sealed, key_id: row.key_id, updated_by: actor, updated_at: row.updated_at }))
      .execute();
    await this.#cache.invalidate(cacheKeyOf(orgId, providerId));
  }

  async remove(orgId: string, providerId: string): Promise<boolean> {
    const result = await this.#db.deleteFrom('org_provider_keys').where('org_id', '=', orgId).where('provider_id', '=', providerId).executeTakeFirst();
    await this.#cache.invalidate(cacheKeyOf(orgId, providerId));
    return Number(result.numDeletedRows) > 0;
  }

  /** Which providers have a key set; the keys themselves never leave. */
  async list(orgId: string): Promise<{ providerId: string; updatedAt: string }[]> {
    const rows = await this.#db.selectFrom('org_provider_keys').select(['provider_id', 'updated_at']).where('org_id', '=', orgId).orderBy('provider_id').execute();
    return rows.map((row) => ({ providerId: row.provider_id, updatedAt: new Date(row.updated_at).toISOString() }));
  }

  /** The org's key for a provider (or null) when it is fresh in the cache; undefined: ask `keyFor`. */
  cachedKeyFor(orgId: string, providerId: string): string | null | undefined {
    if (!this.#providers.has(providerId)) return null;
    return this.#cache.peek(cacheKeyOf(orgId, providerId));
  }

  /** The org's key for a provider, or null; for the request path only. */
  keyFor(orgId: string, providerId: string): Promise<string | null> {
    if (!this.#providers.has(providerId)) return Promise.resolve(null);
    return this.#cache.get(cacheKeyOf(orgId, providerId));
  }

  async #open(cacheKey: string): Promise<string | null> {
    // Provider ids never contain a line break, so the last one separates the two ids.
    const split = cacheKey.lastIndexOf('\n');
    const orgId = cacheKey.slice(0, split);
    const providerId = cacheKey.slice(split + 1);
    const row = await this.#db.selectFrom('org_provider_keys').select('sealed').where('org_id', '=', orgId).where('provider_id', '=', providerId).executeTakeFirst();
    return row === undefined ? null : this.#aead.open(row.sealed, associatedData(orgId, providerId)).toString('utf8');
  }
}

/** The cache key, which is also the pub/sub message: the two ids, one per line, and nothing else. */
function cacheKeyOf(orgId: string, providerId: string): string {
  return `${orgId}\n${providerId}`;
}
