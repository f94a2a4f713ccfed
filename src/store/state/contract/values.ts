/** Contract: counters and one-time values. */
import { describe, expect, it } from 'vitest';
import { expectInvalidArgument, unique, type ContractContext } from './context.js';

export function valuesContract(ctx: ContractContext): void {
  describe('values and counters', () => {
    it('gets, sets, overwrites and deletes', async () => {
      const scope = unique('val');
      expect(await ctx.state.get(scope, 'k')).toBeNull();
      await ctx.state.set(scope, 'k', 'one');
      expect(await ctx.state.get(scope, 'k')).toBe('one');
      await ctx.state.set(scope, 'k', 'two');
      expect(await ctx.state.get(scope, 'k')).toBe('two');
      await ctx.state.delete(scope, 'k');
      expect(await ctx.state.get(scope, 'k')).toBeNull();
      await ctx.state.delete(scope, 'k');
    });

    it('honours a value ttl', async () => {
      const scope = unique('val');
      await ctx.state.set(scope, 'k', 'v', 150);
      expect(await ctx.state.get(scope, 'k')).toBe('v');
      await ctx.advance(250);
      expect(await ctx.state.get(scope, 'k')).toBeNull();
    });

    it('setIfAbsent succeeds for exactly one of many concurrent callers, and again after the ttl', async () => {
      const scope = unique('val');
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => ctx.state.setIfAbsent(scope, 'k', `v${i}`, 150)));
      expect(results.filter(Boolean)).toHaveLength(1);
      const winner = results.indexOf(true);
      expect(await ctx.state.get(scope, 'k')).toBe(`v${winner}`);
      await ctx.advance(250);
      expect(await ctx.state.setIfAbsent(scope, 'k', 'later', 1000)).toBe(true);
    });

    it('takeOnce hands a value to exactly one of many concurrent callers', async () => {
      const scope = unique('val');
      await ctx.state.set(scope, 'ticket', 'secret-value', 60_000);
      const results = await Promise.all(Array.from({ length: 100 }, () => ctx.state.takeOnce(scope, 'ticket')));
      expect(results.filter((r) => r === 'secret-value')).toHaveLength(1);
      expect(results.filter((r) => r === null)).toHaveLength(99);
      expect(await ctx.state.get(scope, 'ticket')).toBeNull();
    });

    it('takeOnce returns nothing after the ttl', async () => {
      const scope = unique('val');
      await ctx.state.set(scope, 'ticket', 'v', 150);
      await ctx.advance(250);
      expect(await ctx.state.takeOnce(scope, 'ticket')).toBeNull();
    });

    it('increments atomically with a ttl counted from the first increment', async () => {
      const scope = unique('cnt');
      const values = await Promise.all(Array.from({ length: 50 }, () => ctx.state.increment(scope, 'c', 2, 400)));
      expect(Math.max(...values)).toBe(100);
      expect(new Set(values).size).toBe(50);
      await ctx.advance(250);
      expect(await ctx.state.increment(scope, 'c', 1, 400)).toBe(101);
      // The later increment did not extend the ttl: 250 + 250 > 400 since the first.
      await ctx.advance(250);
      expect(await ctx.state.increment(scope, 'c', 1, 400)).toBe(1);
    });

    it('rejects malformed arguments', async () => {
      await expectInvalidArgument(ctx.state.set('s{', 'k', 'v'));
      await expectInvalidArgument(ctx.state.set('s', '', 'v'));
      await expectInvalidArgument(ctx.state.set('s', 'k', 'v', 0));
      await expectInvalidArgument(ctx.state.setIfAbsent('s', 'k', 'v', -5));
      await expectInvalidArgument(ctx.state.increment('s', 'k', 1.5, 1000));
      await expectInvalidArgument(ctx.state.set('s', 'k', 'x'.repeat(1024 * 1024 + 1)));
    });
  });
}
