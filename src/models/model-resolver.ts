/**
 * Which model an alias names for a caller: the operator's catalogue first, then the caller's own
 * org's custom endpoint models. Another org's custom models are simply not there, so asking for
 * one is the same `model_not_found` as asking for a name nobody uses.
 *
 * Catalogue aliases never touch the org cache, so configured models keep working while the record
 * store is down. An org's custom models are read once per org into an `InvalidatedCache`: every
 * admin change calls `changed(orgId)`, which every replica hears over hot-state pub/sub; the TTL
 * bounds a missed message. The org's endpoint keys are opened once per load, never per request.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { HotState } from '../store/state/index.js';
import type { CatalogueModel, CatalogueProvider, ModelCatalogue } from './catalogue.js';
import { DEFAULT_MAX_INPUT_TOKENS, DEFAULT_MAX_OUTPUT_TOKENS, DEFAULT_RESPONSE_TIMEOUT_MS } from './config.js';
import { CUSTOM_ALIAS_PATTERN, type OpenedEndpoint, type OrgCustomEndpoints } from './custom-endpoints-store.js';
import { InvalidatedCache } from './invalidated-cache.js';
import { adapterFor } from './providers/index.js';

export const CUSTOM_ENDPOINTS_CHANNEL = 'models:custom-endpoints';
const MAX_CACHED_ORGS = 5000;
/** Header wait and stream silence allowed to a custom endpoint, as for a configured provider by default. */
const CUSTOM_TIMEOUT_MS = 60_000;

export interface ModelResolverOptions {
  catalogue: ModelCatalogue;
  endpoints: Pick<OrgCustomEndpoints, 'openOrg'>;
  pubsub: Pick<HotState, 'publish' | 'subscribe'>;
  clock: Clock;
  logger?: Logger;
}

type OrgModels = ReadonlyMap<string, CatalogueModel>;

export class ModelResolver {
  readonly #catalogue: ModelCatalogue;
  readonly #cache: InvalidatedCache<OrgModels>;

  constructor(options: ModelResolverOptions) {
    this.#catalogue = options.catalogue;
    this.#cache = new InvalidatedCache({
      channel: CUSTOM_ENDPOINTS_CHANNEL,
      pubsub: options.pubsub,
      clock: options.clock,
      load: async (orgId) => customModels(orgId, await options.endpoints.openOrg(orgId), this.#catalogue),
      maxEntries: MAX_CACHED_ORGS,
      what: "organization's custom endpoints",
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

  /**
   * The model `alias` names for a caller of `orgId`; undefined when there is none for them. Answers
   * without a promise when nothing has to be loaded (every configured model, and cached orgs).
   */
  resolve(orgId: string | null, alias: string): CatalogueModel | undefined | Promise<CatalogueModel | undefined> {
    const configured = this.#catalogue.get(alias);
    if (configured !== undefined) return configured;
    // Anonymous callers have no org, and a name no org could have chosen costs no lookup.
    if (orgId === null || !CUSTOM_ALIAS_PATTERN.test(alias)) return undefined;
    const cached = this.#cache.peek(orgId);
    if (cached !== undefined) return cached.get(alias);
    return this.#cache.get(orgId).then((models) => models.get(alias));
  }

  /** The org's own custom models, for `GET /v1/models`. */
  async orgModels(orgId: string | null): Promise<CatalogueModel[]> {
    return orgId === null ? [] : [...(await this.#cache.get(orgId)).values()];
  }

  isCatalogueAlias(alias: string): boolean {
    return this.#catalogue.get(alias) !== undefined;
  }

  /** After any admin change to an org's endpoints: this replica and every other one reload them. */
  changed(orgId: string): Promise<void> {
    return this.#cache.invalidate(orgId);
  }
}

/**
 * The breaker key of one org's endpoint: a failing endpoint of one org must never pause another
 * org's endpoint of the same name. Org ids outside the breaker's alphabet are hashed.
 */
function customDependency(orgId: string, endpointId: string): string {
  const org = /^[A-Za-z0-9_-]{1,48}$/.test(orgId) ? orgId : createHash('sha256').update(orgId).digest('base64url').slice(0, 22);
  return `provider:custom:${org}:${endpointId}`;
}

function customModels(orgId: string, endpoints: readonly OpenedEndpoint[], catalogue: ModelCatalogue): OrgModels {
  const models = new Map<string, CatalogueModel>();
  for (const endpoint of endpoints) {
    const provider: CatalogueProvider = {
      id: `custom:${endpoint.endpointId}`,
      kind: 'openai_compatible',
      baseUrl: endpoint.baseUrl.replace(/\/+$/, ''),
      timeoutMs: CUSTOM_TIMEOUT_MS,
      responseTimeoutMs: DEFAULT_RESPONSE_TIMEOUT_MS,
      adapter: adapterFor('openai_compatible'),
      managedKey: endpoint.apiKey,
      dependency: customDependency(orgId, endpoint.endpointId),
      egress: 'org',
    };
    for (const model of endpoint.models) {
      // The catalogue wins over an alias the operator added later; among the org's own, the first endpoint by id.
      if (catalogue.get(model.alias) !== undefined || models.has(model.alias)) continue;
      models.set(model.alias, {
        alias: model.alias,
        provider,
        upstreamModel: model.upstream,
        free: false,
        price: model.price ?? null,
        maxOutputTokens: model.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS,
        maxInputTokens: model.maxInputTokens ?? DEFAULT_MAX_INPUT_TOKENS,
        // The org's own server, on the org's own key: what its tools cost is the org's own bill.
        allowServerTools: true,
        fallbacks: [],
      });
    }
  }
  return models;
}
