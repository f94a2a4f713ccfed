/**
 * The sandbox credential broker's HTTP side, assembled: revocation list, broker, service routes,
 * egress proxy and the model-gateway hook. The composition root builds it only when the
 * `capabilities:` section is configured.
 */
import type { FastifyInstance } from 'fastify';
import type { AuditSink } from '../../audit/sink.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { RouteRegistry } from '../../http/route.js';
import type { Db } from '../../store/db/schema.js';
import type { HotState } from '../../store/state/port.js';
import type { Resolver } from '../../egress/index.js';
import { CapabilityBroker } from './broker.js';
import type { CapabilityRuntimeConfig } from './config.js';
import { createEgressProxy } from './egress-proxy.js';
import { capabilityPrincipalResolver, type CapabilityPrincipalResolver } from './model-auth.js';
import { CapabilityRevocations } from './revocations.js';
import { registerCapabilityRoutes } from './routes.js';

export { capabilitiesConfigSchema, resolveCapabilityConfig, TrustedHops, type CapabilitiesConfig, type CapabilityRuntimeConfig } from './config.js';
export { CapabilityBroker, issueBodySchema, revokeBodySchema, type IssueInput, type RevokeInput, type IssuedCapability, type ModelUseResult } from './broker.js';
export { CapabilityRevocations, REVOCATION_CHANNEL, revocationSubject, type RevocationKind, type RevocationTarget } from './revocations.js';
export { capabilityPrincipalResolver, looksLikeCapability, type CapabilityAuthContext, type CapabilityAuthResult, type CapabilityPrincipalResolver } from './model-auth.js';
export { CONTAINER_HEADER } from './presenter.js';

export interface CapabilityServiceDeps {
  config: CapabilityRuntimeConfig;
  db: Db;
  state: HotState;
  audit: AuditSink;
  clock: Clock;
  logger?: Logger;
  /** Tests inject DNS answers; production uses the system resolver. */
  resolver?: Resolver;
  /** Revocation heartbeat tuning (tests shorten these). */
  heartbeatMs?: number;
  deafAfterMs?: number;
  resyncMs?: number;
  redeemSampleEvery?: number;
  /** Largest request body the egress proxy forwards (default 32 MiB). */
  egressMaxBodyBytes?: number;
}

export interface CapabilityService {
  broker: CapabilityBroker;
  revocations: CapabilityRevocations;
  /** Plug into createAuthenticator({ capabilities }) so `/v1` accepts capabilities with a model grant. */
  capabilityPrincipal: CapabilityPrincipalResolver;
  start(): Promise<void>;
  register(app: FastifyInstance, registry: RouteRegistry): Promise<void>;
  close(): Promise<void>;
}

export function createCapabilityService(deps: CapabilityServiceDeps): CapabilityService {
  const revocations = new CapabilityRevocations({
    db: deps.db,
    state: deps.state,
    clock: deps.clock,
    ...(deps.logger === undefined ? {} : { logger: deps.logger }),
    // Any capability a revocation could concern has expired by then (lifetime + skew).
    retainMs: deps.config.keyring.maxLifetimeMs + deps.config.keyring.skewMs,
    ...(deps.heartbeatMs === undefined ? {} : { heartbeatMs: deps.heartbeatMs }),
    ...(deps.deafAfterMs === undefined ? {} : { deafAfterMs: deps.deafAfterMs }),
    ...(deps.resyncMs === undefined ? {} : { resyncMs: deps.resyncMs }),
  });
  const broker = new CapabilityBroker({
    db: deps.db,
    audit: deps.audit,
    clock: deps.clock,
    config: deps.config,
    revocations,
    replay: deps.state,
    ...(deps.redeemSampleEvery === undefined ? {} : { redeemSampleEvery: deps.redeemSampleEvery }),
  });
  const proxy = createEgressProxy({
    broker,
    ...(deps.resolver === undefined ? {} : { resolver: deps.resolver }),
    ...(deps.egressMaxBodyBytes === undefined ? {} : { maxBodyBytes: deps.egressMaxBodyBytes }),
  });
  return {
    broker,
    revocations,
    capabilityPrincipal: capabilityPrincipalResolver(broker),
    start: () => revocations.start(),
    async register(app, registry) {
      registerCapabilityRoutes(app, registry, broker);
      await proxy.register(app);
    },
    async close() {
      await revocations.stop();
      await proxy.close();
    },
  };
}
