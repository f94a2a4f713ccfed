/**
 * Batched admit and settle steps against a real Redis: steps of one scope made in one turn of the
 * event loop leave as one script call, and each still gets exactly the answer it would have had
 * alone, in the order the steps were made. The script calls are counted at the runner, which is
 * the real script on a real connection.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deletePrefix, REDIS_URL } from '../support/redis.js';
import { isHotStateUnavailable, type AdmitRequest, type AdmitResult } from '../../src/store/state/index.js';
import { admitSteps, settleSteps } from '../../src/store/state/redis/admit-codec.js';
import { settleManyScript } from '../../src/store/state/redis/budget-scripts.js';
import { admitScript } from '../../src/store/state/redis/admit-script.js';
import { MAX_KEYS_PER_CALL, MAX_STEPS_PER_CALL, StepBatcher } from '../../src/store/state/redis/step-batch.js';
import { guarded } from '../../src/store/state/redis/connection.js';
import { RedisKeys } from '../../src/store/state/redis/keys.js';
import { RedisHotState } from '../../src/store/state/redis/redis-hot-state.js';

const PREFIX = `pc-test-batch-${randomBytes(5).toString('hex')}`;
const HOUR = 3_600_000;

describe('admit steps batched per turn of the event loop (real Redis)', () => {
  let redis: Redis;
  let calls: number;
  let batcher: StepBatcher<AdmitRequest, AdmitResult>;

  beforeAll(async () => {
    redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    batcher = new StepBatcher(admitSteps(new RedisKeys(PREFIX)), (keys, args) => {
      calls += 1;
      return guarded(() => admitScript.run(redis, keys, args));
    });
  });
  afterAll(async () => {
    await redis.quit();
    await deletePrefix(PREFIX);
  });

  const scope = (): string => `s-${randomBytes(4).toString('hex')}`;
  const windowed = (key: string, limit: number): AdmitRequest => ({ windows: { key, specs: [{ name: 'burst', limit, windowMs: 60_000 }] }, reservations: [] });

  it('sends the steps of one turn as one call per 32, each answered in the order made', async () => {
    calls = 0;
    const s = scope();
    const results = await Promise.all(Array.from({ length: 40 }, () => batcher.submit(s, windowed('caller', 25))));
    expect(calls).toBe(Math.ceil(40 / MAX_STEPS_PER_CALL));
    // Exactly the first 25 made were admitted, as 40 separate calls in that order would be.
    expect(results.map((r) => r.ok)).toEqual([...Array<boolean>(25).fill(true), ...Array<boolean>(15).fill(false)]);
    expect(results.slice(25).every((r) => !r.ok && r.refusedBy === 'windows')).toBe(true);
    expect(results.map((r) => r.windows?.remaining)).toEqual(Array.from({ length: 40 }, (_, i) => Math.max(0, 24 - i)));
  });

  it('keeps steps of separate turns and of separate scopes in separate calls', async () => {
    calls = 0;
    const a = scope();
    const b = scope();
    await Promise.all([batcher.submit(a, windowed('k', 5)), batcher.submit(b, windowed('k', 5)), batcher.submit(a, windowed('k', 5))]);
    expect(calls).toBe(2);
    calls = 0;
    for (let i = 0; i < 3; i++) await batcher.submit(a, windowed('k', 5));
    expect(calls).toBe(3);
    // Two in the first turn and three since: the fifth hit was the last one allowed.
    expect((await batcher.submit(a, windowed('k', 5))).ok).toBe(false);
  });

  it('closes a batch once it names 256 keys, however few steps it has', async () => {
    calls = 0;
    const s = scope();
    // Eight windows: 16 keys a step (log and total per window), after the batch's reservation index.
    const specs = Array.from({ length: 8 }, (_, i) => ({ name: `w${i}`, limit: 100, windowMs: 60_000 }));
    const steps = 20;
    const results = await Promise.all(Array.from({ length: steps }, (_, i) => batcher.submit(s, { windows: { key: `c${i}`, specs }, reservations: [] })));
    expect(results.every((r) => r.ok)).toBe(true);
    const stepsPerCall = Math.ceil((MAX_KEYS_PER_CALL - 1) / 16);
    expect(calls).toBe(Math.ceil(steps / stepsPerCall));
  });

  it('lets a later step of the batch see what an earlier one reserved', async () => {
    calls = 0;
    const s = scope();
    const lines = [{ key: 'org-cost', cap: 250, expiresAt: Date.now() + HOUR }];
    const reserve = (id: string): AdmitRequest => ({ reservations: [{ reservationId: id, amounts: [100], lines, ttlMs: 60_000 }] });
    const [first, second, again, third] = await Promise.all([batcher.submit(s, reserve('r1')), batcher.submit(s, reserve('r2')), batcher.submit(s, reserve('r1')), batcher.submit(s, reserve('r3'))]);
    expect(calls).toBe(1);
    expect(first.ok).toBe(true);
    expect(second.ok).toBe(true);
    expect(again).toMatchObject({ ok: false, refusedBy: 'duplicate', reservation: 0 });
    expect(third).toMatchObject({ ok: false, refusedBy: 'exceeded', key: 'org-cost', cap: 250, used: 0, reserved: 200 });
  });

  it('rejects every step of a batch whose call fails, with the store unavailable', async () => {
    const closed = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
    await closed.connect();
    closed.disconnect();
    const unreachable = new StepBatcher(admitSteps(new RedisKeys(PREFIX)), (keys, args) => guarded(() => admitScript.run(closed, keys, args)));
    const s = scope();
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => unreachable.submit(s, windowed('k', 5))));
    expect(outcomes.map((o) => o.status)).toEqual(Array<string>(5).fill('rejected'));
    for (const o of outcomes) if (o.status === 'rejected') expect(isHotStateUnavailable(o.reason)).toBe(true);
  });
});

describe('RedisHotState settlements batched per turn of the event loop', () => {
  it('settles the calls of one turn in order, each told the usage after its own commit', async () => {
    const state = await RedisHotState.connect({ url: REDIS_URL, prefix: PREFIX });
    try {
      const s = `settle-${randomBytes(3).toString('hex')}`;
      const lines = [{ key: 'org-cost', cap: 1_000, expiresAt: Date.now() + HOUR }];
      for (const id of ['a', 'b', 'c']) expect((await state.reserve(s, { reservationId: id, amounts: [100], lines, ttlMs: 60_000 })).ok).toBe(true);
      let calls = 0;
      const settler = new StepBatcher(settleSteps(state.keys), (keys, args) => {
        calls += 1;
        return guarded(() => settleManyScript.run(state.client, keys, args));
      });
      const [first, second, retried, released] = await Promise.all([
        settler.submit(s, [{ reservationId: 'a', commit: [30] }]),
        settler.submit(s, [{ reservationId: 'b', commit: [50] }]),
        settler.submit(s, [{ reservationId: 'a', commit: [99] }]),
        settler.submit(s, [{ reservationId: 'c', commit: null }]),
      ]);
      expect(calls).toBe(1);
      expect(first).toEqual({ results: [{ ok: true, state: 'committed', amounts: [30] }], used: [{ key: 'org-cost', used: 30 }] });
      expect(second).toEqual({ results: [{ ok: true, state: 'committed', amounts: [50] }], used: [{ key: 'org-cost', used: 80 }] });
      // A settlement sent again gets the first answer and moves nothing, in the same batch too.
      expect(retried).toEqual({ results: [{ ok: true, state: 'already_committed', amounts: [30] }], used: [] });
      expect(released).toEqual({ results: [{ ok: true, state: 'released', amounts: [100] }], used: [] });
      expect(await state.budgetUsage(s, 'org-cost')).toEqual({ used: 80, reserved: 0 });
      // The adapter batches the same way: a settlement made through it after these is answered alike.
      expect(await state.settleReservations(s, [{ reservationId: 'b', commit: [1] }])).toEqual({ results: [{ ok: true, state: 'already_committed', amounts: [50] }], used: [] });
    } finally {
      await state.close();
    }
  });
});

describe('RedisHotState.admit under concurrency (batched)', () => {
  it('admits exactly the limit across two replicas making steps at once', async () => {
    const replicas = await Promise.all([1, 2].map(() => RedisHotState.connect({ url: REDIS_URL, prefix: PREFIX })));
    try {
      const s = `multi-${randomBytes(3).toString('hex')}`;
      const request: AdmitRequest = { windows: { key: 'caller', specs: [{ name: 'burst', limit: 70, windowMs: 60_000 }] }, reservations: [] };
      const results: AdmitResult[] = await Promise.all(Array.from({ length: 200 }, (_, i) => replicas[i % 2]!.admit(s, request)));
      expect(results.filter((r) => r.ok)).toHaveLength(70);
      expect(results.filter((r) => !r.ok && r.refusedBy === 'windows')).toHaveLength(130);
    } finally {
      await Promise.all(replicas.map((r) => r.close()));
    }
  });
});
