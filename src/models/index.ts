/**
 * The model gateway: config section, catalogue, provider adapters, egress client, metering and
 * routes. `createModelService` builds the whole thing from config for the composition root.
 */
import type { Registry } from 'prom-client';
import type { Admission } from '../admission/types.js';
import type { Aead } from '../core/aead.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Db } from '../store/db/index.js';
import type { HotState } from '../store/state/index.js';
import { ModelCatalogue } from './catalogue.js';
import type { ModelsConfig } from './config.js';
import { OrgCustomEndpoints } from './custom-endpoints-store.js';
import { FreeModelLimits } from './free-limits.js';
import { ModelGateway } from './gateway.js';
import { ModelMetrics } from './metrics.js';
import { ModelResolver } from './model-resolver.js';
import { OrgProviderKeys } from './provider-keys.js';
import { Upstream } from './upstream.js';
import { UsageRecorder } from './usage-records.js';
import { scheduleFreeUsageRetention } from './usage-queries.js';
import type { Resolver } from '../egress/index.js';

export { modelsConfigSchema, DEFAULT_MODELS_CONFIG, type ModelsConfig, type ModelConfig, type ProviderConfig, type Price } from './config.js';
export { ModelCatalogue, type CatalogueModel, type CatalogueProvider } from './catalogue.js';
export { ModelGateway, mayUsePaidModels, type ModelCall, type ModelGatewayOptions } from './gateway.js';
export { registerModelRoutes, type ModelRoutesDeps } from './routes.js';
export { costMicros, type Usage } from './pricing.js';
export { UsageRecorder, USAGE_BUCKET_MS, type UsageRecord, type UsageSink, type UsageSums } from './usage-records.js';
export { queryUsage, deleteExpiredFreeUsage, scheduleFreeUsageRetention, type UsageTotals } from './usage-queries.js';
export { OrgProviderKeys, PROVIDER_KEYS_CHANNEL } from './provider-keys.js';
export { ModelResolver, CUSTOM_ENDPOINTS_CHANNEL } from './model-resolver.js';
export { OrgCustomEndpoints } from './custom-endpoints-store.js';
export { FreeModelLimits } from './free-limits.js';
export { Upstream, UpstreamError } from './upstream.js';
export { checkCustomEndpoint, type EndpointCheck } from './custom-endpoints.js';
export { unguardedAdmission } from './unguarded-admission.js';

export interface ModelServiceOptions {
  config: ModelsConfig;
  db: Db;
  state: HotState;
  aead: Aead;
  admission: Admission;
  metrics: Registry;
  clock: Clock;
  logger: Logger;
  /** Directory secret files are relative to (the config file's directory). */
  baseDir?: string;
  env?: NodeJS.ProcessEnv;
  /** DNS for every outbound check, at write time and at connect time (tests inject answers). */
  resolver?: Resolver;
}

export interface ModelService {
  gateway: ModelGateway;
  orgKeys: OrgProviderKeys;
  customEndpoints: OrgCustomEndpoints;
  resolver: ModelResolver;
  usage: UsageRecorder;
  /** What org custom endpoints may reach (`models.egress`), with the DNS the checks use. */
  egress: ModelsConfig['egress'] & { resolver?: Resolver };
  /** Flushes usage rows, stops the retention job and the cache subscriptions, closes upstream connections. */
  close(): Promise<void>;
}

/** Builds the service and subscribes its caches to invalidations, so it is coherent with other replicas before it serves. */
export async function createModelService(options: ModelServiceOptions): Promise<ModelService> {
  const { config } = options;
  const catalogue = new ModelCatalogue(config, { ...(options.baseDir === undefined ? {} : { baseDir: options.baseDir }), ...(options.env === undefined ? {} : { env: options.env }) });
  const dns = options.resolver === undefined ? {} : { resolver: options.resolver };
  // Operator-configured provider hosts may be internal (a local vLLM); org custom endpoints get
  // only what `models.egress` allows, on their own agent.
  const upstream = new Upstream({
    allow: { loopback: config.egress.allowLoopback, private: config.egress.allowPrivate, hosts: catalogue.trustedHosts() },
    org: { allow: { loopback: config.egress.allowLoopback, private: config.egress.allowPrivate }, plainHttpHosts: config.egress.allowHttpHosts },
    ...dns,
  });
  const usage = new UsageRecorder({ db: options.db, logger: options.logger, flushIntervalMs: config.usage.flushIntervalMs, batchSize: config.usage.batchSize });
  const caches = { pubsub: options.state, clock: options.clock, logger: options.logger };
  const orgKeys = new OrgProviderKeys({ db: options.db, aead: options.aead, providers: catalogue.providers().map((provider) => provider.id), ...caches });
  const customEndpoints = new OrgCustomEndpoints(options.db, options.aead, options.clock);
  const models = new ModelResolver({ catalogue, endpoints: customEndpoints, ...caches });
  await orgKeys.start();
  await models.start();
  const gateway = new ModelGateway({
    catalogue,
    resolver: models,
    upstream,
    admission: options.admission,
    usage,
    freeLimits: new FreeModelLimits(options.state, options.clock, config.freeModels),
    metrics: new ModelMetrics(options.metrics),
    clock: options.clock,
    orgKeys,
    maxAttempts: config.maxAttempts,
  });
  const stopRetention = scheduleFreeUsageRetention({ db: options.db, clock: options.clock, logger: options.logger, retentionDays: config.freeModels.retentionDays });
  return {
    gateway,
    orgKeys,
    customEndpoints,
    resolver: models,
    usage,
    egress: { ...config.egress, ...dns },
    close: async () => {
      stopRetention();
      await usage.close();
      await Promise.all([orgKeys.stop(), models.stop()]);
      await upstream.close();
    },
  };
}
