/**
 * Admission control: the public surface and the one factory the composition root calls.
 *
 *   const breakers = createStoreBreakers({ settings, clock });   // before anything reads a store
 *   const admission = createAdmission({ config: config.admission, state, db, audit, metrics, storeBreakers: breakers, ... });
 *   await admission.start();                         // live config loaded, breakers listening, replica heartbeat running
 *   admission.pipeline.admit(request)                // handlers of guarded routes (models/, tasks/)
 *   admission.registerRoutes(app, registry, inOrg)   // GET/PUT /api/admission, /api/orgs/:orgId/admission + guard hook
 *   await admission.stop();
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { AuditSink } from '../audit/sink.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { RouteRegistry } from '../http/route.js';
import type { Principal } from '../identity/principal.js';
import type { Db } from '../store/db/schema.js';
import type { HotState } from '../store/state/port.js';
import type { StoreBreakers } from './breakers/store-breakers.js';
import { parseAdmissionConfig, type AdmissionConfig } from './config.js';
import { CircuitBreakers } from './gates/circuit.js';
import { InFlightSlots } from './gates/slots.js';
import { LiveAdmissionConfig } from './live-config.js';
import { createPipeline, type Pipeline } from './pipeline.js';
import { createReplicaTracker, type ReplicaTracker } from './replicas.js';
import { registerAdmissionGuardHook } from './guard-hook.js';
import { registerAdmissionRoutes } from './routes.js';
import type { EconomicsGate, WorkerCapacity } from './types.js';

export type * from './types.js';
export { parseAdmissionConfig, admissionConfigSchema, orgOverridesSchema, type AdmissionConfig, type CircuitSettings, type OrgOverrides, type TypeLimit } from './config.js';
export { platformOverridesSchema, type PlatformOverrides } from './platform-config.js';
export { createPipeline, type Pipeline, type PipelineDeps } from './pipeline.js';
export { LiveAdmissionConfig, ADMISSION_CONFIG_CHANNEL } from './live-config.js';
export { createRoutePolicy, createLiveRoutePolicy, type RoutePolicy } from './route-policy.js';
export { sendRefusal, refusalToError, applyAdmissionHeaders } from './refusal-http.js';
export { registerAdmissionRoutes } from './routes.js';
export { registerAdmissionGuardHook } from './guard-hook.js';
export { createStoreBreakers, type StoreBreakers } from './breakers/store-breakers.js';
export { LocalBreaker } from './breakers/local-breaker.js';

export interface CreateAdmissionOptions {
  /** The `admission` section of the config file (validated here unless already parsed; errors name the key). */
  config: unknown;
  /** The hot state as admission should use it (the composition root passes it behind the store breaker). */
  state: HotState;
  db?: Db;
  audit?: AuditSink;
  metrics?: Registry;
  economics?: EconomicsGate;
  workerCapacity?: WorkerCapacity;
  /** The stores' breakers; their settings follow the live config from here on. */
  storeBreakers?: StoreBreakers;
  clock?: Clock;
  logger?: Logger;
}

export interface AdmissionService {
  readonly config: AdmissionConfig;
  readonly pipeline: Pipeline;
  readonly live: LiveAdmissionConfig;
  readonly replicas: ReplicaTracker;
  registerRoutes(app: FastifyInstance, registry: RouteRegistry, inOrg?: (principal: Principal, orgId: string) => Promise<Principal | null>): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createAdmission(options: CreateAdmissionOptions): AdmissionService {
  const config = parseAdmissionConfig(options.config);
  const clock = options.clock ?? systemClock;
  const optional = <K extends keyof CreateAdmissionOptions>(key: K) => (options[key] === undefined ? {} : { [key]: options[key] });
  const live = new LiveAdmissionConfig({ base: config, state: options.state, ...optional('db'), ...optional('audit'), ...optional('logger') });
  options.storeBreakers?.follow(() => live.config().storeCircuit);
  const slots = new InFlightSlots();
  const replicas = createReplicaTracker({
    state: options.state,
    ownInFlight: () => slots.held,
    beforeBeat: () => slots.sweep(clock.now()),
    ...optional('logger'),
  });
  const breakers = new CircuitBreakers({ state: options.state, config: live.config, clock, ...optional('logger') });
  const pipeline = createPipeline({
    state: options.state,
    config: live.config,
    limits: live.limits,
    slots,
    load: replicas,
    breakers,
    clock,
    ...optional('economics'),
    ...optional('workerCapacity'),
    ...optional('audit'),
    ...optional('metrics'),
    ...optional('logger'),
  });
  return {
    config,
    pipeline,
    live,
    replicas,
    registerRoutes(app, registry, inOrg) {
      registerAdmissionRoutes(app, registry, { live, ...(inOrg === undefined ? {} : { inOrg }), ...optional('audit') });
      // Routes listed under admission.routes.guard are admitted by a hook before their handler.
      registerAdmissionGuardHook(app, pipeline);
    },
    async start() {
      await live.start();
      await breakers.start();
      // A store that is down at start must not stop the gateway: the count defaults to 1 and the
      // heartbeat keeps trying.
      await replicas.beat().catch((error: unknown) => options.logger?.warn({ err: error }, 'admission replica heartbeat failed'));
      replicas.start();
    },
    async stop() {
      replicas.stop();
      await breakers.stop();
      await live.stop();
    },
  };
}
