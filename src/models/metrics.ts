/**
 * Prometheus counters for the model gateway: tokens and cost per model, requests by outcome.
 * Labelled children are looked up once per model and kept, so a call costs a few additions rather
 * than a label-set hash per counter (prom-client hashes the label object on every labelled inc).
 */
import { Counter, type Registry } from 'prom-client';
import type { Usage } from './pricing.js';

interface Increment {
  inc(value?: number): void;
}

interface PerModel {
  input: Increment;
  output: Increment;
  cost: Increment;
  fallbacks: Increment;
  outcomes: Map<string, Increment>;
}

/** Distinct models kept; aliases are config or per-org names, so this is a guard, not a limit in practice. */
const MAX_MODELS = 10_000;

export class ModelMetrics {
  readonly tokens: Counter<'model' | 'direction'>;
  readonly cost: Counter<'model'>;
  readonly requests: Counter<'model' | 'outcome'>;
  readonly fallbacks: Counter<'model'>;
  readonly #models = new Map<string, PerModel>();

  constructor(registry: Registry) {
    this.tokens = new Counter({ name: 'portcullis_model_tokens_total', help: 'Tokens metered per model', labelNames: ['model', 'direction'] as const, registers: [registry] });
    this.cost = new Counter({ name: 'portcullis_model_cost_micros_total', help: 'Cost metered per model in micro-units', labelNames: ['model'] as const, registers: [registry] });
    this.requests = new Counter({ name: 'portcullis_model_requests_total', help: 'Model requests by settlement outcome', labelNames: ['model', 'outcome'] as const, registers: [registry] });
    this.fallbacks = new Counter({ name: 'portcullis_model_fallbacks_total', help: 'Upstream attempts that moved to the next model', labelNames: ['model'] as const, registers: [registry] });
  }

  #of(model: string): PerModel {
    let entry = this.#models.get(model);
    if (entry === undefined) {
      if (this.#models.size >= MAX_MODELS) this.#models.clear();
      entry = {
        input: this.tokens.labels({ model, direction: 'input' }),
        output: this.tokens.labels({ model, direction: 'output' }),
        cost: this.cost.labels({ model }),
        fallbacks: this.fallbacks.labels({ model }),
        outcomes: new Map(),
      };
      this.#models.set(model, entry);
    }
    return entry;
  }

  /** A request ended with `outcome` (a settlement kind, or `upstream_failure` / `upstream_refused`). */
  outcome(model: string, outcome: string): void {
    const entry = this.#of(model);
    let counter = entry.outcomes.get(outcome);
    if (counter === undefined) {
      counter = this.requests.labels({ model, outcome });
      entry.outcomes.set(outcome, counter);
    }
    counter.inc();
  }

  settled(model: string, outcome: string, usage: Usage, billedMicros: number): void {
    const entry = this.#of(model);
    this.outcome(model, outcome);
    entry.input.inc(usage.inputTokens);
    entry.output.inc(usage.outputTokens);
    entry.cost.inc(billedMicros);
  }

  fallback(model: string): void {
    this.#of(model).fallbacks.inc();
  }
}
