/**
 * The admission contract between the pipeline (admission/), the gates, and the handlers that run
 * guarded work (models/, tasks, capabilities/). Expected refusals are values, never exceptions.
 *
 * Order is fixed: session → rate limit → backpressure → circuit breaker → economics (reserve)
 * → enqueue (tasks) or in-flight slot (synchronous proxying). A handler that was admitted must
 * call `ticket.settle()` exactly once however the request ends; settling twice is a no-op.
 */
import type { ErrorCode } from '../core/errors.js';
import type { Principal } from '../identity/principal.js';
import type { OrgAction } from '../identity/tenancy/permissions.js';
import type { AdmitResult, ReserveRequest } from '../store/state/port.js';

export type GateName = 'session' | 'rate_limit' | 'backpressure' | 'circuit' | 'economics' | 'enqueue';

/** How much of the pipeline a route runs. Model and task ingress are always `full`. */
export type RouteGuard = 'full' | 'authenticate_only' | 'bypass';

export interface Refusal {
  gate: GateName;
  code: ErrorCode;
  status: number;
  /** Public, non-secret reason, e.g. "burst limit of 50 per 60 s reached". */
  message: string;
  retryAfterSeconds?: number;
  /** What was hit, for the decision event and the error body (never a secret). */
  limit?: Record<string, string | number>;
}

/** The most a request may cost, computed by the handler before admission (models/ knows prices). */
export interface CostEstimate {
  model: string;
  /** Upper bound in integer micro-units of money. */
  maxMicros: number;
  /** Upper bound of tokens (input + max output). */
  maxTokens: number;
  /**
   * The model has no known price (maxMicros is then 0). The economics gate refuses it with
   * `unknown_price` unless config allows unpriced models; see economics `costEstimate()`.
   */
  unpriced?: boolean;
}

export interface AdmissionRequest {
  principal: Principal;
  /** Route pattern, e.g. `/v1/chat/completions`. */
  route: string;
  requestId: string;
  /** Present for priced work (model calls); absent for work that only counts requests. */
  cost?: CostEstimate;
  /** Dependency the circuit breaker guards for this request, e.g. `provider:openai`. */
  dependency?: string;
  /** Synchronous proxying holds an in-flight slot; queued work goes through enqueue instead. */
  kind: 'sync' | 'task';
  /** Session gate: an org permission the principal must hold (checked with `can()`); anonymous callers skip it. */
  permission?: OrgAction;
  /** Session gate: false refuses anonymous callers with 401 (default: anonymous allowed, e.g. free models). */
  allowAnonymous?: boolean;
}

export type SettleOutcome =
  | { kind: 'success'; actualMicros: number; actualTokens: number }
  /** Usage unknown (stream ended without usage, client went away): settled at the reserved maximum, flagged. */
  | { kind: 'unmetered'; reason: 'no_usage' | 'client_abort' | 'timeout' }
  /**
   * The upstream did no billable work: everything reserved is released. `error` and `timeout` count
   * against the dependency's breaker; `refused` does not — the upstream answered, and refused the
   * request itself (a 4xx: a bad body, a caller's own key rejected). Counting those would let one
   * tenant's bad requests pause a provider for every tenant.
   */
  | { kind: 'upstream_failure'; reason: 'error' | 'timeout' | 'refused' };

export interface AdmissionTicket {
  readonly requestId: string;
  /** Exactly-once settlement: commit or release the reservation, free the slot, tell the breaker. */
  settle(outcome: SettleOutcome): Promise<void>;
  readonly settled: boolean;
}

export type AdmissionResult =
  /**
   * `enqueueMaxLoad` (task work only): pass it as `EnqueueGuard.maxLoad` so the enqueue re-checks
   * capacity atomically; when the enqueue answers `full`, settle the ticket with
   * `{ kind: 'upstream_failure', reason: 'error' }` and refuse 503 `queue_full`.
   */
  | { ok: true; ticket: AdmissionTicket; headers: Record<string, string>; enqueueMaxLoad?: number }
  | { ok: false; refusal: Refusal; headers: Record<string, string> };

export interface Admission {
  admit(request: AdmissionRequest): Promise<AdmissionResult>;
}

/**
 * The economics gate (src/admission/economics/) as the pipeline sees it. The gate decides
 * in-process what a request would reserve (`plan`: budget lines from its cache, prices from the
 * estimate; an unpriced model is refused here); the pipeline sends those reservations to the hot
 * state in the same atomic step as the rate-limit windows (`HotState.admit`), so a refusal at
 * any gate costs nothing, and then tells the plan what the store answered: `refused` for the
 * refusal to give, or `held` once the store holds the reservations, which returns the settlement.
 * That settlement runs at most once per request (the pipeline calls it exactly once; it is memoised
 * and the store is idempotent by reservation id as well) and costs at most one round trip.
 */
export type EconomicsPlan =
  | { ok: false; refusal: Refusal }
  | {
      ok: true;
      /** Hot-state scope of the reservations: the org's, shared with its rate-limit windows. */
      scope: string;
      /** Empty when nothing is reserved (no budget lines, or no org). */
      reservations: ReserveRequest[];
      /** The refusal for a reservation of this plan the store refused, or for a store that could not be reached. */
      refused(outcome: ReservationRefusal | { refusedBy: 'unavailable' }): Refusal;
      /** The store holds the reservations (`reaped`: leaks it freed on the way). */
      held(reaped: number): (outcome: SettleOutcome) => Promise<void>;
    };

/** How the store refused a reservation of a plan (see `HotState.admit`). */
export type ReservationRefusal = Extract<AdmitResult, { refusedBy: 'duplicate' | 'exceeded' }>;

export interface EconomicsGate {
  plan(request: AdmissionRequest): EconomicsPlan;
}

/**
 * Sum of the declared capacity of healthy (heart-beating) task workers across the platform,
 * maintained by the tasks module; backpressure for `kind: 'task'` divides load by it.
 */
export type WorkerCapacity = () => Promise<number>;
