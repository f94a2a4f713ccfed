/**
 * Backpressure: refuse new work when load approaches capacity, earlier for lower user types.
 *
 *   sync work:  load = this replica's exact in-flight requests + the other replicas' as they
 *               published them in their last heartbeat (replicas.ts),
 *               capacity = concurrencyPerReplica × live replicas;
 *   task work:  load = queued + claimed items of the task queue (one hot-state read),
 *               capacity = sum of healthy workers' declared capacity (from the tasks module).
 * Both keep `capacityBuffer` in reserve. A type is admitted while load + 1 ≤ threshold × usable
 * capacity. This gate decides in-process (for sync work) and is soft across replicas; the exact
 * check is the in-flight slot (sync: this replica's counter, capped at the hard threshold of its own
 * concurrency, slots.ts) or the guarded enqueue (task: `EnqueueGuard.maxLoad` at the hard threshold
 * of worker capacity), so racing requests can never push load past the hard cap. Refusals here
 * never count as breaker failures.
 */
import type { Principal } from '../../identity/principal.js';
import type { HotState } from '../../store/state/port.js';
import type { AdmissionConfig } from '../config.js';
import type { AdmissionRequest, Refusal, WorkerCapacity } from '../types.js';

/** The platform-wide synchronous load this replica knows of. */
export interface SyncLoad {
  /** Live replicas (at least 1: this one). */
  replicas(): number;
  /** In-flight requests of this replica (exact) plus the others' (from heartbeats). */
  inFlight(): number;
}

export interface CapacityDeps {
  state: HotState;
  config: () => AdmissionConfig;
  load: SyncLoad;
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

/** The most load the exact slot/enqueue check lets through: the hard threshold of usable capacity. */
export function hardCap(capacity: number, config: AdmissionConfig): number {
  return Math.floor(usableCapacity(capacity, config) * config.backpressure.thresholds.hard);
}

/** The in-flight cap of one replica's slots. */
export function replicaSlotCap(config: AdmissionConfig): number {
  return hardCap(config.backpressure.concurrencyPerReplica, config);
}

export async function taskCapacity(deps: CapacityDeps): Promise<number> {
  return deps.workerCapacity === undefined ? 0 : Math.max(0, await deps.workerCapacity());
}

export function overloaded(gate: 'backpressure' | 'enqueue', load: number, allowed: number, capacity: number): Refusal {
  return {
    gate,
    code: 'overloaded',
    status: 503,
    message: 'the platform is at capacity for this kind of caller',
    retryAfterSeconds: 2,
    limit: { load, allowed, capacity },
  };
}

function judge(principal: Principal, config: AdmissionConfig, load: number, capacity: number): Refusal | null {
  const allowed = Math.floor(usableCapacity(capacity, config) * thresholdFor(principal, config));
  return load + 1 <= allowed ? null : overloaded('backpressure', load, allowed, capacity);
}

export function createBackpressureGate(deps: CapacityDeps) {
  return {
    /** Synchronous work: decided in-process. */
    sync(request: AdmissionRequest, config: AdmissionConfig): Refusal | null {
      return judge(request.principal, config, deps.load.inFlight(), config.backpressure.concurrencyPerReplica * Math.max(1, deps.load.replicas()));
    },
    /** Task work: the queue's load is one hot-state read; returns the capacity for the enqueue guard too. */
    async task(request: AdmissionRequest, config: AdmissionConfig): Promise<{ refusal: Refusal | null; capacity: number }> {
      const [capacity, load] = await Promise.all([taskCapacity(deps), deps.state.queueLoad(config.backpressure.taskQueue)]);
      return { refusal: judge(request.principal, config, load.queued + load.inFlight, capacity), capacity };
    },
  };
}
