/** Contract: exact sliding windows. */
import { describe, expect, it } from 'vitest';
import type { WindowSpec } from '../port.js';
import { expectInvalidArgument, unique, type ContractContext } from './context.js';

export function windowsContract(ctx: ContractContext): void {
  describe('hitWindows', () => {
    it('admits exactly the limit and reports remaining on the tightest window', async () => {
      const scope = unique('win');
      const windows: WindowSpec[] = [
        { name: 'burst', limit: 3, windowMs: 60_000 },
        { name: 'hour', limit: 100, windowMs: 3_600_000 },
      ];
      const results = [];
      for (let i = 0; i < 4; i += 1) results.push(await ctx.state.hitWindows(scope, 'k', windows));
      expect(results.map((r) => r.allowed)).toEqual([true, true, true, false]);
      expect(results.map((r) => r.remaining)).toEqual([2, 1, 0, 0]);
      expect(results[0]?.window).toBe('burst');
      expect(results[3]?.window).toBe('burst');
      expect(results[0]?.retryAfterMs).toBe(0);
    });

    it('gives an exact resetAt and retryAfterMs from the oldest hit that must expire', async () => {
      const scope = unique('win');
      const windows = [{ name: 'w', limit: 2, windowMs: 5_000 }];
      const first = await ctx.state.hitWindows(scope, 'k', windows);
      await ctx.state.hitWindows(scope, 'k', windows);
      const refused = await ctx.state.hitWindows(scope, 'k', windows);
      expect(refused.allowed).toBe(false);
      expect(refused.resetAt).toBe(first.now + 5_000);
      expect(refused.retryAfterMs).toBe(refused.resetAt - refused.now);
      expect(refused.retryAfterMs).toBeGreaterThan(0);
    });

    it('consumes nothing on refusal, in any window', async () => {
      const scope = unique('win');
      const windows = [
        { name: 'small', limit: 2, windowMs: 60_000 },
        { name: 'large', limit: 10, windowMs: 60_000 },
      ];
      await ctx.state.hitWindows(scope, 'k', windows);
      await ctx.state.hitWindows(scope, 'k', windows);
      for (let i = 0; i < 5; i += 1) expect((await ctx.state.hitWindows(scope, 'k', windows)).allowed).toBe(false);
      // The large window saw only the two admitted hits.
      const large = await ctx.state.hitWindows(scope, 'k', [{ name: 'large', limit: 10, windowMs: 60_000 }]);
      expect(large.remaining).toBe(7);
    });

    it('reports the window that frees last when several refuse', async () => {
      const scope = unique('win');
      await ctx.state.hitWindows(scope, 'k', [{ name: 'long', limit: 1, windowMs: 50_000 }]);
      await ctx.state.hitWindows(scope, 'k', [{ name: 'short', limit: 1, windowMs: 10_000 }]);
      const refused = await ctx.state.hitWindows(scope, 'k', [
        { name: 'short', limit: 1, windowMs: 10_000 },
        { name: 'long', limit: 1, windowMs: 50_000 },
      ]);
      expect(refused.allowed).toBe(false);
      expect(refused.window).toBe('long');
    });

    it('counts cost in units and refuses a cost that does not fit', async () => {
      const scope = unique('win');
      const windows = [{ name: 'w', limit: 10, windowMs: 60_000 }];
      expect((await ctx.state.hitWindows(scope, 'k', windows, 7)).remaining).toBe(3);
      const refused = await ctx.state.hitWindows(scope, 'k', windows, 4);
      expect(refused.allowed).toBe(false);
      expect(refused.remaining).toBe(3);
      expect((await ctx.state.hitWindows(scope, 'k', windows, 3)).remaining).toBe(0);
      const peek = await ctx.state.hitWindows(scope, 'k', windows, 0);
      expect(peek.allowed).toBe(true);
      expect(peek.remaining).toBe(0);
    });

    it('slides: hits leave the window one by one, with no double burst at the edge', async () => {
      const scope = unique('win');
      const windows = [{ name: 'w', limit: 5, windowMs: 400 }];
      for (let i = 0; i < 3; i += 1) expect((await ctx.state.hitWindows(scope, 'k', windows)).allowed).toBe(true);
      await ctx.advance(200);
      for (let i = 0; i < 2; i += 1) expect((await ctx.state.hitWindows(scope, 'k', windows)).allowed).toBe(true);
      expect((await ctx.state.hitWindows(scope, 'k', windows)).allowed).toBe(false);
      // Past the first three hits' window but inside the last two's: only three units are back.
      await ctx.advance(250);
      const after = [];
      for (let i = 0; i < 4; i += 1) after.push((await ctx.state.hitWindows(scope, 'k', windows)).allowed);
      expect(after).toEqual([true, true, true, false]);
    });

    it('admits exactly the limit under 300 concurrent hits', async () => {
      const scope = unique('win');
      const windows = [
        { name: 'burst', limit: 50, windowMs: 60_000 },
        { name: 'hour', limit: 1000, windowMs: 3_600_000 },
      ];
      const results = await Promise.all(Array.from({ length: 300 }, () => ctx.state.hitWindows(scope, 'k', windows)));
      expect(results.filter((r) => r.allowed)).toHaveLength(50);
      const hour = await ctx.state.hitWindows(scope, 'k', [{ name: 'hour', limit: 1000, windowMs: 3_600_000 }], 0);
      expect(hour.remaining).toBe(950);
    });

    it('keeps keys and scopes apart', async () => {
      const scope = unique('win');
      const windows = [{ name: 'w', limit: 1, windowMs: 60_000 }];
      expect((await ctx.state.hitWindows(scope, 'a', windows)).allowed).toBe(true);
      expect((await ctx.state.hitWindows(scope, 'b', windows)).allowed).toBe(true);
      expect((await ctx.state.hitWindows(unique('win'), 'a', windows)).allowed).toBe(true);
      expect((await ctx.state.hitWindows(scope, 'a', windows)).allowed).toBe(false);
    });

    it('rejects malformed arguments', async () => {
      const windows = [{ name: 'w', limit: 1, windowMs: 1000 }];
      await expectInvalidArgument(ctx.state.hitWindows('a{b', 'k', windows));
      await expectInvalidArgument(ctx.state.hitWindows('a}b', 'k', windows));
      await expectInvalidArgument(ctx.state.hitWindows('', 'k', windows));
      await expectInvalidArgument(ctx.state.hitWindows('s', 'k', []));
      await expectInvalidArgument(ctx.state.hitWindows('s', 'k', [{ name: 'bad name', limit: 1, windowMs: 1000 }]));
      await expectInvalidArgument(ctx.state.hitWindows('s', 'k', [{ name: 'w', limit: 0, windowMs: 1000 }]));
      await expectInvalidArgument(ctx.state.hitWindows('s', 'k', [{ name: 'a', limit: 1, windowMs: 1000 }, { name: 'b', limit: 1, windowMs: 2000 }, { name: 'a', limit: 2, windowMs: 3000 }]));
      await expectInvalidArgument(ctx.state.hitWindows('s', 'k', windows, -1));
      await expectInvalidArgument(ctx.state.hitWindows('s', 'k', windows, 1.5));
    });
  });
}
