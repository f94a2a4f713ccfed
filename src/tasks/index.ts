/**
 * Agent tasks: atomic enqueue, finish and requeue, each with its lifecycle event; task records,
 * the worker registry and leases, the requeue job and the outbox relay into the audit log.
 * `createTasks` builds the parts the composition root needs; `workerCapacity` is what
 * backpressure divides queued load by.
 */
import type { FastifyInstance } from 'fastify';
import type { Admission } from '../admission/types.js';
import type { AuditEventInput, AuditSink } from '../audit/index.js';
import type { Logger } from '../core/logger.js';
import type { RouteRegistry } from '../http/route.js';
import type { Principal } from '../identity/principal.js';
import type { Db } from '../store/db/schema.js';
import type { HotState } from '../store/state/index.js';
import { TaskRecords } from './records.js';
import { OutboxRelay, auditRelaySink, type RelaySink } from './relay.js';
import { startRequeueJob } from './requeue-job.js';
import { registerTaskRoutes } from './routes.js';
import { TaskService } from './task-service.js';
import { WorkerRegistry } from './workers.js';

export { TASK_QUEUE, TaskRecords, type TaskRecord, type TaskStatus, type QueuedTask } from './records.js';
export { WorkerRegistry, type WorkerRecord, type WorkerRegistryOptions } from './workers.js';
export { TaskService, auditActor, type SubmitRequest, type SubmitResult, type ClaimedTask, type FinishOutcome, type FinishContext } from './task-service.js';
export { OutboxRelay, auditRelaySink, type RelaySink, type RelayRun } from './relay.js';
export { TASK_AUDIT_ACTION, TASK_FINISH_AUDIT_ACTION, TASK_REQUEUE_AUDIT_ACTION, type TaskEvent } from './events.js';
export { registerTaskRoutes, isWorkerPrincipal, TASK_INGRESS_ROUTE, type TaskRouteDeps } from './routes.js';
export { startRequeueJob } from './requeue-job.js';

export interface TaskSettings {
  /** A worker counts as healthy while its last heartbeat is at most this old (default 15 s). */
  healthyMs: number;
  /** Lease of a claimed task, renewed by heartbeats (default 30 s). */
  leaseMs: number;
  /** How often the requeue job runs (default 1 s). */
  requeueIntervalMs: number;
  /** How often the relay polls the outbox (default 500 ms). */
  relayIntervalMs: number;
  /** How long task records stay queryable (default 7 days). */
  recordTtlMs: number;
  /** Backpressure hard limit: most queued + in-flight tasks per unit of healthy capacity, in percent (default 95). */
  hardLimitPercent: number;
}

export const DEFAULT_TASK_SETTINGS: TaskSettings = {
  healthyMs: 15_000,
  leaseMs: 30_000,
  requeueIntervalMs: 1000,
  relayIntervalMs: 500,
  recordTtlMs: 7 * 24 * 60 * 60 * 1000,
  hardLimitPercent: 95,
};

export interface CreateTasksOptions {
  state: HotState;
  /** The record store and audit log the relay writes to; or give `relaySink` directly. */
  db?: Db;
  audit?: AuditSink & { append(event: AuditEventInput): Promise<unknown> };
  relaySink?: RelaySink;
  settings?: Partial<TaskSettings>;
  logger?: Logger;
  /** Overrides the enqueue gate's limit (default: floor(capacity × hardLimitPercent / 100)). */
  maxLoad?: (capacity: number) => number;
  capacityCacheMs?: number;
}

export interface Tasks {
  workers: WorkerRegistry;
  records: TaskRecords;
  service: TaskService;
  relay: OutboxRelay | undefined;
  /** Sum of healthy workers' declared capacity (for the backpressure gate). */
  workerCapacity(): Promise<number>;
  registerRoutes(
    app: FastifyInstance,
    registry: RouteRegistry,
    options?: { admission?: Admission; resolveInOrg?: (principal: Principal, orgId: string) => Promise<Principal | null> },
  ): void;
  /** Starts the requeue job and the relay. */
  start(): void;
  /** Stops both; the relay makes a last pass so accepted events reach the audit log. */
  stop(): Promise<void>;
}

export function createTasks(options: CreateTasksOptions): Tasks {
  const settings: TaskSettings = { ...DEFAULT_TASK_SETTINGS, ...options.settings };
  const workers = new WorkerRegistry({
    state: options.state,
    healthyMs: settings.healthyMs,
    leaseMs: settings.leaseMs,
    ...(options.capacityCacheMs === undefined ? {} : { capacityCacheMs: options.capacityCacheMs }),
  });
  const records = new TaskRecords(options.state, settings.recordTtlMs);
  const service = new TaskService({
    state: options.state,
    workers,
    records,
    maxLoad: options.maxLoad ?? ((capacity) => Math.floor((capacity * settings.hardLimitPercent) / 100)),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  const sink = options.relaySink ?? (options.db !== undefined && options.audit !== undefined ? auditRelaySink(options.db, options.audit) : undefined);
  const relay =
    sink === undefined
      ? undefined
      : new OutboxRelay({ state: options.state, sink, records, intervalMs: settings.relayIntervalMs, ...(options.logger === undefined ? {} : { logger: options.logger }) });
  let stopRequeue: (() => Promise<void>) | undefined;

  return {
    workers,
    records,
    service,
    relay,
    workerCapacity: () => workers.workerCapacity(),
    registerRoutes(app, registry, routeOptions = {}) {
      registerTaskRoutes(app, registry, {
        service,
        workers,
        heartbeatIntervalMs: Math.max(1000, Math.floor(settings.healthyMs / 3)),
        ...(routeOptions.admission === undefined ? {} : { admission: routeOptions.admission }),
        ...(routeOptions.resolveInOrg === undefined ? {} : { resolveInOrg: routeOptions.resolveInOrg }),
        ...(options.audit === undefined ? {} : { audit: options.audit }),
        ...(options.logger === undefined ? {} : { logger: options.logger }),
      });
    },
    start() {
      stopRequeue ??= startRequeueJob({
        service,
        workers,
        intervalMs: settings.requeueIntervalMs,
        ...(options.logger === undefined ? {} : { logger: options.logger }),
      });
      relay?.start();
    },
    async stop() {
      await stopRequeue?.();
      stopRequeue = undefined;
      await relay?.stop({ drain: true });
    },
  };
}
