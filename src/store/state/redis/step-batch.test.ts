/**
 * What the batcher does with answers it cannot use: a reply of the wrong shape or length fails the
 * steps it concerns with an internal store error, and never leaves a step waiting. (Batching
 * against a real server: test/distributed/step-batch-redis.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../core/errors.js';
import type { AdmitRequest, AdmitResult } from '../port.js';
import { admitSteps } from './admit-codec.js';
import { RedisKeys } from './keys.js';
import { StepBatcher } from './step-batch.js';

const request: AdmitRequest = { windows: { key: 'k', specs: [{ name: 'burst', limit: 5, windowMs: 1000 }] }, reservations: [] };
const okReply = ['ok', 0, 1_000, 1, 1, 4, 2_000, 0];

function batcherAnswering(reply: unknown): StepBatcher<AdmitRequest, AdmitResult> {
  return new StepBatcher(admitSteps(new RedisKeys('pc')), () => Promise.resolve(reply));
}

describe('StepBatcher answers', () => {
  it('fails every step when the batch reply has the wrong length', async () => {
    const batcher = batcherAnswering([okReply]);
    const outcomes = await Promise.allSettled([batcher.submit('s', request), batcher.submit('s', request)]);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(AppError);
    }
  });

  it('fails only the step whose own reply is malformed', async () => {
    const batcher = batcherAnswering([okReply, ['no such outcome', 0, 1_000, 0]]);
    const [good, bad] = await Promise.allSettled([batcher.submit('s', request), batcher.submit('s', request)]);
    expect(good).toMatchObject({ status: 'fulfilled', value: { ok: true, now: 1_000 } });
    expect(bad?.status).toBe('rejected');
  });

  it('fails every step when the reply is not a list at all', async () => {
    const batcher = batcherAnswering('OK');
    await expect(batcher.submit('s', request)).rejects.toBeInstanceOf(AppError);
  });
});
