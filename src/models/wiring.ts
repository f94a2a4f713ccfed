/**
 * What the composition root calls: build the model service from config and register its routes,
 * returning one close() for shutdown (flushes usage rows, closes upstream connections). Keeps the
 * edit to src/main.ts to a few lines.
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
import { OrgCustomEndpoints } from './custom-endpoints-store.js';
import { createModelService } from './index.js';
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

export function wireModelGateway(wiring: ModelGatewayWiring): { close(): Promise<void> } {
  const service = createModelService({
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
  registerModelRoutes(wiring.app, wiring.registry, {
    gateway: service.gateway,
    authenticate: wiring.authenticate,
    db: wiring.db,
    orgKeys: service.orgKeys,
    ...(wiring.audit === undefined ? {} : { audit: wiring.audit }),
    ...(wiring.maxAudioBytes === undefined ? {} : { maxAudioBytes: wiring.maxAudioBytes }),
  });
  // Custom endpoints are https-only in production; loopback/private targets follow `models.egress`.
  registerCustomEndpointRoutes(wiring.app, wiring.registry, {
    db: wiring.db,
    endpoints: new OrgCustomEndpoints(wiring.db, wiring.aead, wiring.clock),
    egress: { allowLoopback: wiring.config.egress.allowLoopback, allowPrivate: wiring.config.egress.allowPrivate },
    ...(wiring.audit === undefined ? {} : { audit: wiring.audit }),
  });
  return { close: () => service.close() };
}
