/**
 * Circuit breaker per dependency, shared by every replica through the hot-state store. All timing
 * is done with store TTLs, never a replica clock:
 *
 *   closed     no `tripped` key, or `tripped` = `closed:g` after generation g closed. Failures
 *              count in a window (`failures:<closed-since>`, ttl = window, so a closing starts a
 *              fresh count); reaching the threshold trips the breaker.
 *   open       `tripped` = generation g and `open:g` exists (ttl = recovery time): fail fast.
 *   half-open  `tripped` = g but `open:g` expired: at most `halfOpenProbes` requests per recovery
 *              period get through (`probes:g` counter); `successesToClose` successes close it, a
 *              failure re-opens it under a new generation.
 *
 * Only outcomes of admitted requests reach `report`; backpressure and other refusals never do.
 */
import { randomUUID } from 'node:crypto';
import type { HotState } from '../../store/state/port.js';
import type { AdmissionConfig } from '../config.js';
import type { Refusal } from '../types.js';

const DEPENDENCY = /^[A-Za-z0-9_.:-]{1,128}$/;
const TRIPPED_TTL_MS = 7 * 24 * 60 * 60 * 1000;
const CLOSED = 'closed:';

export type CircuitState = 'closed' | 'open' | 'half_open';
export type CircuitPass = { ok: true; probe: string | null } | { ok: false; refusal: Refusal };

function scopeOf(dependency: string): string {
  if (!DEPENDENCY.test(dependency)) throw new Error('invalid dependency name for the circuit breaker');
  return `cb:${dependency}`;
}

export function createCircuitBreakers(deps: { state: HotState; config: () => AdmissionConfig }) {
  const { state } = deps;

  function refusal(dependency: string, stateName: CircuitState): Refusal {
    const retryAfterSeconds = Math.max(1, Math.min(60, deps.config().circuit.recoverySeconds));
    return { gate: 'circuit', code: 'circuit_open', status: 503, message: `${dependency} is failing; requests are paused`, retryAfterSeconds, limit: { dependency, state: stateName } };
  }

  async function trip(scope: string): Promise<void> {
    const config = deps.config().circuit;
    const generation = randomUUID();
    // Open first, then point `tripped` at it, so no reader ever sees tripped without its open key.
    await state.set(scope, `open:${generation}`, '1', config.recoverySeconds * 1000);
    await state.set(scope, 'tripped', generation, TRIPPED_TTL_MS);
  }

  const isClosed = (tripped: string | null): boolean => tripped === null || tripped.startsWith(CLOSED);

  return {
    /** The gate: closed passes, open refuses, half-open lets a bounded number of probes through. */
    async check(dependency: string): Promise<CircuitPass> {
      const scope = scopeOf(dependency);
      const generation = await state.get(scope, 'tripped');
      if (generation === null || isClosed(generation)) return { ok: true, probe: null };
      if ((await state.get(scope, `open:${generation}`)) !== null) return { ok: false, refusal: refusal(dependency, 'open') };
      const config = deps.config().circuit;
      const taken = await state.increment(scope, `probes:${generation}`, 1, config.recoverySeconds * 1000);
      if (taken <= config.halfOpenProbes) return { ok: true, probe: generation };
      return { ok: false, refusal: refusal(dependency, 'half_open') };
    },

    /** Outcome of an admitted request; `probe` is what `check` returned. */
    async report(dependency: string, probe: string | null, outcome: 'success' | 'failure'): Promise<void> {
      const scope = scopeOf(dependency);
      const config = deps.config().circuit;
      const generation = await state.get(scope, 'tripped');
      if (generation === null || isClosed(generation)) {
        if (outcome === 'success') return;
        const failures = await state.increment(scope, `failures:${generation ?? 'initial'}`, 1, config.windowSeconds * 1000);
        if (failures >= config.failureThreshold) await trip(scope);
        return;
      }
      // Outcomes of requests admitted under another generation (or before the trip) do not move it.
      if (probe !== generation) return;
      if (outcome === 'failure') {
        await trip(scope);
        return;
      }
      const successes = await state.increment(scope, `successes:${generation}`, 1, TRIPPED_TTL_MS);
      if (successes >= config.successesToClose) {
        // Closing only if still in this generation: a concurrent re-trip must win.
        if ((await state.get(scope, 'tripped')) === generation) await state.set(scope, 'tripped', `${CLOSED}${generation}`, TRIPPED_TTL_MS);
      }
    },

    async stateOf(dependency: string): Promise<CircuitState> {
      const scope = scopeOf(dependency);
      const generation = await state.get(scope, 'tripped');
      if (generation === null || isClosed(generation)) return 'closed';
      return (await state.get(scope, `open:${generation}`)) === null ? 'half_open' : 'open';
    },
  };
}

export type CircuitBreakers = ReturnType<typeof createCircuitBreakers>;
