/** Contract: the leased work queue. */
import { describe, expect, it } from 'vitest';
import { REQUEUE_OUTBOX_TYPE, type RequeueOutboxEvent } from '../port.js';
import { expectInvalidArgument, unique, type ContractContext } from './context.js';

export function queueContract(ctx: ContractContext): void {
  describe('work queue', () => {
    it('is FIFO, counts load and completes only for the holder', async () => {
      const q = unique('queue');
      for (const id of ['a', 'b', 'c']) expect((await ctx.state.enqueue(q, { id, payload: `p-${id}` })).ok).toBe(true);
      expect(await ctx.state.queueLoad(q)).toEqual({ queued: 3, inFlight: 0 });
      const first = await ctx.state.claim(q, 'w1', 60_000);
      expect(first).toMatchObject({ id: 'a', payload: 'p-a', workerId: 'w1', attempts: 1 });
      const second = await ctx.state.claim(q, 'w2', 60_000);
      expect(second?.id).toBe('b');
      expect(await ctx.state.queueLoad(q)).toEqual({ queued: 1, inFlight: 2 });
      expect(await ctx.state.complete(q, 'a', 'w2')).toBe(false);
      expect(await ctx.state.complete(q, 'a', 'w1')).toBe(true);
      expect(await ctx.state.complete(q, 'a', 'w1')).toBe(false);
      expect(await ctx.state.queueLoad(q)).toEqual({ queued: 1, inFlight: 1 });
      expect((await ctx.state.claim(q, 'w1', 60_000))?.id).toBe('c');
      expect(await ctx.state.claim(q, 'w1', 60_000)).toBeNull();
    });

    it('refuses a duplicate item id while it is queued or in flight', async () => {
      const q = unique('queue');
      expect(await ctx.state.enqueue(q, { id: 'x', payload: '1' })).toEqual({ ok: true, depth: 1 });
      expect(await ctx.state.enqueue(q, { id: 'x', payload: '2' })).toEqual({ ok: false, reason: 'duplicate' });
      await ctx.state.claim(q, 'w', 60_000);
      expect(await ctx.state.enqueue(q, { id: 'x', payload: '3' })).toEqual({ ok: false, reason: 'duplicate' });
      await ctx.state.complete(q, 'x', 'w');
      expect((await ctx.state.enqueue(q, { id: 'x', payload: '4' })).ok).toBe(true);
    });

    it('never exceeds maxLoad under concurrent guarded enqueues', async () => {
      const q = unique('queue');
      await ctx.state.enqueue(q, { id: 'pre', payload: '' });
      await ctx.state.claim(q, 'w', 60_000);
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => ctx.state.enqueue(q, { id: `t${i}`, payload: 'x' }, { maxLoad: 20 })),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(19);
      const refused = results.find((r) => !r.ok);
      expect(refused).toEqual({ ok: false, reason: 'full', load: 20 });
      expect(await ctx.state.queueLoad(q)).toEqual({ queued: 19, inFlight: 1 });
    });

    it('renews only the holder’s live lease and requeues lapsed items at the head', async () => {
      const q = unique('queue');
      await ctx.state.enqueue(q, { id: 'lapses', payload: '1' });
      await ctx.state.enqueue(q, { id: 'kept', payload: '2' });
      await ctx.state.enqueue(q, { id: 'waiting', payload: '3' });
      const lapsing = await ctx.state.claim(q, 'w1', 150);
      const kept = await ctx.state.claim(q, 'w2', 150);
      expect(lapsing?.leaseExpiresAt).toBeGreaterThan(0);
      expect(await ctx.state.renew(q, 'kept', 'w1', 60_000)).toBe(false);
      expect(await ctx.state.renew(q, 'kept', 'w2', 60_000)).toBe(true);
      expect(kept?.id).toBe('kept');
      expect(await ctx.state.requeueExpired(q)).toBe(0);
      await ctx.advance(250);
      // Lapsed: no renewal, and the item goes back to the head, ahead of older waiting work.
      expect(await ctx.state.renew(q, 'lapses', 'w1', 60_000)).toBe(false);
      expect(await ctx.state.requeueExpired(q)).toBe(1);
      expect(await ctx.state.queueLoad(q)).toEqual({ queued: 2, inFlight: 1 });
      expect(await ctx.state.complete(q, 'lapses', 'w1')).toBe(false);
      const again = await ctx.state.claim(q, 'w3', 60_000);
      expect(again).toMatchObject({ id: 'lapses', payload: '1', workerId: 'w3', attempts: 2 });
      expect(await ctx.state.complete(q, 'lapses', 'w3')).toBe(true);
      expect((await ctx.state.claim(q, 'w3', 60_000))?.id).toBe('waiting');
    });

    it('lets a holder complete a lapsed lease that nobody has requeued yet', async () => {
      const q = unique('queue');
      await ctx.state.enqueue(q, { id: 'slow', payload: '' });
      await ctx.state.claim(q, 'w', 100);
      await ctx.advance(200);
      expect(await ctx.state.complete(q, 'slow', 'w')).toBe(true);
      expect(await ctx.state.requeueExpired(q)).toBe(0);
      expect(await ctx.state.queueLoad(q)).toEqual({ queued: 0, inFlight: 0 });
    });

    it('tells where an item is: queued, held by its worker, back in the queue after a lapse, absent once completed', async () => {
      const q = unique('queue');
      expect(await ctx.state.queueItemState(q, 'x')).toEqual({ state: 'absent' });
      await ctx.state.enqueue(q, { id: 'x', payload: '' });
      expect(await ctx.state.queueItemState(q, 'x')).toEqual({ state: 'queued' });
      await ctx.state.claim(q, 'w1', 100);
      expect(await ctx.state.queueItemState(q, 'x')).toEqual({ state: 'held', workerId: 'w1' });
      await ctx.advance(200);
      // Lapsed but not requeued: still held (the holder may still finish it).
      expect(await ctx.state.queueItemState(q, 'x')).toEqual({ state: 'held', workerId: 'w1' });
      expect(await ctx.state.requeueExpired(q)).toBe(1);
      expect(await ctx.state.queueItemState(q, 'x')).toEqual({ state: 'queued' });
      await ctx.state.claim(q, 'w2', 60_000);
      expect(await ctx.state.queueItemState(q, 'x')).toEqual({ state: 'held', workerId: 'w2' });
      expect(await ctx.state.complete(q, 'x', 'w2')).toBe(true);
      expect(await ctx.state.queueItemState(q, 'x')).toEqual({ state: 'absent' });
      await expectInvalidArgument(ctx.state.queueItemState('q{x}', 'x'));
      await expectInvalidArgument(ctx.state.queueItemState(q, ''));
    });

    it('hands each item to exactly one of many concurrent claimers', async () => {
      const q = unique('queue');
      for (let i = 0; i < 20; i += 1) await ctx.state.enqueue(q, { id: `i${i}`, payload: '' });
      const claims = await Promise.all(Array.from({ length: 50 }, (_, i) => ctx.state.claim(q, `w${i}`, 60_000)));
      const ids = claims.flatMap((c) => (c === null ? [] : [c.id]));
      expect(ids).toHaveLength(20);
      expect(new Set(ids).size).toBe(20);
    });

    it('rejects malformed arguments', async () => {
      await expectInvalidArgument(ctx.state.enqueue('q{x}', { id: 'a', payload: '' }));
      await expectInvalidArgument(ctx.state.enqueue('q', { id: '', payload: '' }));
      await expectInvalidArgument(ctx.state.enqueue('q', { id: 'a', payload: 'x'.repeat(256 * 1024 + 1) }));
      await expectInvalidArgument(ctx.state.claim('q', 'w', 0));
    });
  });
}

export function outboxContract(ctx: ContractContext): void {
  describe('queue outbox', () => {
    it('writes an event only together with a successful enqueue', async () => {
      const q = unique('queue');
      expect((await ctx.state.enqueue(q, { id: 'a', payload: 'p' }, { maxLoad: 1 }, 'event-a')).ok).toBe(true);
      // Refused (full, then duplicate): neither task nor event.
      expect((await ctx.state.enqueue(q, { id: 'b', payload: 'p' }, { maxLoad: 1 }, 'event-b')).ok).toBe(false);
      expect((await ctx.state.enqueue(q, { id: 'a', payload: 'p' }, undefined, 'event-a2')).ok).toBe(false);
      expect((await ctx.state.enqueue(q, { id: 'c', payload: 'p' })).ok).toBe(true);
      expect((await ctx.state.enqueue(q, { id: 'd', payload: 'p' }, undefined, 'event-d')).ok).toBe(true);
      const entries = await ctx.state.readOutbox(q, 10);
      expect(entries.map((e) => e.event)).toEqual(['event-a', 'event-d']);
      expect(new Set(entries.map((e) => e.id)).size).toBe(2);
    });

    it('writes a completion event only when the completion happens', async () => {
      const q = unique('queue');
      await ctx.state.enqueue(q, { id: 'a', payload: 'p' });
      await ctx.state.claim(q, 'w1', 60_000);
      expect(await ctx.state.complete(q, 'a', 'w2', 'done-by-w2')).toBe(false);
      expect(await ctx.state.complete(q, 'a', 'w1', 'done-by-w1')).toBe(true);
      expect(await ctx.state.complete(q, 'a', 'w1', 'done-again')).toBe(false);
      expect((await ctx.state.readOutbox(q, 10)).map((e) => e.event)).toEqual(['done-by-w1']);
      await expectInvalidArgument(ctx.state.complete(q, 'a', 'w1', 'x'.repeat(256 * 1024 + 1)));
    });

    it('writes one requeue event per lapsed item moved back, only when asked, in lapse order', async () => {
      const q = unique('queue');
      for (const id of ['first', 'second', 'kept']) await ctx.state.enqueue(q, { id, payload: 'p' });
      await ctx.state.claim(q, 'w1', 100);
      await ctx.state.claim(q, 'w2', 150);
      await ctx.state.claim(q, 'w3', 60_000);
      const before = await ctx.state.now();
      await ctx.advance(250);
      expect(await ctx.state.requeueExpired(q, { outbox: true })).toBe(2);
      // Nothing left to move: no further entries.
      expect(await ctx.state.requeueExpired(q, { outbox: true })).toBe(0);
      const events = (await ctx.state.readOutbox(q, 10)).map((e) => JSON.parse(e.event) as RequeueOutboxEvent);
      expect(events.map(({ at: _at, ...rest }) => rest)).toEqual([
        { type: REQUEUE_OUTBOX_TYPE, itemId: 'first', workerId: 'w1', attempts: 1 },
        { type: REQUEUE_OUTBOX_TYPE, itemId: 'second', workerId: 'w2', attempts: 1 },
      ]);
      for (const event of events) expect(Number.isSafeInteger(event.at) && event.at >= before + 250).toBe(true);
      // The next lapse of the same item is a new requeue with a higher attempt count.
      await ctx.state.claim(q, 'w4', 100);
      await ctx.advance(200);
      expect(await ctx.state.requeueExpired(q)).toBe(1);
      expect(await ctx.state.readOutbox(q, 10)).toHaveLength(2);
      await ctx.state.claim(q, 'w5', 100);
      await ctx.advance(200);
      expect(await ctx.state.requeueExpired(q, { outbox: true })).toBe(1);
      const last = (await ctx.state.readOutbox(q, 10)).map((e) => JSON.parse(e.event) as RequeueOutboxEvent)[2];
      expect(last).toMatchObject({ itemId: 'first', workerId: 'w5', attempts: 3 });
    });

    it('keeps entries until acknowledged, oldest first, bounded per read', async () => {
      const q = unique('queue');
      for (let i = 0; i < 5; i += 1) await ctx.state.enqueue(q, { id: `t${i}`, payload: '' }, undefined, `e${i}`);
      const first = await ctx.state.readOutbox(q, 2);
      expect(first.map((e) => e.event)).toEqual(['e0', 'e1']);
      expect(await ctx.state.readOutbox(q, 2)).toEqual(first);
      expect(await ctx.state.ackOutbox(q, first.map((e) => e.id))).toBe(2);
      expect(await ctx.state.ackOutbox(q, first.map((e) => e.id))).toBe(0);
      expect(await ctx.state.ackOutbox(q, ['not-an-id'])).toBe(0);
      expect((await ctx.state.readOutbox(q, 10)).map((e) => e.event)).toEqual(['e2', 'e3', 'e4']);
      expect(await ctx.state.readOutbox(unique('queue'), 10)).toEqual([]);
      await expectInvalidArgument(ctx.state.readOutbox(q, 0));
      await expectInvalidArgument(ctx.state.readOutbox(q, 1001));
    });
  });
}
