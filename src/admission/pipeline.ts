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
import { CircuitBreakers, type CircuitPass } from './gates/circuit.js';
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

/**
 * How an ending counts for the breaker: the client going away says nothing about the dependency,
 * and a dependency that answered with a refusal of the request itself is up.
 */
function breakerOutcome(outcome: SettleOutcome): 'success' | 'failure' | null {
  if (outcome.kind === 'success') return 'success';
  if (outcome.kind === 'upstream_failure') return outcome.reason === 'refused' ? 'success' : 'failure';
  if (outcome.reason === 'timeout') return 'failure';
  return outcome.reason === 'no_usage' ? 'success' : null;
}

/** The settlement of a request that had nothing to give back to a store. */
const SETTLED: Promise<void> = Promise.resolve();
/** The reservations of a request without budget lines (or refused before them); never mutated. */
const NO_RESERVATIONS: AdmitRequest['reservations'] = [];

/** The pipeline's side of settling a ticket (Ticket below). */
interface SettlementSteps {
  /** The synchronous part (counters, the slot); returns the breaker report still to make, if any. */
  begin(request: AdmissionRequest, prepared: Prepared, outcome: SettleOutcome): (() => Promise<void>) | undefined;
  /** One step that may fail on its own: logged, never thrown, so it never skips the others. */
  step(request: AdmissionRequest, what: string, run: () => Promise<void>): Promise<void>;
}

/**
 * An admitted request's ticket. One object per request (not a set of closures): it is on every
 * model call. The first `settle` wins; later calls (e.g. a disconnect racing the end of a stream)
 * await the same settlement.
 */
class Ticket implements AdmissionTicket {
  #settling: Promise<void> | undefined;

  constructor(
    private readonly request: AdmissionRequest,
    private readonly prepared: Prepared,
    private readonly settleEconomics: ((outcome: SettleOutcome) => Promise<void>) | undefined,
    private readonly steps: SettlementSteps,
  ) {}

  get requestId(): string {
    return this.request.requestId;
  }

  get settled(): boolean {
    return this.#settling !== undefined;
  }

  settle(outcome: SettleOutcome): Promise<void> {
    this.#settling ??= this.#run(outcome);
    return this.#settling;
  }

  #run(outcome: SettleOutcome): Promise<void> {
    const report = this.steps.begin(this.request, this.prepared, outcome);
    const economics = this.settleEconomics;
    // The common ending (no budget line, a success of a closed dependency) has nothing to wait for.
    if (report === undefined) return economics === undefined ? SETTLED : this.steps.step(this.request, 'economics', () => economics(outcome));
    if (economics === undefined) return this.steps.step(this.request, 'circuit', report);
    return this.#both(outcome, economics, report);
  }

  async #both(outcome: SettleOutcome, economics: (outcome: SettleOutcome) => Promise<void>, report: () => Promise<void>): Promise<void> {
    await this.steps.step(this.request, 'economics', () => economics(outcome));
    await this.steps.step(this.request, 'circuit', report);
  }
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

  /** A gate's read of the hot state; a store that is unavailable refuses the request at once. */
  async function reading<T>(prepared: Prepared, gate: GateName, read: () => Promise<T>): Promise<T | undefined> {
    try {
      return await read();
    } catch (error) {
      if (!isHotStateUnavailable(error)) throw error;
      prepared.failed = unavailable(gate, error);
      return undefined;
    }
  }

  /**
   * The in-process gates, in order; stops at the first refusal (later gates are not consulted).
   * Without a promise unless a gate reads the hot state (a task's platform load, a half-open
   * probe): most requests decide here synchronously.
   */
  function prepare(request: AdmissionRequest, config: AdmissionConfig, throttled: boolean): Prepared | Promise<Prepared> {
    const prepared: Prepared = { windows: undefined, failed: null, early: null, plan: undefined, probe: null, slot: undefined, late: null, enqueueMaxLoad: undefined };
    if (throttled) prepared.windows = windowsFor(deps.limits(request.principal));
    // Task work is never throttle-exempt (see admit), so its load check always runs.
    if (request.kind === 'task') return prepareTask(request, config, prepared);
    if (throttled) prepared.early = backpressure.sync(request, config);
    if (prepared.early !== null) return prepared;
    return afterLoad(request, config, prepared, 0);
  }

  async function prepareTask(request: AdmissionRequest, config: AdmissionConfig, prepared: Prepared): Promise<Prepared> {
    const judged = await reading(prepared, 'backpressure', () => backpressure.task(request, config));
    if (judged === undefined) return prepared;
    prepared.early = judged.refusal;
    if (prepared.early !== null) return prepared;
    return afterLoad(request, config, prepared, judged.capacity);
  }

  /** The circuit gate, then the rest; a promise only when the breaker took a probe in the store. */
  function afterLoad(request: AdmissionRequest, config: AdmissionConfig, prepared: Prepared, taskCapacity: number): Prepared | Promise<Prepared> {
    const dependency = request.dependency;
    if (dependency === undefined) return planAndSlot(request, config, prepared, taskCapacity);
    const checked = breakers.check(dependency);
    if (!(checked instanceof Promise)) return afterCircuit(request, config, prepared, taskCapacity, checked);
    return reading(prepared, 'circuit', () => checked).then((circuit) => (circuit === undefined ? prepared : afterCircuit(request, config, prepared, taskCapacity, circuit)));
  }

  function afterCircuit(request: AdmissionRequest, config: AdmissionConfig, prepared: Prepared, taskCapacity: number, circuit: CircuitPass): Prepared {
    if (!circuit.ok) {
      prepared.early = circuit.refusal;
      return prepared;
    }
    prepared.probe = circuit.probe;
    return planAndSlot(request, config, prepared, taskCapacity);
  }

  /** The economics plan (in-process, from its cache), then the in-flight slot or the enqueue cap. */
  function planAndSlot(request: AdmissionRequest, config: AdmissionConfig, prepared: Prepared, taskCapacity: number): Prepared {
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

  function refuse(request: AdmissionRequest, refusal: Refusal, throttled: boolean, started: number, headers: Record<string, string>): AdmissionResult {
    passed(request, refusal.gate, throttled);
    recordRefusal(request, refusal);
    metrics?.latency.observe({ result: 'refuse' }, (performance.now() - started) / 1000);
    return { ok: false, refusal, headers };
  }

  /** The one hot-state step: the windows and every reservation, checked and taken together. */
  function counterStep(request: AdmissionRequest, prepared: Prepared, reservations: AdmitRequest['reservations']): AdmitRequest {
    const step: AdmitRequest = { reservations };
    if (prepared.windows !== undefined) step.windows = { key: request.principal.id, specs: prepared.windows };
    if (prepared.early !== null) step.refusedAfter = 'windows';
    else if (prepared.late !== null) step.refusedAfter = 'reservations';
    return step;
  }

  async function admit(request: AdmissionRequest): Promise<AdmissionResult> {
    const started = performance.now();
    let headers: Record<string, string> = {};

    const denied = sessionGate(request);
    if (denied !== null) return refuse(request, denied, false, started, {});
    const config = deps.config();
    // Task work is never throttle-exempt, whatever route it came through.
    const throttled = !(routes.classify(request.route) === 'bypass' && request.kind !== 'task');

    const preparing = prepare(request, config, throttled);
    const prepared = preparing instanceof Promise ? await preparing : preparing;
    if (prepared.failed !== null) {
      giveBack(request, prepared);
      return refuse(request, prepared.failed, throttled, started, {});
    }

    const reservations = prepared.early === null ? (prepared.plan?.reservations ?? NO_RESERVATIONS) : NO_RESERVATIONS;
    let result: AdmitResult | undefined;
    if (prepared.windows !== undefined || reservations.length > 0) {
      try {
        result = await deps.state.admit(admissionScope(request.principal), counterStep(request, prepared, reservations));
      } catch (error) {
        giveBack(request, prepared);
        if (!isHotStateUnavailable(error)) throw error;
        prepared.plan?.refused({ refusedBy: 'unavailable' });
        return refuse(request, unavailable(prepared.windows === undefined ? 'economics' : 'rate_limit', error), throttled, started, {});
      }
      if (prepared.windows !== undefined && result.windows !== undefined) headers = rateLimitHeaders(prepared.windows, result.windows);
    }

    const refusal = verdict(prepared, result);
    if (refusal !== null) {
      giveBack(request, prepared);
      return refuse(request, refusal, throttled, started, headers);
    }
    prepared.slot?.confirm();
    passed(request, null, throttled);
    const settleEconomics = prepared.plan?.held(result?.reaped ?? 0);
    const ticket = new Ticket(request, prepared, settleEconomics, settlementSteps);
    metrics?.latency.observe({ result: 'admit' }, (performance.now() - started) / 1000);
    const admitted: AdmissionResult = { ok: true, ticket, headers };
    if (prepared.enqueueMaxLoad !== undefined) admitted.enqueueMaxLoad = prepared.enqueueMaxLoad;
    return admitted;
  }

  /** What settling a ticket does; each step on its own, so one failing never skips the others. */
  const settlementSteps: SettlementSteps = {
    begin(request, prepared, outcome) {
      metrics?.settlements.inc({ outcome: outcome.kind });
      prepared.slot?.release();
      const verdictOf = breakerOutcome(outcome);
      const dependency = request.dependency;
      if (dependency === undefined || verdictOf === null || !breakers.observe(dependency, prepared.probe, verdictOf)) return undefined;
      return () => breakers.tell(dependency, prepared.probe, verdictOf);
    },
    step(request, what, run) {
      const failed = (error: unknown): void => deps.logger?.warn({ err: error, requestId: request.requestId, step: what }, 'admission settlement step failed');
      try {
        return run().catch(failed);
      } catch (error) {
        failed(error);
        return SETTLED;
      }
    },
  };

  return { admit, routes, breakers, slots };
}
