import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BatchedCounter } from './batched-counter.js';

async function valueOf(registry: Registry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric as { values?: { labels: Record<string, string>; value: number }[] } | undefined)?.values ?? [];
  return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
}

describe('batched counter', () => {
  it('shows exact sums at every collection, per label set, and keeps counting after', async () => {
    const registry = new Registry();
    const counter = new BatchedCounter({ name: 'test_total', help: 'h', labelNames: ['route'] as const, registers: [registry] });
    const a = counter.series('a', { route: '/a' });
    const b = counter.series('b', { route: '/b' });
    for (let i = 0; i < 1000; i += 1) a.inc();
    b.inc(5);
    expect(counter.series('a', { route: '/a' })).toBe(a);
    expect(await valueOf(registry, 'test_total', { route: '/a' })).toBe(1000);
    expect(await valueOf(registry, 'test_total', { route: '/b' })).toBe(5);
    a.inc(2);
    expect(await valueOf(registry, 'test_total', { route: '/a' })).toBe(1002);
    expect(await registry.metrics()).toContain('test_total{route="/a"} 1002');
  });

  it('takes prom-client style label objects too, one series per distinct set', async () => {
    const registry = new Registry();
    const counter = new BatchedCounter({ name: 'pair_total', help: 'h', labelNames: ['a', 'b'] as const, registers: [registry] });
    counter.inc({ a: 'x', b: 'y' });
    counter.inc({ b: 'y', a: 'x' }, 2);
    counter.inc({ a: 'x', b: 'z' });
    expect(await valueOf(registry, 'pair_total', { a: 'x', b: 'y' })).toBe(3);
    expect(await valueOf(registry, 'pair_total', { a: 'x', b: 'z' })).toBe(1);
  });
});
