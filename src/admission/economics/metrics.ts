/** Prometheus metrics of the economics gate; registered on the registry the gateway exposes. */
import { Counter, Registry } from 'prom-client';
import { BatchedCounter } from '../../core/batched-counter.js';

export class EconomicsMetrics {
  /** Every priced request counts here and in settlements: batched (core/batched-counter.ts). */
  readonly decisions: BatchedCounter<'result'>;
  readonly settlements: BatchedCounter<'kind' | 'result'>;
  readonly unmetered: Counter<'reason'>;
  readonly alerts: Counter<'subject_kind' | 'metric' | 'period' | 'threshold'>;
  readonly reaped: Counter;
  readonly overruns: Counter<'metric'>;

  constructor(registry: Registry = new Registry()) {
    const registers = [registry];
    this.decisions = new BatchedCounter({
      name: 'portcullis_budget_decisions_total',
      help: 'Budget reservations by result (admitted, exceeded, unknown_price, unavailable, duplicate).',
      labelNames: ['result'] as const,
      registers,
    });
    this.settlements = new BatchedCounter({
      name: 'portcullis_budget_settlements_total',
      help: 'Budget settlements by outcome kind and whether the hot state accepted them.',
      labelNames: ['kind', 'result'] as const,
      registers,
    });
    this.unmetered = new Counter({
      name: 'portcullis_budget_unmetered_total',
      help: 'Requests settled at their reserved maximum because usage was unknown.',
      labelNames: ['reason'],
      registers,
    });
    this.alerts = new Counter({
      name: 'portcullis_budget_alerts_total',
      help: 'Budget alert thresholds crossed (once per line, cap and period).',
      labelNames: ['subject_kind', 'metric', 'period', 'threshold'],
      registers,
    });
    this.reaped = new Counter({ name: 'portcullis_budget_reaped_total', help: 'Leaked reservations freed by the reconciler.', registers });
    this.overruns = new Counter({
      name: 'portcullis_budget_overruns_total',
      help: 'Settlements whose reported actual exceeded the reservation (charged at the reservation).',
      labelNames: ['metric'],
      registers,
    });
  }
}
