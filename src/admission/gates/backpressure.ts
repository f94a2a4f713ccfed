/**
 * Backpressure: refuse new work when load approaches capacity, earlier for lower user types.
 *
 *   sync work:  load = in-flight slots across replicas (one hot-state reservation line),
 *               capacity = concurrencyPerReplica × live replicas;
 *   task work:  load = queued + claimed items of the task queue,
 *               capacity = sum of healthy workers' declared capacity (from the tasks module).
 * Both keep `capacityBuffer` in reserve. A type is admitted while load + 1 ≤ threshold × usable
 * capacity. This gate only reads; the final, atomic check is the slot (sync: a capped reservation)
 * or the guarded enqueue (task: `EnqueueGuard.maxLoad`), both at the hard threshold, so racing
 * replicas can never push load past it. Refusals here never count as breaker failures.
 */
import type { Principal } from '../../identity/principal.js';
import type { HotState } from '../../store/state/port.js';
import type { AdmissionConfig } from '../config.js';
import type { AdmissionRequest, Refusal, WorkerCapacity } from '../types.js';

export const SLOT_SCOPE = 'admission';
export const SLOT_LINE = 'inflight';
const DAY_MS = 24 * 60 * 60 * 1000;

export interface CapacityDeps {
  state: HotState;
  config: () => AdmissionConfig;
  liveReplicas: () => number;
  workerCapacity?: WorkerCapacity;
}

export function usableCapacity(raw: number, config: AdmissionConfig): number {
  return Math.floor(raw * (1 - config.backpressure.capacityBuffer));
}

export function thresholdFor(principal: Principal, config: AdmissionConfig): number {
  const t = config.backpressure.thresholds;
  switch (principal.userType) {
    case 'anonymous':
      return t.anonymous;
    case 'registered':
      return t.registered;
    case 'paid':
      return t.paid;
    case 'privileged':
      return t.hard;
  }
}

/** The most load the atomic slot/enqueue check lets through: the hard threshold of usable capacity. */
export function hardCap(capacity: number, config: AdmissionConfig): number {
  return Math.floor(usableCapacity(capacity, config) * config.backpressure.thresholds.hard);
}

export async function capacityFor(kind: AdmissionRequest['kind'], deps: CapacityDeps): Promise<number> {
  if (kind === 'task') return deps.workerCapacity === undefined ? 0 : Math.max(0, await deps.workerCapacity());
  return deps.config().backpressure.concurrencyPerReplica * Math.max(1, deps.liveReplicas());
}

async function loadFor(kind: AdmissionRequest['kind'], deps: CapacityDeps): Promise<number> {
  if (kind === 'task') {
    const { queued, inFlight } = await deps.state.queueLoad(deps.config().backpressure.taskQueue);
    return queued + inFlight;
  }
  const usage = await deps.state.budgetUsage(SLOT_SCOPE, SLOT_LINE);
  return usage.reserved + usage.used;
}

function overloaded(gate: 'backpressure' | 'enqueue', load: number, allowed: number, capacity: number): Refusal {
  return {
    gate,
    code: 'overloaded',
    status: 503,
    message: 'the platform is at capacity for this kind of caller',
    retryAfterSeconds: 2,
    limit: { load, allowed, capacity },
  };
}

export function createBackpressureGate(deps: CapacityDeps) {
  return async function backpressure(request: AdmissionRequest): Promise<Refusal | null> {
    const config = deps.config();
    const [capacity, load] = await Promise.all([capacityFor(request.kind, deps), loadFor(request.kind, deps)]);
    const allowed = Math.floor(usableCapacity(capacity, config) * thresholdFor(request.principal, config));
    return load + 1 <= allowed ? null : overloaded('backpressure', load, allowed, capacity);
  };
}

/**
 * The in-flight slot of a synchronous request: a reservation of 1 on the shared in-flight line,
 * capped at the hard threshold. Atomic in the store, so concurrent replicas never exceed the cap;
 * it carries a ttl so a slot of a crashed replica frees itself (`reapSlots`).
 */
export function createSlotGate(deps: CapacityDeps & { now: () => number }) {
  return {
    async take(request: AdmissionRequest): Promise<Refusal | null> {
      const config = deps.config();
      const capacity = await capacityFor('sync', deps);
      const cap = hardCap(capacity, config);
      const ttlMs = config.backpressure.slotTtlSeconds * 1000;
      // expiresAt only bounds how long the line lives; replica clock skew of minutes is irrelevant here.
      const line = { key: SLOT_LINE, cap, expiresAt: deps.now() + DAY_MS };
      let result = await deps.state.reserve(SLOT_SCOPE, { reservationId: request.requestId, amount: 1, lines: [line], ttlMs });
      if (!result.ok && result.reason === 'exceeded' && (await deps.state.reapReservations(SLOT_SCOPE)) > 0) {
        result = await deps.state.reserve(SLOT_SCOPE, { reservationId: request.requestId, amount: 1, lines: [line], ttlMs });
      }
      if (result.ok) return null;
      if (result.reason === 'duplicate') {
        return { gate: 'enqueue', code: 'conflict', status: 409, message: 'a request with this id was already admitted' };
      }
      return overloaded('enqueue', result.used + result.reserved, cap, capacity);
    },
    async release(requestId: string): Promise<void> {
      await deps.state.release(SLOT_SCOPE, requestId);
    },
  };
}
