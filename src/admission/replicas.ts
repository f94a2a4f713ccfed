/**
 * Live replicas and their synchronous load, for backpressure (capacity = concurrencyPerReplica ×
 * live replicas; load = this replica's exact in-flight count + the others' last published ones).
 * Each replica beats into one presence set in the hot state with its in-flight count; the store
 * keeps a member alive for `ttlMs` of store time, so replicas with skewed clocks agree on who is
 * alive, and a replica that dies drops out (with its load) once its ttl passes. Runs off the request
 * path; the gate reads the numbers cached here.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../core/logger.js';
import type { HotState } from '../store/state/port.js';
import type { SyncLoad } from './gates/backpressure.js';

const SCOPE = 'admission-replicas';
const DEFAULT_BEAT_MS = 500;

export interface ReplicaTracker extends SyncLoad {
  /** Heartbeats once now (also used by tests instead of the timer). */
  beat(): Promise<void>;
  start(): void;
  stop(): void;
}

export interface ReplicaTrackerDeps {
  state: HotState;
  /** This replica's in-flight synchronous requests, exact (slots.ts). */
  ownInFlight: () => number;
  /** Called before each beat (e.g. to sweep slots past their ttl). */
  beforeBeat?: () => void;
  logger?: Logger;
  /** How often to beat; a member is alive for four beats. */
  beatMs?: number;
}

export function createReplicaTracker(deps: ReplicaTrackerDeps): ReplicaTracker {
  const beatMs = deps.beatMs ?? DEFAULT_BEAT_MS;
  const id = randomBytes(9).toString('base64url');
  let live = 1;
  let others = 0;
  let timer: NodeJS.Timeout | undefined;

  const beat = async (): Promise<void> => {
    deps.beforeBeat?.();
    const members = await deps.state.heartbeat(SCOPE, id, String(deps.ownInFlight()), beatMs * 4);
    let sum = 0;
    for (const m of members) {
      if (m.member === id) continue;
      const value = Number(m.value);
      // A value this code did not write is ignored rather than trusted.
      if (Number.isSafeInteger(value) && value >= 0) sum += value;
    }
    live = Math.max(1, members.length);
    others = sum;
  };

  return {
    replicas: () => live,
    inFlight: () => deps.ownInFlight() + others,
    beat,
    start() {
      if (timer !== undefined) return;
      timer = setInterval(() => {
        beat().catch((error: unknown) => deps.logger?.warn({ err: error }, 'admission replica heartbeat failed'));
      }, beatMs);
      timer.unref();
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}

/** One replica with no heartbeat (a pipeline built on its own, e.g. in tests). */
export function singleReplica(ownInFlight: () => number): SyncLoad {
  return { replicas: () => 1, inFlight: ownInFlight };
}
