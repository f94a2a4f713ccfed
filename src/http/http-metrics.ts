/**
 * Request counter and duration histogram of the HTTP shell, kept per (method, route, status): the
 * counter is batched (core/batched-counter.ts), the histogram observed per request. Routes are
 * patterns (or "unmatched"), so the label space is bounded.
 */
import { Histogram, type Registry } from 'prom-client';
import { BatchedCounter, type CounterSeries } from '../core/batched-counter.js';

interface Series {
  count: CounterSeries;
  duration: { observe(value: number): void };
}

export interface HttpMetrics {
  observe(method: string, route: string, status: number, seconds: number): void;
}

/** A guard against label explosion; (method, route pattern, status) stays far below it. */
const MAX_SERIES = 5_000;

export function createHttpMetrics(registry: Registry): HttpMetrics {
  const requests = new BatchedCounter({
    name: 'portcullis_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'portcullis_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5],
    registers: [registry],
  });
  const series = new Map<string, Series>();
  return {
    observe(method, route, status, seconds) {
      const key = `${method} ${status} ${route}`;
      let entry = series.get(key);
      if (entry === undefined) {
        if (series.size >= MAX_SERIES) series.clear();
        entry = { count: requests.series(key, { method, route, status: String(status) }), duration: duration.labels({ route }) };
        series.set(key, entry);
      }
      entry.count.inc();
      entry.duration.observe(seconds);
    },
  };
}
