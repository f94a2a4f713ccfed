import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { AppError } from '../core/errors.js';
import { MemoryHotState, type HotState } from '../store/state/index.js';
import { InvalidatedCache } from './invalidated-cache.js';

const TTL = 30_000;
const STALE = 600_000;

/** A record store stand-in: values by key, a switch to make it fail, and a count of reads. */
class Records {
  readonly values = new Map<string, string>();
  reads = 0;
  failing = false;
  async read(key: string): Promise<string> {
    this.reads += 1;
    if (this.failing) throw new Error('connection refused');
    return this.values.get(key) ?? 'none';
  }
}

function cache(records: Records, pubsub: Pick<HotState, 'publish' | 'subscribe'>, clock: ManualClock, maxEntries = 100): InvalidatedCache<string> {
  return cacheLoading((key) => records.read(key), clock, { pubsub, maxEntries });
}

/** A cache over an arbitrary load (reads that hang, or answer once the test says so). */
function cacheLoading(load: (key: string) => Promise<string>, clock: ManualClock, extra: { pubsub?: Pick<HotState, 'publish' | 'subscribe'>; maxEntries?: number; loadTimeoutMs?: number } = {}): InvalidatedCache<string> {
  return new InvalidatedCache({ channel: 'test:cache', pubsub: extra.pubsub ?? new MemoryHotState({ clock }), clock, load, ttlMs: TTL, staleMs: STALE, maxEntries: extra.maxEntries ?? 100, what: 'test records', ...(extra.loadTimeoutMs === undefined ? {} : { loadTimeoutMs: extra.loadTimeoutMs }) });
}

async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('InvalidatedCache', () => {
  it('serves from memory within the TTL and reloads after it', async () => {
    const clock = new ManualClock();
    const records = new Records();
    const state = new MemoryHotState({ clock });
    const c = cache(records, state, clock);
    records.values.set('a', 'one');
    expect(await c.get('a')).toBe('one');
    records.values.set('a', 'two');
    clock.advance(TTL - 1);
    expect(await c.get('a')).toBe('one');
    expect(records.reads).toBe(1);
    clock.advance(1);
    expect(await c.get('a')).toBe('two');
    expect(records.reads).toBe(2);
  });

  it('an invalidation on one replica drops the entry on the other at once, and the message is the key alone', async () => {
    const clock = new ManualClock();
    const records = new Records();
    const state = new MemoryHotState({ clock });
    const messages: string[] = [];
    await state.subscribe('test:cache', (message) => messages.push(message));
    const [a, b] = [cache(records, state, clock), cache(records, state, clock)];
    await a.start();
    await b.start();
    records.values.set('org_1', 'secret-value-v1');
    expect(await a.get('org_1')).toBe('secret-value-v1');
    expect(await b.get('org_1')).toBe('secret-value-v1');
    records.values.set('org_1', 'secret-value-v2');
    await a.invalidate('org_1');
    await settle();
    expect(await b.get('org_1')).toBe('secret-value-v2');
    expect(await a.get('org_1')).toBe('secret-value-v2');
    expect(messages).toEqual(['org_1']);
    // After stop, a replica no longer hears invalidations (and keeps its entry until the TTL).
    await b.stop();
    records.values.set('org_1', 'secret-value-v3');
    await a.invalidate('org_1');
    await settle();
    expect(await b.get('org_1')).toBe('secret-value-v2');
    await a.stop();
  });

  it('the TTL bounds a lost invalidation message', async () => {
    const clock = new ManualClock();
    const records = new Records();
    const state = new MemoryHotState({ clock });
    const deaf = { publish: async () => undefined, subscribe: state.subscribe.bind(state) };
    const [a, b] = [cache(records, deaf, clock), cache(records, deaf, clock)];
    await a.start();
    await b.start();
    records.values.set('k', 'old');
    expect(await b.get('k')).toBe('old');
    records.values.set('k', 'new');
    await a.invalidate('k');
    await settle();
    expect(await b.get('k')).toBe('old');
    clock.advance(TTL);
    expect(await b.get('k')).toBe('new');
  });

  it('a failed publish is not an error for the writer', async () => {
    const clock = new ManualClock();
    const records = new Records();
    const broken = {
      publish: async () => {
        throw new Error('hot state down');
      },
      subscribe: async () => async () => undefined,
    };
    const c = cache(records, broken, clock);
    await c.get('k');
    await expect(c.invalidate('k')).resolves.toBeUndefined();
    await c.get('k');
    expect(records.reads).toBe(2);
  });

  it('concurrent misses share exactly one read', async () => {
    const clock = new ManualClock();
    const records = new Records();
    const c = cache(records, new MemoryHotState({ clock }), clock);
    const answers = await Promise.all(Array.from({ length: 50 }, () => c.get('k')));
    expect(new Set(answers)).toEqual(new Set(['none']));
    expect(records.reads).toBe(1);
  });

  it('a read in flight when its key is invalidated answers its callers but is never stored', async () => {
    const clock = new ManualClock();
    let release: (value: string) => void = () => undefined;
    let reads = 0;
    const c = cacheLoading(() => {
      reads += 1;
      return reads === 1 ? new Promise((resolve) => (release = resolve)) : Promise.resolve('fresh');
    }, clock);
    const early = c.get('k');
    await c.invalidate('k');
    release('read-before-the-change');
    expect(await early).toBe('read-before-the-change');
    expect(await c.get('k')).toBe('fresh');
    expect(reads).toBe(2);
  });

  it('record store down: cold is 503 dependency_unavailable; past the TTL the entry is served within the stale window, never after, never once invalidated', async () => {
    const clock = new ManualClock();
    const records = new Records();
    const c = cache(records, new MemoryHotState({ clock }), clock);
    records.failing = true;
    const cold = await c.get('cold').catch((error: unknown) => error);
    expect(cold).toBeInstanceOf(AppError);
    expect(cold).toMatchObject({ code: 'dependency_unavailable', status: 503 });

    records.failing = false;
    records.values.set('warm', 'kept');
    records.values.set('gone', 'removed-record');
    await c.get('warm');
    await c.get('gone');
    records.failing = true;
    clock.advance(TTL + 1);
    expect(await c.get('warm')).toBe('kept');
    await c.invalidate('gone');
    await expect(c.get('gone')).rejects.toMatchObject({ code: 'dependency_unavailable' });
    clock.advance(STALE);
    await expect(c.get('warm')).rejects.toMatchObject({ code: 'dependency_unavailable' });
  });

  it('a read that hangs counts as an outage: 503 after the load timeout, and the next caller reads again', async () => {
    const clock = new ManualClock();
    let reads = 0;
    const hangsOnce = () => {
      reads += 1;
      return reads === 1 ? new Promise<string>(() => undefined) : Promise.resolve('answered');
    };
    const c = cacheLoading(hangsOnce, clock, { loadTimeoutMs: 30 });
    await expect(c.get('k')).rejects.toMatchObject({ code: 'dependency_unavailable' });
    expect(await c.get('k')).toBe('answered');
  });

  it('holds at most maxEntries, dropping the oldest first', async () => {
    const clock = new ManualClock();
    const records = new Records();
    const c = cache(records, new MemoryHotState({ clock }), clock, 3);
    for (const key of ['a', 'b', 'c', 'd']) await c.get(key);
    expect(records.reads).toBe(4);
    await c.get('d');
    await c.get('b');
    expect(records.reads).toBe(4);
    await c.get('a');
    expect(records.reads).toBe(5);
  });
});
