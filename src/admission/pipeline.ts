/**
 * The admission pipeline: session → rate limit → backpressure → circuit → economics → slot/enqueue.
 *
 * Gates that need no shared counter decide in-process first — session, backpressure (this replica's
 * exact in-flight count plus the others' from heartbeats), circuit (a local mirror of the shared
 * breaker), the economics plan (budget lines from its cache, an unpriced model), the in-flight slot
 * (this replica's exact counter). Then ONE atomic hot-state step (`HotState.admit`) checks the
 * rate-limit windows and every budget reservation of the request, and consumes or holds them only
 * if everything passed. An in-process refusal is handed to that step (`refusedAfter`), so the
 * answer keeps gate order — a caller over its rate limit hears `rate_limited` even when the
 * platform is also overloaded — and a refused request consumes nothing anywhere. A request that
 * needs no shared counter (a throttle-exempt route without budget lines) costs no round trip.
 *
 * An admitted request gets a ticket whose `settle` runs exactly once, whatever the ending: the
 * economics settlement (one round trip, none when nothing was reserved), the slot freed, the
 * breaker told (nothing on success; a failure is counted in the store) — each step independent,
 * so one failing step never skips the others.
 *
 * Hot-state store unreachable (or its breaker open) → 503 `dependency_unavailable` (fail closed),
 * with anything already taken given back.
 */
import type { Registry } from 'prom-client';
import type { AuditSink } from '../audit/sink.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { can } from '../identity/tenancy/permissions.js';
import type { Principal } from '../identity/principal.js';
import { isHotStateUnavailable, type HotStateUnavailable } from '../store/state/errors.js';
import type { AdmitRequest, AdmitResult, HotState, WindowSpec } from '../store/state/port.js';
import type { AdmissionConfig } from './config.js';
import { createBackpressureGate, hardCap, overloaded, replicaSlotCap, type SyncLoad } from './gates/backpressure.js';
import { CircuitBreakers } from './gates/circuit.js';
import { rateLimitHeaders, rateLimitRefusal, windowsFor, type LimitResolver } from './gates/rate-limit.js';
import { InFlightSlots, type SlotClaim } from './gates/slots.js';
import { createAdmissionMetrics, type AdmissionMetrics } from './metrics.js';
import { singleReplica } from './replicas.js';
import { createLiveRoutePolicy, type RoutePolicy } from './route-policy.js';
import { admissionScope } from './scope.js';
import type { Admission, AdmissionRequest, AdmissionResult, AdmissionTicket, EconomicsGate, EconomicsPlan, GateName, Refusal, SettleOutcome, WorkerCapacity } from './types.js';

export interface PipelineDeps {
  state: HotState;
  /** Current (live) admission config; read per request so live changes apply at once. */
  config: () => AdmissionConfig;
  /** Rate limit of a principal, with platform, org and key overrides applied (live-config.ts). */
  limits: LimitResolver;
  economics?: EconomicsGate;
  workerCapacity?: WorkerCapacity;
  /** This replica's in-flight slots; shared with the replica heartbeat (admission/index.ts). */
  slots?: InFlightSlots;
  /** Platform-wide synchronous load (replicas.ts); this replica alone when omitted. */
  load?: SyncLoad;
  /** Shared circuit breakers; built here when omitted. */
  breakers?: CircuitBreakers;
  audit?: AuditSink;
  metrics?: Registry;
  clock?: Clock;
  logger?: Logger;
}

export interface Pipeline extends Admission {
  readonly routes: RoutePolicy;
  readonly breakers: CircuitBreakers;
  readonly slots: InFlightSlots;
}

const GATE_ORDER: readonly GateName[] = ['session', 'rate_limit', 'backpressure', 'circuit', 'economics', 'enqueue'];

function unavailable(gate: GateName, error: HotStateUnavailable): Refusal {
  return {
    gate,
    code: 'dependency_unavailable',
    status: 503,
    message: 'the hot-state store is unreachable',
    retryAfterSeconds: error.retryAfterSeconds ?? 1,
  };
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

/** The settlement of a request that had nothing to give back to a store. */
const SETTLED: Promise<void> = Promise.resolve();

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

/** What the in-process gates decided before the one hot-state step. */
interface Prepared {
  windows: WindowSpec[] | undefined;
  /** The hot state failed during a gate that reads it (task load, a half-open probe): refuse at once. */
  failed: Refusal | null;
  /** The first refusal of a gate between the rate limit and the reservations. */
  early: Refusal | null;
  plan: Extract<EconomicsPlan, { ok: true }> | undefined;
  probe: string | null;
  slot: SlotClaim | undefined;
  /** The slot's refusal (after the reservations). */
  late: Refusal | null;
  enqueueMaxLoad: number | undefined;
}

export function createPipeline(deps: PipelineDeps): Pipeline {
  const clock = deps.clock ?? systemClock;
  const slots = deps.slots ?? new InFlightSlots();
  const load = deps.load ?? singleReplica(() => slots.held);
  const backpressure = createBackpressureGate({
    state: deps.state,
    config: deps.config,
    load,
    ...(deps.workerCapacity === undefined ? {} : { workerCapacity: deps.workerCapacity }),
  });
  const breakers = deps.breakers ?? new CircuitBreakers({ state: deps.state, config: deps.config, clock, ...(deps.logger === undefined ? {} : { logger: deps.logger }) });
  const metrics: AdmissionMetrics | undefined = deps.metrics === undefined ? undefined : createAdmissionMetrics(deps.metrics);
  // Consulted per request: a live change of the patterns applies to routes already registered.
  const routes = createLiveRoutePolicy(() => deps.config().routes);

  /** Counts a pass for every gate the request went through before `stop` (exclusive; all when null). */
  function passed(request: AdmissionRequest, stop: GateName | null, throttled: boolean): void {
    if (metrics === undefined) return;
    for (const gate of GATE_ORDER) {
      if (gate === stop) return;
      if (!throttled && (gate === 'rate_limit' || gate === 'backpressure')) continue;
      if (gate === 'circuit' && request.dependency === undefined) continue;
      if (gate === 'economics' && deps.economics === undefined) continue;
      metrics.decision(gate, request.principal.userType, 'pass');
    }
  }

  function recordRefusal(request: AdmissionRequest, refusal: Refusal): void {
    metrics?.decision(refusal.gate, request.principal.userType, 'refuse');
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
      .catch((error: unknown) => deps.logger?.warn({ err: error }, 'admission decision event not recorded'));
  }

  /** The in-process gates, in order; stops at the first refusal (later gates are not consulted). */
  async function prepare(request: AdmissionRequest, config: AdmissionConfig, throttled: boolean): Promise<Prepared> {
    const prepared: Prepared = { windows: undefined, failed: null, early: null, plan: undefined, probe: null, slot: undefined, late: null, enqueueMaxLoad: undefined };
    const reading = async <T>(gate: GateName, read: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await read();
      } catch (error) {
        if (!isHotStateUnavailable(error)) throw error;
        prepared.failed = unavailable(gate, error);
        return undefined;
      }
    };
    if (throttled) prepared.windows = windowsFor(deps.limits(request.principal));
    let taskCapacity = 0;
    if (throttled && request.kind === 'sync') {
      prepared.early = backpressure.sync(request, config);
    } else if (request.kind === 'task') {
      // Task work is never throttle-exempt (see admit), so this always runs for it.
      const judged = await reading('backpressure', () => backpressure.task(request, config));
      if (judged === undefined) return prepared;
      prepared.early = judged.refusal;
      taskCapacity = judged.capacity;
    }
    if (prepared.early !== null) return prepared;
    const dependency = request.dependency;
    if (dependency !== undefined) {
      const checked = breakers.check(dependency);
      const circuit = checked instanceof Promise ? await reading('circuit', () => checked) : checked;
      if (circuit === undefined) return prepared;
      if (!circuit.ok) {
        prepared.early = circuit.refusal;
        return prepared;
      }
      prepared.probe = circuit.probe;
    }
    const plan = deps.economics?.plan(request);
    if (plan !== undefined && !plan.ok) {
      prepared.early = plan.refusal;
      return prepared;
    }
    prepared.plan = plan;
    if (request.kind === 'task') {
      prepared.enqueueMaxLoad = hardCap(taskCapacity, config);
      return prepared;
    }
    const cap = replicaSlotCap(config);
    const taken = slots.take(request.requestId, cap, clock.now(), config.backpressure.slotTtlSeconds * 1000);
    if (taken.ok) prepared.slot = taken.claim;
    else if (taken.reason === 'duplicate') prepared.late = { gate: 'enqueue', code: 'conflict', status: 409, message: 'a request with this id was already admitted' };
    else prepared.late = overloaded('enqueue', taken.held, cap, config.backpressure.concurrencyPerReplica);
    return prepared;
  }

  /** Gives back what the in-process gates took (a refused or failed request keeps nothing). */
  function giveBack(request: AdmissionRequest, prepared: Prepared): void {
    prepared.slot?.release();
    const { probe } = prepared;
    if (probe !== null && request.dependency !== undefined) {
      breakers.returnProbe(request.dependency, probe).catch((error: unknown) => deps.logger?.warn({ err: error }, 'returning a circuit probe failed; it frees itself after the recovery time'));
    }
  }

  /** The refusal the store's answer stands for, or null when admitted. */
  function verdict(prepared: Prepared, result: AdmitResult | undefined): Refusal | null {
    if (result === undefined || result.ok) return prepared.early ?? prepared.late;
    switch (result.refusedBy) {
      case 'windows':
        return rateLimitRefusal(prepared.windows ?? [], result.windows);
      case 'caller':
        return prepared.early ?? prepared.late;
      case 'duplicate':
      case 'exceeded':
        if (prepared.plan === undefined) throw new Error('admission: the store refused a reservation nobody asked for');
        return prepared.plan.refused(result);
    }
  }

  async function admit(request: AdmissionRequest): Promise<AdmissionResult> {
    const started = performance.now();
    const headers: Record<string, string> = {};
    const refuse = (refusal: Refusal, throttled: boolean): AdmissionResult => {
      passed(request, refusal.gate, throttled);
      recordRefusal(request, refusal);
      metrics?.latency.observe({ result: 'refuse' }, (performance.now() - started) / 1000);
      return { ok: false, refusal, headers };
    };

    const denied = sessionGate(request);
    if (denied !== null) return refuse(denied, false);
    const config = deps.config();
    // Task work is never throttle-exempt, whatever route it came through.
    const throttled = !(routes.classify(request.route) === 'bypass' && request.kind !== 'task');

    const prepared = await prepare(request, config, throttled);
    if (prepared.failed !== null) {
      giveBack(request, prepared);
      return refuse(prepared.failed, throttled);
    }

    const reservations = prepared.early === null ? (prepared.plan?.reservations ?? []) : [];
    let result: AdmitResult | undefined;
    if (prepared.windows !== undefined || reservations.length > 0) {
      const step: AdmitRequest = {
        reservations,
        ...(prepared.windows === undefined ? {} : { windows: { key: request.principal.id, specs: prepared.windows } }),
        ...(prepared.early !== null ? { refusedAfter: 'windows' as const } : prepared.late !== null ? { refusedAfter: 'reservations' as const } : {}),
      };
      try {
        result = await deps.state.admit(admissionScope(request.principal), step);
      } catch (error) {
        giveBack(request, prepared);
        if (!isHotStateUnavailable(error)) throw error;
        prepared.plan?.refused({ refusedBy: 'unavailable' });
        return refuse(unavailable(prepared.windows === undefined ? 'economics' : 'rate_limit', error), throttled);
      }
      if (prepared.windows !== undefined && result.windows !== undefined) Object.assign(headers, rateLimitHeaders(prepared.windows, result.windows));
    }

    const refusal = verdict(prepared, result);
    if (refusal !== null) {
      giveBack(request, prepared);
      return refuse(refusal, throttled);
    }
    prepared.slot?.confirm();
    passed(request, null, throttled);
    const settleEconomics = prepared.plan?.held(result?.reaped ?? 0);
    const ticket = createTicket(request, prepared, settleEconomics);
    metrics?.latency.observe({ result: 'admit' }, (performance.now() - started) / 1000);
    return { ok: true, ticket, headers, ...(prepared.enqueueMaxLoad === undefined ? {} : { enqueueMaxLoad: prepared.enqueueMaxLoad }) };
  }

  function createTicket(request: AdmissionRequest, prepared: Prepared, settleEconomics: ((outcome: SettleOutcome) => Promise<void>) | undefined): AdmissionTicket {
    let settling: Promise<void> | undefined;
    const step = async (what: string, run: () => Promise<void>): Promise<void> => {
      try {
        await run();
      } catch (error) {
        deps.logger?.warn({ err: error, requestId: request.requestId, step: what }, 'admission settlement step failed');
      }
    };
    const steps = (outcome: SettleOutcome): Promise<void> => {
      metrics?.settlements.inc({ outcome: outcome.kind });
      prepared.slot?.release();
      const verdictOf = breakerOutcome(outcome);
      const dependency = request.dependency;
      const report = dependency !== undefined && verdictOf !== null && !breakers.ignores(dependency, prepared.probe, verdictOf) ? () => breakers.report(dependency, prepared.probe, verdictOf) : undefined;
      // The common ending (no budget line, a success of a closed dependency) has nothing to wait for.
      if (settleEconomics === undefined && report === undefined) return SETTLED;
      return (async () => {
        if (settleEconomics !== undefined) await step('economics', () => settleEconomics(outcome));
        if (report !== undefined) await step('circuit', report);
      })();
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

  return { admit, routes, breakers, slots };
}
