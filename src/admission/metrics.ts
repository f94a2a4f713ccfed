/**
 * Prometheus metrics of admission decisions, registered on the registry the composition root owns.
 * The counters are batched (core/batched-counter.ts): every request passes several gates, and
 * prom-client would hash a label set for each.
 */
import { Histogram, type Registry } from 'prom-client';
import { BatchedCounter } from '../core/batched-counter.js';

export interface AdmissionMetrics {
  decisions: BatchedCounter<'gate' | 'user_type' | 'result'>;
  latency: Histogram<'result'>;
  settlements: BatchedCounter<'outcome'>;
}

export function createAdmissionMetrics(registry: Registry): AdmissionMetrics {
  return {
    decisions: new BatchedCounter({
      name: 'portcullis_admission_decisions_total',
      help: 'Admission gate decisions by gate, user type and result (pass or refuse).',
      labelNames: ['gate', 'user_type', 'result'] as const,
      registers: [registry],
    }),
    latency: new Histogram({
      name: 'portcullis_admission_decision_seconds',
      help: 'Time to decide admission (all gates).',
      labelNames: ['result'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    settlements: new BatchedCounter({
      name: 'portcullis_admission_settlements_total',
      help: 'Settlements of admitted requests by outcome.',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
  };
}
