/**
 * Live replica count for synchronous capacity (concurrencyPerReplica × live replicas). Each replica
 * adds itself once to a counter for the current store-time epoch; the count of the last complete
 * epoch is the number of replicas alive then. Time comes from the store, so skewed replica clocks
 * still land in the same epoch. Runs off the request path; the gate reads the cached number.
 */
import type { Logger } from '../core/logger.js';
import type { HotState } from '../store/state/port.js';

const SCOPE = 'admission-replicas';

export interface ReplicaTracker {
  /** Live replicas (at least 1: this one). */
  count(): number;
  /** Heartbeats once now (also used by tests instead of the timer). */
  beat(): Promise<void>;
  start(): void;
  stop(): void;
}

export function createReplicaTracker(deps: { state: HotState; logger?: Logger; epochMs?: number }): ReplicaTracker {
  const epochMs = deps.epochMs ?? 2000;
  let counted = -1;
  let live = 1;
  let timer: NodeJS.Timeout | undefined;

  const beat = async (): Promise<void> => {
    const epoch = Math.floor((await deps.state.now()) / epochMs);
    if (epoch !== counted) {
      await deps.state.increment(SCOPE, `epoch:${epoch}`, 1, epochMs * 5);
      counted = epoch;
    }
    // Counters are read by adding 0 (counters and plain values are separate in the port).
    const previous = await deps.state.increment(SCOPE, `epoch:${epoch - 1}`, 0, epochMs * 5);
    const current = await deps.state.increment(SCOPE, `epoch:${epoch}`, 0, epochMs * 5);
    // The current epoch may not have every beat yet; the previous one is complete.
    live = Math.max(1, previous, current);
  };

  return {
    count: () => live,
    beat,
    start() {
      if (timer !== undefined) return;
      timer = setInterval(() => {
        beat().catch((error: unknown) => deps.logger?.warn({ err: error }, 'admission replica heartbeat failed'));
      }, Math.max(100, Math.floor(epochMs / 2)));
      timer.unref();
      void beat().catch(() => undefined);
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}
