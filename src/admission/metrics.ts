/**
 * Prometheus metrics of admission decisions, registered on the registry the composition root owns.
 * The counters are batched (core/batched-counter.ts): every request passes several gates, and
 * prom-client would hash a label set for each.
 */
import { Histogram, type Registry } from 'prom-client';
import { BatchedCounter, type CounterSeries } from '../core/batched-counter.js';
import type { PrincipalUserType } from '../identity/principal.js';
import type { GateName } from './types.js';

export interface AdmissionMetrics {
  decisions: BatchedCounter<'gate' | 'user_type' | 'result'>;
  /** One decision; the series of each (gate, user type, result) is looked up once and kept. */
  decision(gate: GateName, userType: PrincipalUserType, result: 'pass' | 'refuse'): void;
  latency: Histogram<'result'>;
  settlements: BatchedCounter<'outcome'>;
}

export function createAdmissionMetrics(registry: Registry): AdmissionMetrics {
  const decisions = new BatchedCounter<'gate' | 'user_type' | 'result'>({
    name: 'portcullis_admission_decisions_total',
    help: 'Admission gate decisions by gate, user type and result (pass or refuse).',
    labelNames: ['gate', 'user_type', 'result'] as const,
    registers: [registry],
  });
  // Gates, types and results are small closed sets: nested maps, so no key string is built per call.
  const series = new Map<GateName, Map<PrincipalUserType, Record<'pass' | 'refuse', CounterSeries>>>();
  return {
    decisions,
    decision(gate, userType, result) {
      let byType = series.get(gate);
      if (byType === undefined) {
        byType = new Map();
        series.set(gate, byType);
      }
      let pair = byType.get(userType);
      if (pair === undefined) {
        pair = {
          pass: decisions.series(`${gate}:${userType}:pass`, { gate, user_type: userType, result: 'pass' }),
          refuse: decisions.series(`${gate}:${userType}:refuse`, { gate, user_type: userType, result: 'refuse' }),
        };
        byType.set(userType, pair);
      }
      pair[result].inc();
    },
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
