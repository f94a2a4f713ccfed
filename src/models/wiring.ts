/**
 * What the composition root calls: build the model service from config and register its routes,
 * returning one close() for shutdown (flushes usage rows, closes upstream connections). Keeps the
 * edit to src/main.ts to a few lines. `registerModelServiceRoutes` is the one place that decides
 * which routes a model service serves, for the composition root and the test rigs alike.
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Admission } from '../admission/types.js';
import type { AuditSink } from '../audit/sink.js';
import type { Aead } from '../core/aead.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Authenticate } from '../http/app.js';
import type { RouteRegistry } from '../http/route.js';
import type { Db } from '../store/db/index.js';
import type { HotState } from '../store/state/index.js';
import type { ModelsConfig } from './config.js';
import { registerCustomEndpointRoutes } from './custom-endpoint-routes.js';
import { createModelService, type ModelService } from './index.js';
import { registerModelRoutes } from './routes.js';

export interface ModelGatewayWiring {
  config: ModelsConfig;
  app: FastifyInstance;
  registry: RouteRegistry;
  db: Db;
  state: HotState;
  aead: Aead;
  admission: Admission;
  authenticate: Authenticate;
  audit?: AuditSink;
  metrics: Registry;
  clock: Clock;
  logger: Logger;
  /** The config file's directory, for provider keys given as files. */
  baseDir: string;
  /** Largest transcription upload; defaults to 25 MiB. */
  maxAudioBytes?: number;
}

export interface ModelServiceRoutesDeps {
  db: Db;
  authenticate: Authenticate;
  audit?: AuditSink;
  maxAudioBytes?: number;
}

/** The `/v1` model routes, usage and provider-key admin routes, and the org custom endpoint routes. */
export function registerModelServiceRoutes(app: FastifyInstance, registry: RouteRegistry, service: ModelService, deps: ModelServiceRoutesDeps): void {
  const audit = deps.audit === undefined ? {} : { audit: deps.audit };
  registerModelRoutes(app, registry, {
    gateway: service.gateway,
    authenticate: deps.authenticate,
    db: deps.db,
    orgKeys: service.orgKeys,
    ...(deps.maxAudioBytes === undefined ? {} : { maxAudioBytes: deps.maxAudioBytes }),
    ...audit,
  });
  // Loopback/private targets and plain http follow `models.egress`; https only otherwise.
  registerCustomEndpointRoutes(app, registry, { db: deps.db, endpoints: service.customEndpoints, models: service.resolver, egress: service.egress, ...audit });
}

export async function wireModelGateway(wiring: ModelGatewayWiring): Promise<{ close(): Promise<void> }> {
  const service = await createModelService({
    config: wiring.config,
    db: wiring.db,
    state: wiring.state,
    aead: wiring.aead,
    admission: wiring.admission,
    metrics: wiring.metrics,
    clock: wiring.clock,
    logger: wiring.logger,
    baseDir: wiring.baseDir,
  });
  registerModelServiceRoutes(wiring.app, wiring.registry, service, {
    db: wiring.db,
    authenticate: wiring.authenticate,
    ...(wiring.audit === undefined ? {} : { audit: wiring.audit }),
    ...(wiring.maxAudioBytes === undefined ? {} : { maxAudioBytes: wiring.maxAudioBytes }),
  });
  return { close: () => service.close() };
}
