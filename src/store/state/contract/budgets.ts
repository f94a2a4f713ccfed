/** Contract: reservations against capped budget lines. */
import { describe, expect, it } from 'vitest';
import type { BudgetLine } from '../port.js';
import { expectInvalidArgument, unique, type ContractContext } from './context.js';

const FAR = Date.UTC(2100, 0, 1);

function line(key: string, cap: number): BudgetLine {
  return { key, cap, expiresAt: FAR };
}

export function budgetContract(ctx: ContractContext): void {
  describe('reserve / commit / release', () => {
    it('reserves, commits the actual amount and releases the rest', async () => {
      const scope = unique('bud');
      const lines = [line('org', 1000), line('user', 500)];
      expect(await ctx.state.reserve(scope, { reservationId: 'r1', amount: 300, lines, ttlMs: 60_000 })).toEqual({ ok: true });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 0, reserved: 300 });
      expect(await ctx.state.commit(scope, 'r1', 120)).toEqual({ ok: true, state: 'committed', amount: 120 });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 120, reserved: 0 });
      expect(await ctx.state.budgetUsage(scope, 'user')).toEqual({ used: 120, reserved: 0 });
      expect(await ctx.state.budgetUsage(scope, 'none')).toEqual({ used: 0, reserved: 0 });
    });

    it('is all or nothing across lines and names the refusing line', async () => {
      const scope = unique('bud');
      await ctx.state.reserve(scope, { reservationId: 'a', amount: 400, lines: [line('user', 500)], ttlMs: 60_000 });
      const refused = await ctx.state.reserve(scope, {
        reservationId: 'b',
        amount: 200,
        lines: [line('org', 1000), line('user', 500)],
        ttlMs: 60_000,
      });
      expect(refused).toEqual({ ok: false, reason: 'exceeded', key: 'user', cap: 500, used: 0, reserved: 400 });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 0, reserved: 0 });
      // Exactly up to the cap is allowed.
      expect((await ctx.state.reserve(scope, { reservationId: 'c', amount: 100, lines: [line('user', 500)], ttlMs: 60_000 })).ok).toBe(true);
    });

    it('settles once: repeated and crossed settlements change nothing', async () => {
      const scope = unique('bud');
      const lines = [line('org', 1000)];
      await ctx.state.reserve(scope, { reservationId: 'c', amount: 100, lines, ttlMs: 60_000 });
      expect(await ctx.state.commit(scope, 'c', 80)).toEqual({ ok: true, state: 'committed', amount: 80 });
      expect(await ctx.state.commit(scope, 'c', 90)).toEqual({ ok: true, state: 'already_committed', amount: 80 });
      expect(await ctx.state.release(scope, 'c')).toEqual({ ok: true, state: 'already_committed', amount: 80 });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 80, reserved: 0 });

      await ctx.state.reserve(scope, { reservationId: 'r', amount: 100, lines, ttlMs: 60_000 });
      expect(await ctx.state.release(scope, 'r')).toEqual({ ok: true, state: 'released', amount: 100 });
      expect(await ctx.state.release(scope, 'r')).toEqual({ ok: true, state: 'already_released', amount: 100 });
      expect(await ctx.state.commit(scope, 'r', 50)).toEqual({ ok: true, state: 'already_released', amount: 100 });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 80, reserved: 0 });

      expect(await ctx.state.commit(scope, 'never', 1)).toEqual({ ok: false, reason: 'unknown' });
      expect(await ctx.state.release(scope, 'never')).toEqual({ ok: false, reason: 'unknown' });
    });

    it('refuses a reused reservation id, settled or not', async () => {
      const scope = unique('bud');
      const request = { reservationId: 'dup', amount: 10, lines: [line('org', 1000)], ttlMs: 60_000 };
      expect(await ctx.state.reserve(scope, request)).toEqual({ ok: true });
      expect(await ctx.state.reserve(scope, request)).toEqual({ ok: false, reason: 'duplicate' });
      await ctx.state.commit(scope, 'dup', 10);
      expect(await ctx.state.reserve(scope, request)).toEqual({ ok: false, reason: 'duplicate' });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 10, reserved: 0 });
    });

    it('exactly ten of 200 concurrent reserves of a tenth of the cap succeed', async () => {
      const scope = unique('bud');
      const lines = [line('org', 1_000_000)];
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => ctx.state.reserve(scope, { reservationId: `r${i}`, amount: 100_000, lines, ttlMs: 60_000 })),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(10);
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 0, reserved: 1_000_000 });
    });

    it('never lets used + reserved exceed the cap while reserves and settlements interleave', async () => {
      const scope = unique('bud');
      const cap = 1_000_000;
      const lines = [line('org', cap), line('key', cap)];
      let worst = 0;
      const watch = async (): Promise<void> => {
        const u = await ctx.state.budgetUsage(scope, 'org');
        worst = Math.max(worst, u.used + u.reserved);
      };
      await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const id = `r${i}`;
          const r = await ctx.state.reserve(scope, { reservationId: id, amount: 100_000, lines, ttlMs: 60_000 });
          await watch();
          if (!r.ok) return;
          if (i % 3 === 0) await ctx.state.release(scope, id);
          else await ctx.state.commit(scope, id, 10_000 * (i % 10));
          await watch();
        }),
      );
      const final = await ctx.state.budgetUsage(scope, 'org');
      expect(final.reserved).toBe(0);
      expect(final.used).toBeLessThanOrEqual(cap);
      expect(worst).toBeLessThanOrEqual(cap);
      expect(await ctx.state.budgetUsage(scope, 'key')).toEqual(final);
    });

    it('reaps reservations past their ttl, which then settle as released', async () => {
      const scope = unique('bud');
      const lines = [line('org', 1000)];
      await ctx.state.reserve(scope, { reservationId: 'old', amount: 300, lines, ttlMs: 150 });
      await ctx.state.reserve(scope, { reservationId: 'young', amount: 200, lines, ttlMs: 60_000 });
      expect(await ctx.state.reapReservations(scope)).toBe(0);
      await ctx.advance(250);
      expect(await ctx.state.reapReservations(scope)).toBe(1);
      expect(await ctx.state.reapReservations(scope)).toBe(0);
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 0, reserved: 200 });
      expect(await ctx.state.commit(scope, 'old', 300)).toEqual({ ok: true, state: 'already_released', amount: 300 });
      expect(await ctx.state.commit(scope, 'young', 150)).toEqual({ ok: true, state: 'committed', amount: 150 });
    });

    it('remembers a settled outcome for the reservation ttl', async () => {
      const scope = unique('bud');
      await ctx.state.reserve(scope, { reservationId: 'r', amount: 5, lines: [line('org', 100)], ttlMs: 400 });
      await ctx.state.commit(scope, 'r', 5);
      await ctx.advance(250);
      expect(await ctx.state.commit(scope, 'r', 5)).toEqual({ ok: true, state: 'already_committed', amount: 5 });
    });

    it('forgets a line once its period has ended', async () => {
      const scope = unique('bud');
      const now = await ctx.state.now();
      const short = { key: 'day', cap: 100, expiresAt: now + 200 };
      await ctx.state.reserve(scope, { reservationId: 'r', amount: 100, lines: [short], ttlMs: 100 });
      await ctx.state.commit(scope, 'r', 100);
      expect((await ctx.state.reserve(scope, { reservationId: 'r2', amount: 1, lines: [short], ttlMs: 100 })).ok).toBe(false);
      await ctx.advance(300);
      expect(await ctx.state.budgetUsage(scope, 'day')).toEqual({ used: 0, reserved: 0 });
    });

    it('rejects malformed arguments', async () => {
      const ok = { reservationId: 'x', amount: 1, lines: [line('org', 10)], ttlMs: 1000 };
      await expectInvalidArgument(ctx.state.reserve('a{b}', ok));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, amount: -1 }));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, amount: 0.5 }));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, lines: [] }));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, lines: [line('a', 1), line('a', 1)] }));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, ttlMs: 0 }));
      await expectInvalidArgument(ctx.state.commit('s', 'x', -3));
    });
  });
}
