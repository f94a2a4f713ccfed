/** In-process sliding-window logs per (scope, window, key): the reference for the Redis window keys. */
import type { WindowDecision, WindowSpec } from '../port.js';
import { decideWindows, HitLog } from './sliding-log.js';

const SEP = '\u0000';

export class MemoryWindows {
  private readonly logs = new Map<string, { log: HitLog; windowMs: number }>();

  /** The logs of these windows for `key`, trimmed to `now` (created empty when new). */
  logsFor(now: number, scope: string, key: string, specs: WindowSpec[]): HitLog[] {
    return specs.map((spec) => {
      const k = `${scope}${SEP}${spec.name}${SEP}${key}`;
      let slot = this.logs.get(k);
      if (slot === undefined) {
        slot = { log: new HitLog(), windowMs: spec.windowMs };
        this.logs.set(k, slot);
      }
      slot.windowMs = spec.windowMs;
      slot.log.trim(now, spec.windowMs);
      return slot.log;
    });
  }

  hit(now: number, scope: string, key: string, specs: WindowSpec[], cost: number): WindowDecision {
    return decideWindows(now, specs, this.logsFor(now, scope, key, specs), cost);
  }

  /** Forgets logs with nothing left in their window. */
  sweep(now: number): void {
    for (const [k, slot] of this.logs) if (slot.log.isEmpty() || slot.log.lastHitAt + slot.windowMs <= now) this.logs.delete(k);
  }
}
