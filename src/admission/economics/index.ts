/**
 * Economics (admission part 5): budgets per org, user and key, reserved before a call and settled
 * after it. `createEconomics` builds the whole module for the composition root; the pipeline only
 * sees the `EconomicsGate` it returns.
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { AuditSink } from '../../audit/sink.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { RouteRegistry } from '../../http/route.js';
import type { Db } from '../../store/db/schema.js';
import type { HotState } from '../../store/state/port.js';
import { BudgetCache } from './budget-cache.js';
import type { DefaultBudgets } from './definitions.js';
import { Economics } from './economics-gate.js';
import { EconomicsMetrics } from './metrics.js';
import { BudgetReconciler } from './reconciler.js';
import { registerBudgetRoutes } from './routes.js';

export { BudgetCache, BUDGETS_CHANNEL } from './budget-cache.js';
export { parseDefaultBudgets } from './config.js';
export {
  budgetScope,
  lineKey,
  resolveLines,
  NO_DEFAULTS,
  type BudgetDefinition,
  type BudgetRule,
  type DefaultBudgets,
  type Metric,
  type ResolvedLine,
  type SubjectKind,
} from './definitions.js';
export { Economics, costEstimate, DEFAULT_RESERVATION_TTL_MS, type BudgetRules, type EconomicsOptions } from './economics-gate.js';
export { EconomicsMetrics } from './metrics.js';
export { actualCost, estimateCost, formatMoney, parseMoney, tokenCost, MICROS_PER_UNIT, type ModelPrice } from './money.js';
export { periodWindow, type Period } from './periods.js';
export { BudgetReconciler, ScopeTracker } from './reconciler.js';
export { registerBudgetRoutes, type BudgetRouteDeps } from './routes.js';

export interface CreateEconomicsOptions {
  db: Db;
  state: HotState;
  audit: AuditSink;
  clock: Clock;
  defaults: DefaultBudgets;
  allowUnpriced: boolean;
  reservationTtlMs: number;
  reconcileIntervalMs: number;
  refreshMs: number;
  metrics?: Registry;
  logger?: Logger;
}

export interface EconomicsModule {
  gate: Economics;
  cache: BudgetCache;
  reconciler: BudgetReconciler;
  registerRoutes(app: FastifyInstance, registry: RouteRegistry): void;
  /** Loads every budget (before the first request) and starts the cache refresh and the reconciler. */
  start(): Promise<void>;
  /** Stops the timers and the subscription. */
  stop(): Promise<void>;
}

export function createEconomics(options: CreateEconomicsOptions): EconomicsModule {
  const logger = options.logger;
  const cache = new BudgetCache({ db: options.db, pubsub: options.state, refreshMs: options.refreshMs, ...(logger === undefined ? {} : { logger }) });
  const metrics = new EconomicsMetrics(options.metrics);
  const gate = new Economics({
    state: options.state,
    rules: cache,
    defaults: options.defaults,
    clock: options.clock,
    audit: options.audit,
    metrics,
    allowUnpriced: options.allowUnpriced,
    reservationTtlMs: options.reservationTtlMs,
    ...(logger === undefined ? {} : { logger }),
  });
  const reconciler = new BudgetReconciler({
    state: options.state,
    tracker: gate.tracker,
    clock: options.clock,
    reservationTtlMs: options.reservationTtlMs,
    onReaped: (count) => metrics.reaped.inc(count),
    ...(logger === undefined ? {} : { logger }),
  });
  return {
    gate,
    cache,
    reconciler,
    registerRoutes: (app, registry) =>
      registerBudgetRoutes(app, registry, { db: options.db, state: options.state, cache, defaults: options.defaults, audit: options.audit, clock: options.clock }),
    async start() {
      await cache.start();
      reconciler.start(options.reconcileIntervalMs);
    },
    async stop() {
      await reconciler.stop();
      await cache.stop();
    },
  };
}
