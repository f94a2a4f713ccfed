/**
 * Prometheus counters for the model gateway: tokens and cost per model, requests by outcome.
 * They are batched (core/batched-counter.ts): a call adds to plain numbers kept per model, and the
 * sums reach prom-client at each scrape.
 */
import type { Registry } from 'prom-client';
import { BatchedCounter, type CounterSeries } from '../core/batched-counter.js';
import type { Usage } from './pricing.js';

interface PerModel {
  input: CounterSeries;
  output: CounterSeries;
  cost: CounterSeries;
  fallbacks: CounterSeries;
  outcomes: Map<string, CounterSeries>;
}

/** Distinct models kept; aliases are config or per-org names, so this is a guard, not a limit in practice. */
const MAX_MODELS = 10_000;

export class ModelMetrics {
  readonly #tokens: BatchedCounter<'model' | 'direction'>;
  readonly #cost: BatchedCounter<'model'>;
  readonly #requests: BatchedCounter<'model' | 'outcome'>;
  readonly #fallbacks: BatchedCounter<'model'>;
  readonly #models = new Map<string, PerModel>();

  constructor(registry: Registry) {
    this.#tokens = new BatchedCounter({ name: 'portcullis_model_tokens_total', help: 'Tokens metered per model', labelNames: ['model', 'direction'] as const, registers: [registry] });
    this.#cost = new BatchedCounter({ name: 'portcullis_model_cost_micros_total', help: 'Cost metered per model in micro-units', labelNames: ['model'] as const, registers: [registry] });
    this.#requests = new BatchedCounter({ name: 'portcullis_model_requests_total', help: 'Model requests by settlement outcome', labelNames: ['model', 'outcome'] as const, registers: [registry] });
    this.#fallbacks = new BatchedCounter({ name: 'portcullis_model_fallbacks_total', help: 'Upstream attempts that moved to the next model', labelNames: ['model'] as const, registers: [registry] });
  }

  #of(model: string): PerModel {
    let entry = this.#models.get(model);
    if (entry === undefined) {
      if (this.#models.size >= MAX_MODELS) this.#models.clear();
      entry = {
        input: this.#tokens.series(`${model}\u0000input`, { model, direction: 'input' }),
        output: this.#tokens.series(`${model}\u0000output`, { model, direction: 'output' }),
        cost: this.#cost.series(model, { model }),
        fallbacks: this.#fallbacks.series(model, { model }),
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
      counter = this.#requests.series(`${model}\u0000${outcome}`, { model, outcome });
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
