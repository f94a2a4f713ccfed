import { describe, expect, it } from 'vitest';
import type { Db } from '../../store/db/schema.js';
import { TestBus } from '../../identity/cache/testing.js';
import { BudgetCache, BUDGETS_CHANNEL, type BudgetLoader } from './budget-cache.js';
import type { BudgetDefinition } from './definitions.js';

const ORG = 'org_cache_test_0001';

function definition(cap: number): BudgetDefinition {
  return { orgId: ORG, subject: { kind: 'org', id: ORG }, metric: 'cost', period: 'month', cap, alertThresholds: [] };
}

/** A loader whose answers the test releases by hand, to order slow and fast loads. */
class ManualLoader implements BudgetLoader {
  rows: BudgetDefinition[] = [];
  private readonly waiting: Array<() => void> = [];
  hold = false;
  private async answer(): Promise<BudgetDefinition[]> {
    const snapshot = [...this.rows];
    if (this.hold) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return snapshot;
  }
  all(): Promise<BudgetDefinition[]> {
    return this.answer();
  }
  org(): Promise<BudgetDefinition[]> {
    return this.answer();
  }
  releaseOldestLast(): void {
    for (const resolve of this.waiting.splice(0).reverse()) resolve();
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

describe('budget cache', () => {
  it('a slow load that started before a newer one never overwrites it', async () => {
    const loader = new ManualLoader();
    const cache = new BudgetCache({ db: {} as Db, loader, pubsub: new TestBus(), refreshMs: 0 });
    await cache.start();
    loader.rows = [definition(100)];
    loader.hold = true;
    const stale = cache.reloadAll();
    loader.rows = [definition(200)];
    const fresh = cache.reloadOrg(ORG);
    // The newer load answers first, then the stale full reload lands.
    loader.releaseOldestLast();
    await Promise.all([stale, fresh]);
    expect(cache.rulesFor(ORG, 'org', ORG)).toEqual([{ metric: 'cost', period: 'month', cap: 200, alertThresholds: [] }]);
    await cache.stop();
  });

  it('a missed announcement is healed by the next full reload; a heard one applies at once', async () => {
    const loader = new ManualLoader();
    const bus = new TestBus();
    const cache = new BudgetCache({ db: {} as Db, loader, pubsub: bus, refreshMs: 0 });
    await cache.start();
    loader.rows = [definition(300)];
    bus.dropping = true;
    await bus.publish(BUDGETS_CHANNEL, ORG);
    await settle();
    expect(cache.rulesFor(ORG, 'org', ORG)).toEqual([]);
    expect(cache.hasRules(ORG)).toBe(false);
    await cache.reloadAll();
    expect(cache.rulesFor(ORG, 'org', ORG)[0]?.cap).toBe(300);
    // Requests of an org without budgets skip resolving lines: the answer must follow the rows.
    expect(cache.hasRules(ORG)).toBe(true);
    bus.dropping = false;
    loader.rows = [];
    await bus.publish(BUDGETS_CHANNEL, ORG);
    await settle();
    expect(cache.rulesFor(ORG, 'org', ORG)).toEqual([]);
    expect(cache.hasRules(ORG)).toBe(false);
    // Anything that is not an org id is ignored.
    await bus.publish(BUDGETS_CHANNEL, 'not an id {}');
    await cache.stop();
  });

  it('keeps each org and each subject kind apart, even where ids coincide', async () => {
    const loader = new ManualLoader();
    const cache = new BudgetCache({ db: {} as Db, loader, pubsub: new TestBus(), refreshMs: 0 });
    const rule = (orgId: string, kind: 'org' | 'user' | 'key', id: string, cap: number): BudgetDefinition => ({ orgId, subject: { kind, id }, metric: 'requests', period: 'day', cap, alertThresholds: [] });
    const other = 'org_cache_test_0002';
    loader.rows = [rule(ORG, 'user', 'same_id', 1), rule(ORG, 'key', 'same_id', 2), rule(other, 'user', 'same_id', 3)];
    await cache.start();
    expect(cache.rulesFor(ORG, 'user', 'same_id').map((r) => r.cap)).toEqual([1]);
    expect(cache.rulesFor(ORG, 'key', 'same_id').map((r) => r.cap)).toEqual([2]);
    expect(cache.rulesFor(ORG, 'org', 'same_id')).toEqual([]);
    expect(cache.rulesFor(other, 'user', 'same_id').map((r) => r.cap)).toEqual([3]);
    expect(cache.rulesFor(other, 'key', 'same_id')).toEqual([]);
    expect([cache.hasRules(ORG), cache.hasRules(other), cache.hasRules('org_without_rows')]).toEqual([true, true, false]);
    // An org whose rows are all gone has no rules left, whatever kinds it had.
    loader.rows = [rule(ORG, 'user', 'same_id', 1)];
    await cache.reloadAll();
    expect(cache.hasRules(other)).toBe(false);
    expect(cache.rulesFor(other, 'user', 'same_id')).toEqual([]);
    expect(cache.rulesFor(ORG, 'key', 'same_id')).toEqual([]);
    await cache.stop();
  });
});
