/**
 * A Prometheus counter for the request hot path. prom-client hashes the label set on every `inc`,
 * even through a labelled child; here a request adds to a plain number held for its label set, and
 * the sums go to prom-client when the registry is collected (every scrape), so what `/metrics`
 * shows is exact. Keep the handle `series()` returns: incrementing it is one addition.
 */
import { Counter, type CounterConfiguration, type LabelValues } from 'prom-client';

export interface CounterSeries {
  inc(by?: number): void;
}

interface Pending extends CounterSeries {
  labels: LabelValues<string>;
  sum: number;
}

/** A guard against a label explosion; hot-path label sets are few (routes, models, outcomes). */
const MAX_SERIES = 10_000;

export class BatchedCounter<L extends string> {
  readonly counter: Counter<L>;
  readonly #series = new Map<string, Pending>();
  readonly #labelNames: readonly L[];

  constructor(config: Omit<CounterConfiguration<L>, 'collect'>) {
    this.#labelNames = config.labelNames ?? [];
    const series = this.#series;
    this.counter = new Counter<L>({
      ...config,
      collect() {
        for (const entry of series.values()) {
          if (entry.sum === 0) continue;
          this.inc(entry.labels as LabelValues<L>, entry.sum);
          entry.sum = 0;
        }
      },
    });
  }

  /** The series of one label set, by a key the caller builds once for it. */
  series(key: string, labels: LabelValues<L>): CounterSeries {
    let entry = this.#series.get(key);
    if (entry === undefined) {
      if (this.#series.size >= MAX_SERIES) this.#flushAndForget();
      const created: Pending = {
        labels,
        sum: 0,
        inc(by = 1) {
          created.sum += by;
        },
      };
      entry = created;
      this.#series.set(key, entry);
    }
    return entry;
  }

  /** Like prom-client's `inc(labels, by)`, keyed by the label values in declaration order. */
  inc(labels: LabelValues<L>, by = 1): void {
    let key = '';
    for (const name of this.#labelNames) key += `${String(labels[name] ?? '')}\u0000`;
    this.series(key, labels).inc(by);
  }

  #flushAndForget(): void {
    for (const entry of this.#series.values()) if (entry.sum !== 0) this.counter.inc(entry.labels as LabelValues<L>, entry.sum);
    this.#series.clear();
  }
}
