/**
 * A circuit breaker held in this replica's memory, for the stores themselves: the hot-state store
 * (its breaker cannot live in the store it guards) and the record store. Same state machine as the
 * shared provider breakers (gates/circuit.ts), decided on the injected clock:
 *
 *   closed     calls pass; a failure is remembered for `windowSeconds`; `failureThreshold` of them
 *              within the window open the breaker, if they are also `failureRatio` of the recent
 *              calls (recent-outcomes.ts).
 *   open       calls fail fast for `recoverySeconds` without touching the store.
 *   half-open  at most `halfOpenProbes` calls per recovery period go through as probes;
 *              `successesToClose` successful probes close it, a failed probe opens it again.
 *
 * Outcomes of calls that started under an earlier state (a generation) do not move the breaker, so a
 * slow call that fails after the breaker re-closed cannot trip it again.
 */
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { CircuitSettings } from '../config.js';
import { RecentOutcomes, outcomesCounted } from './recent-outcomes.js';

export type LocalBreakerState = 'closed' | 'open' | 'half_open';

/** A call the breaker let through; report its outcome exactly once. */
export interface BreakerPass {
  readonly generation: number;
  readonly probe: boolean;
}

export type BreakerDecision = { ok: true; pass: BreakerPass } | { ok: false; retryAfterMs: number };

export class LocalBreaker {
  private current: LocalBreakerState = 'closed';
  private generation = 0;
  private failures: number[] = [];
  private readonly recent = new RecentOutcomes();
  private openUntil = 0;
  private halfOpenSince = 0;
  private probesTaken = 0;
  private successes = 0;

  constructor(
    readonly name: string,
    private readonly settings: () => CircuitSettings,
    private readonly clock: Clock,
    private readonly logger?: Logger,
  ) {}

  get state(): LocalBreakerState {
    this.advance(this.clock.now());
    return this.current;
  }

  allow(): BreakerDecision {
    const now = this.clock.now();
    this.advance(now);
    if (this.current === 'closed') return { ok: true, pass: { generation: this.generation, probe: false } };
    if (this.current === 'open') return { ok: false, retryAfterMs: this.openUntil - now };
    const periodEnd = this.halfOpenSince + this.settings().recoverySeconds * 1000;
    if (now >= periodEnd) {
      // Probes that never reported no longer hold their places.
      this.halfOpenSince = now;
      this.probesTaken = 0;
    }
    if (this.probesTaken >= this.settings().halfOpenProbes) return { ok: false, retryAfterMs: this.halfOpenSince + this.settings().recoverySeconds * 1000 - now };
    this.probesTaken += 1;
    return { ok: true, pass: { generation: this.generation, probe: true } };
  }

  report(pass: BreakerPass, ok: boolean): void {
    const now = this.clock.now();
    this.advance(now);
    if (pass.generation !== this.generation) return;
    const settings = this.settings();
    if (this.current === 'closed') {
      this.recent.record(!ok, outcomesCounted(settings));
      if (ok) return;
      const since = now - settings.windowSeconds * 1000;
      this.failures = this.failures.filter((at) => at > since);
      this.failures.push(now);
      if (this.failures.length >= settings.failureThreshold && this.recent.reaches(settings.failureRatio)) this.open(now, 'failures reached the threshold');
      return;
    }
    if (this.current !== 'half_open' || !pass.probe) return;
    if (!ok) {
      this.open(now, 'a probe failed');
      return;
    }
    this.successes += 1;
    if (this.successes >= settings.successesToClose) {
      this.transition('closed');
      this.failures = [];
      this.recent.clear();
      this.logger?.info({ breaker: this.name }, 'circuit breaker closed');
    }
  }

  private open(now: number, why: string): void {
    this.transition('open');
    this.openUntil = now + this.settings().recoverySeconds * 1000;
    this.logger?.warn({ breaker: this.name, why }, 'circuit breaker opened; calls fail fast');
  }

  private advance(now: number): void {
    if (this.current === 'open' && now >= this.openUntil) {
      this.transition('half_open');
      this.halfOpenSince = now;
    }
  }

  private transition(to: LocalBreakerState): void {
    this.current = to;
    this.generation += 1;
    this.probesTaken = 0;
    this.successes = 0;
  }
}
