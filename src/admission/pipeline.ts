/**
 * The admission pipeline: session → rate limit → backpressure → circuit → economics → slot/enqueue.
 * Gates are built once from config; each answers pass or a `Refusal` value. A refusal stops the
 * request and undoes what earlier gates took (economics reservation), so a refused request costs
 * nothing downstream. An admitted request gets a ticket whose `settle` runs exactly once, whatever
 * the ending: economics settle, slot release, breaker report — each step independent, so one
 * failing step never skips the others.
 *
 * Hot-state store unreachable at any gate → 503 `dependency_unavailable` (fail closed), with
 * anything already taken given back best-effort (reservations also expire on their own).
 */
import type { Registry } from 'prom-client';
import type { AuditSink } from '../audit/sink.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { can } from '../identity/tenancy/permissions.js';
import type { Principal } from '../identity/principal.js';
import { isHotStateUnavailable } from '../store/state/errors.js';
import type { HotState } from '../store/state/port.js';
import type { AdmissionConfig } from './config.js';
import { createBackpressureGate, createSlotGate, capacityFor, hardCap } from './gates/backpressure.js';
import { createCircuitBreakers, type CircuitBreakers } from './gates/circuit.js';
import { createRateLimitGate, type LimitResolver } from './gates/rate-limit.js';
import { createAdmissionMetrics, type AdmissionMetrics } from './metrics.js';
import { createRoutePolicy, type RoutePolicy } from './route-policy.js';
import type {
  Admission,
  AdmissionRequest,
  AdmissionResult,
  AdmissionTicket,
  EconomicsGate,
  GateName,
  Refusal,
  SettleOutcome,
  WorkerCapacity,
} from './types.js';

export interface PipelineDeps {
  state: HotState;
  /** Current (live) admission config; read per request so live changes apply at once. */
  config: () => AdmissionConfig;
  /** Rate limit of a principal, with org and key overrides applied (live-config.ts). */
  limits: LimitResolver;
  economics?: EconomicsGate;
  workerCapacity?: WorkerCapacity;
  /** Live replica count for synchronous capacity (replicas.ts); 1 when omitted. */
  liveReplicas?: () => number;
  audit?: AuditSink;
  metrics?: Registry;
  clock?: Clock;
  logger?: Logger;
}

export interface Pipeline extends Admission {
  readonly routes: RoutePolicy;
  readonly breakers: CircuitBreakers;
}

function unavailable(gate: GateName): Refusal {
  return { gate, code: 'dependency_unavailable', status: 503, message: 'the hot-state store is unreachable', retryAfterSeconds: 1 };
}

function actorOf(principal: Principal): string {
  if (principal.kind === 'anonymous') return principal.id;
  if (principal.keyId !== undefined) return `key:${principal.keyId}`;
  return principal.userId ?? principal.id;
}

/** How an ending counts for the breaker: the client going away says nothing about the dependency. */
function breakerOutcome(outcome: SettleOutcome): 'success' | 'failure' | null {
  if (outcome.kind === 'success') return 'success';
  if (outcome.kind === 'upstream_failure') return 'failure';
  if (outcome.reason === 'timeout') return 'failure';
  return outcome.reason === 'no_usage' ? 'success' : null;
}

export function createPipeline(deps: PipelineDeps): Pipeline {
  const clock = deps.clock ?? systemClock;
  const liveReplicas = deps.liveReplicas ?? (() => 1);
  const capacityDeps = {
    state: deps.state,
    config: deps.config,
    liveReplicas,
    ...(deps.workerCapacity === undefined ? {} : { workerCapacity: deps.workerCapacity }),
  };
  const rateLimit = createRateLimitGate({ state: deps.state, limits: deps.limits });
  const backpressure = createBackpressureGate(capacityDeps);
  const slot = createSlotGate({ ...capacityDeps, now: () => clock.now() });
  const breakers = createCircuitBreakers({ state: deps.state, config: deps.config });
  const metrics: AdmissionMetrics | undefined = deps.metrics === undefined ? undefined : createAdmissionMetrics(deps.metrics);
  // Route patterns are fixed at start (validated at load); limits and thresholds are live.
  const routes = createRoutePolicy(deps.config().routes);

  const pass = (gate: GateName, principal: Principal): void => {
    metrics?.decisions.inc({ gate, user_type: principal.userType, result: 'pass' });
  };

  function recordRefusal(request: AdmissionRequest, refusal: Refusal): void {
    metrics?.decisions.inc({ gate: refusal.gate, user_type: request.principal.userType, result: 'refuse' });
    if (deps.audit === undefined) return;
    const details: Record<string, string | number | boolean | null> = {
      gate: refusal.gate,
      code: refusal.code,
      route: request.route,
      requestId: request.requestId,
      principal: request.principal.id,
      userType: request.principal.userType,
    };
    for (const [name, value] of Object.entries(refusal.limit ?? {})) details[`limit.${name}`] = value;
    // Off the hot path: the audit log buffers; a failure to record is logged, never thrown at the caller.
    deps.audit
      .record({ actor: actorOf(request.principal), orgId: request.principal.orgId, action: 'admission.refused', target: request.route, outcome: 'denied', details })
      .catch((error: unknown) => deps.logger?.error({ err: error }, 'admission decision event not recorded'));
  }

  function sessionGate(request: AdmissionRequest): Refusal | null {
    const { principal } = request;
    if (principal.kind === 'anonymous') {
      return request.allowAnonymous === false ? { gate: 'session', code: 'unauthenticated', status: 401, message: 'authentication is required for this route' } : null;
    }
    if (request.permission !== undefined && !can(principal, request.permission, principal.orgId)) {
      return { gate: 'session', code: 'forbidden', status: 403, message: 'the credential does not allow this route' };
    }
    return null;
  }

  async function admit(request: AdmissionRequest): Promise<AdmissionResult> {
    const started = performance.now();
    const headers: Record<string, string> = {};
    let gate: GateName = 'session';
    let settleEconomics: ((outcome: SettleOutcome) => Promise<void>) | undefined;
    const refuse = (refusal: Refusal): AdmissionResult => {
      recordRefusal(request, refusal);
      metrics?.latency.observe({ result: 'refuse' }, (performance.now() - started) / 1000);
      return { ok: false, refusal, headers };
    };
    const undo = async (): Promise<void> => {
      if (settleEconomics === undefined) return;
      await settleEconomics({ kind: 'upstream_failure', reason: 'error' }).catch((error: unknown) =>
        deps.logger?.warn({ err: error, requestId: request.requestId }, 'economics release after refusal failed; the reservation will expire'),
      );
    };

    try {
      const denied = sessionGate(request);
      if (denied !== null) return refuse(denied);
      pass('session', request.principal);
      // Task work is never throttle-exempt, whatever route it came through.
      const bypass = routes.classify(request.route) === 'bypass' && request.kind !== 'task';

      if (!bypass) {
        gate = 'rate_limit';
        const limited = await rateLimit(request.principal);
        Object.assign(headers, limited.headers);
        if (!limited.ok) return refuse(limited.refusal);
        pass('rate_limit', request.principal);

        gate = 'backpressure';
        const overloaded = await backpressure(request);
        if (overloaded !== null) return refuse(overloaded);
        pass('backpressure', request.principal);
      }

      let probe: string | null = null;
      if (request.dependency !== undefined) {
        gate = 'circuit';
        const circuit = await breakers.check(request.dependency);
        if (!circuit.ok) return refuse(circuit.refusal);
        probe = circuit.probe;
        pass('circuit', request.principal);
      }

      if (deps.economics !== undefined) {
        gate = 'economics';
        const reservation = await deps.economics.reserve(request);
        if (!reservation.ok) return refuse(reservation.refusal);
        settleEconomics = (outcome) => reservation.settle(outcome);
        pass('economics', request.principal);
      }

      gate = 'enqueue';
      let enqueueMaxLoad: number | undefined;
      if (request.kind === 'sync') {
        const full = await slot.take(request);
        if (full !== null) {
          await undo();
          return refuse(full);
        }
      } else {
        enqueueMaxLoad = hardCap(await capacityFor('task', capacityDeps), deps.config());
      }
      pass('enqueue', request.principal);

      const ticket = createTicket(request, probe, settleEconomics);
      metrics?.latency.observe({ result: 'admit' }, (performance.now() - started) / 1000);
      return { ok: true, ticket, headers, ...(enqueueMaxLoad === undefined ? {} : { enqueueMaxLoad }) };
    } catch (error) {
      await undo();
      if (isHotStateUnavailable(error)) return refuse(unavailable(gate));
      throw error;
    }
  }

  function createTicket(request: AdmissionRequest, probe: string | null, settleEconomics: ((outcome: SettleOutcome) => Promise<void>) | undefined): AdmissionTicket {
    let settling: Promise<void> | undefined;
    const steps = async (outcome: SettleOutcome): Promise<void> => {
      metrics?.settlements.inc({ outcome: outcome.kind });
      const failures: unknown[] = [];
      const step = async (what: string, run: () => Promise<void>): Promise<void> => {
        try {
          await run();
        } catch (error) {
          failures.push(error);
          deps.logger?.warn({ err: error, requestId: request.requestId, step: what }, 'admission settlement step failed');
        }
      };
      if (settleEconomics !== undefined) await step('economics', () => settleEconomics(outcome));
      if (request.kind === 'sync') await step('slot', () => slot.release(request.requestId));
      const verdict = breakerOutcome(outcome);
      const dependency = request.dependency;
      if (dependency !== undefined && verdict !== null) await step('circuit', () => breakers.report(dependency, probe, verdict));
    };
    return {
      requestId: request.requestId,
      get settled() {
        return settling !== undefined;
      },
      // The first call wins; later calls (e.g. a disconnect racing the end of a stream) await the same settlement.
      settle(outcome) {
        settling ??= steps(outcome);
        return settling;
      },
    };
  }

  return { admit, routes, breakers };
}
