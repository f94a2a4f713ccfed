/**
 * Admission control: the public surface and the one factory the composition root calls.
 *
 *   const admission = createAdmission({ config: config.admission, state, db, audit, metrics, ... });
 *   await admission.start();                         // live config loaded, replica heartbeat running
 *   admission.pipeline.admit(request)                // handlers of guarded routes (models/, tasks/)
 *   admission.registerRoutes(app, registry, inOrg)   // GET/PUT /api/orgs/:orgId/admission + guard hook
 *   await admission.stop();
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { AuditSink } from '../audit/sink.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { RouteRegistry } from '../http/route.js';
import type { Principal } from '../identity/principal.js';
import type { Db } from '../store/db/schema.js';
import type { HotState } from '../store/state/port.js';
import { parseAdmissionConfig, type AdmissionConfig } from './config.js';
import { LiveAdmissionConfig } from './live-config.js';
import { createPipeline, type Pipeline } from './pipeline.js';
import { createReplicaTracker, type ReplicaTracker } from './replicas.js';
import { registerAdmissionGuardHook } from './guard-hook.js';
import { registerAdmissionRoutes } from './routes.js';
import type { EconomicsGate, WorkerCapacity } from './types.js';

export type * from './types.js';
export { parseAdmissionConfig, admissionConfigSchema, orgOverridesSchema, type AdmissionConfig, type OrgOverrides, type TypeLimit } from './config.js';
export { createPipeline, type Pipeline, type PipelineDeps } from './pipeline.js';
export { LiveAdmissionConfig, ADMISSION_CONFIG_CHANNEL } from './live-config.js';
export { createRoutePolicy, type RoutePolicy } from './route-policy.js';
export { sendRefusal, refusalToError, applyAdmissionHeaders } from './refusal-http.js';
export { registerAdmissionRoutes } from './routes.js';
export { registerAdmissionGuardHook } from './guard-hook.js';

export interface CreateAdmissionOptions {
  /** The raw `admission` section of the config file (validated here; errors name the key). */
  config: unknown;
  state: HotState;
  db?: Db;
  audit?: AuditSink;
  metrics?: Registry;
  economics?: EconomicsGate;
  workerCapacity?: WorkerCapacity;
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
  const optional = <K extends keyof CreateAdmissionOptions>(key: K) => (options[key] === undefined ? {} : { [key]: options[key] });
  const live = new LiveAdmissionConfig({ base: config, state: options.state, ...optional('db'), ...optional('audit'), ...optional('logger') });
  const replicas = createReplicaTracker({ state: options.state, ...optional('logger') });
  const pipeline = createPipeline({
    state: options.state,
    config: live.config,
    limits: live.limits,
    liveReplicas: () => replicas.count(),
    ...optional('economics'),
    ...optional('workerCapacity'),
    ...optional('audit'),
    ...optional('metrics'),
    ...optional('clock'),
    ...optional('logger'),
  });
  return {
    config,
    pipeline,
    live,
    replicas,
    registerRoutes(app, registry, inOrg) {
      registerAdmissionRoutes(app, registry, { live, ...(inOrg === undefined ? {} : { inOrg }) });
      // Routes listed under admission.routes.guard are admitted by a hook before their handler.
      registerAdmissionGuardHook(app, pipeline);
    },
    async start() {
      await live.start();
      // A store that is down at start must not stop the gateway: the count defaults to 1 and the
      // heartbeat keeps trying.
      await replicas.beat().catch((error: unknown) => options.logger?.warn({ err: error }, 'admission replica heartbeat failed'));
      replicas.start();
    },
    async stop() {
      replicas.stop();
      await live.stop();
    },
  };
}
