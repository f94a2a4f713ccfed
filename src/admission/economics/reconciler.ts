/**
 * Frees leaked reservations: a replica that crashed, or a settlement the hot state never received,
 * leaves a reservation holding budget until someone reaps it. The port reaps per scope, so this
 * replica remembers the scopes it reserved in and reaps each of them every interval until all its
 * reservations there are past their deadline. A leak left by another (dead) replica in an org is
 * reaped as soon as any live replica reserves in that org again — and the gate also reaps a scope
 * at once when a refusal there was caused by reservations in flight.
 */
import type { Clock } from '../../core/clock.js';
import { startIntervalJob, type IntervalJob } from '../../core/interval-job.js';
import type { Logger } from '../../core/logger.js';
import type { HotState } from '../../store/state/port.js';

/** Margin for clock skew between this replica and the store that decides deadlines. */
const SKEW_MARGIN_MS = 60_000;

export class ScopeTracker {
  private readonly lastReserve = new Map<string, number>();

  constructor(private readonly clock: Clock) {}

  touch(scope: string): void {
    this.lastReserve.set(scope, this.clock.now());
  }

  scopes(): string[] {
    return [...this.lastReserve.keys()];
  }

  /** Forget a scope once every reservation made in it here has passed its deadline and been reaped. */
  reaped(scope: string, reapStartedAt: number, ttlMs: number): void {
    const last = this.lastReserve.get(scope);
    if (last !== undefined && reapStartedAt > last + ttlMs + SKEW_MARGIN_MS) this.lastReserve.delete(scope);
  }
}

export interface ReconcilerOptions {
  state: Pick<HotState, 'reapReservations'>;
  tracker: ScopeTracker;
  clock: Clock;
  reservationTtlMs: number;
  logger?: Logger;
  onReaped?: (count: number) => void;
}

export class BudgetReconciler {
  private job: IntervalJob | undefined;
  private running: Promise<number> | undefined;

  constructor(private readonly options: ReconcilerOptions) {}

  /** One pass over the tracked scopes; returns how many reservations were freed. */
  reconcileOnce(): Promise<number> {
    // Never two passes at once: a slow store must not stack up overlapping passes.
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  start(intervalMs: number): void {
    this.job ??= startIntervalJob('budget-reconciler', intervalMs, () => this.reconcileOnce(), this.options.logger);
  }

  async stop(): Promise<void> {
    const job = this.job;
    this.job = undefined;
    await job?.stop();
    await this.running?.catch(() => undefined);
  }

  private async pass(): Promise<number> {
    let total = 0;
    for (const scope of this.options.tracker.scopes()) {
      const startedAt = this.options.clock.now();
      try {
        const count = await this.options.state.reapReservations(scope);
        total += count;
        this.options.tracker.reaped(scope, startedAt, this.options.reservationTtlMs);
      } catch (error) {
        // Keep the scope: it is reaped on a later pass once the store answers again.
        this.options.logger?.warn({ err: error, scope }, 'reaping reservations failed');
      }
    }
    if (total > 0) {
      this.options.onReaped?.(total);
      this.options.logger?.info({ count: total }, 'freed leaked budget reservations');
    }
    return total;
  }
}
