/** Prometheus counters for the model gateway: tokens and cost per model, requests by outcome. */
import { Counter, type Registry } from 'prom-client';

export class ModelMetrics {
  readonly tokens: Counter<'model' | 'direction'>;
  readonly cost: Counter<'model'>;
  readonly requests: Counter<'model' | 'outcome'>;
  readonly fallbacks: Counter<'model'>;

  constructor(registry: Registry) {
    this.tokens = new Counter({ name: 'portcullis_model_tokens_total', help: 'Tokens metered per model', labelNames: ['model', 'direction'] as const, registers: [registry] });
    this.cost = new Counter({ name: 'portcullis_model_cost_micros_total', help: 'Cost metered per model in micro-units', labelNames: ['model'] as const, registers: [registry] });
    this.requests = new Counter({ name: 'portcullis_model_requests_total', help: 'Model requests by settlement outcome', labelNames: ['model', 'outcome'] as const, registers: [registry] });
    this.fallbacks = new Counter({ name: 'portcullis_model_fallbacks_total', help: 'Upstream attempts that moved to the next model', labelNames: ['model'] as const, registers: [registry] });
  }
}
