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
      expect(await ctx.state.reserve(scope, { reservationId: 'r1', amounts: [300], lines, ttlMs: 60_000 })).toEqual({ ok: true });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 0, reserved: 300 });
      expect(await ctx.state.commit(scope, 'r1', [120])).toEqual({ ok: true, state: 'committed', amounts: [120] });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 120, reserved: 0 });
      expect(await ctx.state.budgetUsage(scope, 'user')).toEqual({ used: 120, reserved: 0 });
      expect(await ctx.state.budgetUsage(scope, 'none')).toEqual({ used: 0, reserved: 0 });
    });

    it('is all or nothing across lines and names the refusing line', async () => {
      const scope = unique('bud');
      await ctx.state.reserve(scope, { reservationId: 'a', amounts: [400], lines: [line('user', 500)], ttlMs: 60_000 });
      const refused = await ctx.state.reserve(scope, {
        reservationId: 'b',
        amounts: [200],
        lines: [line('org', 1000), line('user', 500)],
        ttlMs: 60_000,
      });
      expect(refused).toEqual({ ok: false, reason: 'exceeded', key: 'user', cap: 500, used: 0, reserved: 400 });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 0, reserved: 0 });
      // Exactly up to the cap is allowed.
      expect((await ctx.state.reserve(scope, { reservationId: 'c', amounts: [100], lines: [line('user', 500)], ttlMs: 60_000 })).ok).toBe(true);
    });

    it('settles once: repeated and crossed settlements change nothing', async () => {
      const scope = unique('bud');
      const lines = [line('org', 1000)];
      await ctx.state.reserve(scope, { reservationId: 'c', amounts: [100], lines, ttlMs: 60_000 });
      expect(await ctx.state.commit(scope, 'c', [80])).toEqual({ ok: true, state: 'committed', amounts: [80] });
      expect(await ctx.state.commit(scope, 'c', [90])).toEqual({ ok: true, state: 'already_committed', amounts: [80] });
      expect(await ctx.state.release(scope, 'c')).toEqual({ ok: true, state: 'already_committed', amounts: [80] });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 80, reserved: 0 });

      await ctx.state.reserve(scope, { reservationId: 'r', amounts: [100], lines, ttlMs: 60_000 });
      expect(await ctx.state.release(scope, 'r')).toEqual({ ok: true, state: 'released', amounts: [100] });
      expect(await ctx.state.release(scope, 'r')).toEqual({ ok: true, state: 'already_released', amounts: [100] });
      expect(await ctx.state.commit(scope, 'r', [50])).toEqual({ ok: true, state: 'already_released', amounts: [100] });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 80, reserved: 0 });

      expect(await ctx.state.commit(scope, 'never', [1])).toEqual({ ok: false, reason: 'unknown' });
      expect(await ctx.state.release(scope, 'never')).toEqual({ ok: false, reason: 'unknown' });
    });

    it('holds several amounts in one reservation, each line taking its own, and settles each line by its own actual', async () => {
      const scope = unique('bud');
      // Money, tokens and requests of one call, on the lines of two subjects.
      const lines: BudgetLine[] = [
        { ...line('org:cost', 10_000), amountIndex: 0 },
        { ...line('org:tokens', 1_000), amountIndex: 1 },
        { ...line('org:requests', 3), amountIndex: 2 },
        { ...line('user:cost', 7_000), amountIndex: 0 },
      ];
      const call = (id: string) => ({ reservationId: id, amounts: [5_000, 400, 1], lines, ttlMs: 60_000 });
      expect(await ctx.state.reserve(scope, call('a'))).toEqual({ ok: true });
      expect(await ctx.state.budgetUsage(scope, 'org:cost')).toEqual({ used: 0, reserved: 5_000 });
      expect(await ctx.state.budgetUsage(scope, 'org:tokens')).toEqual({ used: 0, reserved: 400 });
      expect(await ctx.state.budgetUsage(scope, 'org:requests')).toEqual({ used: 0, reserved: 1 });
      // The user's money line refuses (5 000 + 5 000 > 7 000), though every line of another metric would fit.
      expect(await ctx.state.reserve(scope, call('b'))).toEqual({ ok: false, reason: 'exceeded', key: 'user:cost', cap: 7_000, used: 0, reserved: 5_000 });
      expect(await ctx.state.commit(scope, 'a', [1_234, 56, 1])).toEqual({ ok: true, state: 'committed', amounts: [1_234, 56, 1] });
      expect(await ctx.state.budgetUsage(scope, 'org:cost')).toEqual({ used: 1_234, reserved: 0 });
      expect(await ctx.state.budgetUsage(scope, 'org:tokens')).toEqual({ used: 56, reserved: 0 });
      expect(await ctx.state.budgetUsage(scope, 'org:requests')).toEqual({ used: 1, reserved: 0 });
      expect(await ctx.state.budgetUsage(scope, 'user:cost')).toEqual({ used: 1_234, reserved: 0 });
      expect(await ctx.state.reserve(scope, call('c'))).toEqual({ ok: true });
      expect(await ctx.state.release(scope, 'c')).toEqual({ ok: true, state: 'released', amounts: [5_000, 400, 1] });
      expect(await ctx.state.budgetUsage(scope, 'org:tokens')).toEqual({ used: 56, reserved: 0 });
    });

    it('answers a commit with the wrong number of actuals `mismatch` and changes nothing', async () => {
      const scope = unique('bud');
      const lines: BudgetLine[] = [{ ...line('cost', 1_000), amountIndex: 0 }, { ...line('tokens', 1_000), amountIndex: 1 }];
      await ctx.state.reserve(scope, { reservationId: 'r', amounts: [100, 10], lines, ttlMs: 60_000 });
      expect(await ctx.state.commit(scope, 'r', [50])).toEqual({ ok: false, reason: 'mismatch' });
      expect(await ctx.state.commit(scope, 'r', [50, 5, 1])).toEqual({ ok: false, reason: 'mismatch' });
      expect(await ctx.state.settleReservations(scope, [{ reservationId: 'r', commit: [50] }])).toEqual({ results: [{ ok: false, reason: 'mismatch' }], used: [] });
      expect(await ctx.state.budgetUsage(scope, 'cost')).toEqual({ used: 0, reserved: 100 });
      expect(await ctx.state.commit(scope, 'r', [50, 5])).toEqual({ ok: true, state: 'committed', amounts: [50, 5] });
      expect(await ctx.state.budgetUsage(scope, 'tokens')).toEqual({ used: 5, reserved: 0 });
    });

    it('keeps amounts up to the largest safe integer exact', async () => {
      const scope = unique('bud');
      const big = Number.MAX_SAFE_INTEGER - 2;
      const lines: BudgetLine[] = [{ ...line('cost', Number.MAX_SAFE_INTEGER), amountIndex: 1 }];
      expect(await ctx.state.reserve(scope, { reservationId: 'r', amounts: [1, big], lines, ttlMs: 60_000 })).toEqual({ ok: true });
      expect(await ctx.state.budgetUsage(scope, 'cost')).toEqual({ used: 0, reserved: big });
      expect(await ctx.state.commit(scope, 'r', [0, big - 1])).toEqual({ ok: true, state: 'committed', amounts: [0, big - 1] });
      expect(await ctx.state.budgetUsage(scope, 'cost')).toEqual({ used: big - 1, reserved: 0 });
    });

    it('refuses a reused reservation id, settled or not', async () => {
      const scope = unique('bud');
      const request = { reservationId: 'dup', amounts: [10], lines: [line('org', 1000)], ttlMs: 60_000 };
      expect(await ctx.state.reserve(scope, request)).toEqual({ ok: true });
      expect(await ctx.state.reserve(scope, request)).toEqual({ ok: false, reason: 'duplicate' });
      await ctx.state.commit(scope, 'dup', [10]);
      expect(await ctx.state.reserve(scope, request)).toEqual({ ok: false, reason: 'duplicate' });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 10, reserved: 0 });
    });

    it('exactly ten of 200 concurrent reserves of a tenth of the cap succeed', async () => {
      const scope = unique('bud');
      const lines = [line('org', 1_000_000)];
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => ctx.state.reserve(scope, { reservationId: `r${i}`, amounts: [100_000], lines, ttlMs: 60_000 })),
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
          const r = await ctx.state.reserve(scope, { reservationId: id, amounts: [100_000], lines, ttlMs: 60_000 });
          await watch();
          if (!r.ok) return;
          if (i % 3 === 0) await ctx.state.release(scope, id);
          else await ctx.state.commit(scope, id, [10_000 * (i % 10)]);
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
      await ctx.state.reserve(scope, { reservationId: 'old', amounts: [300], lines, ttlMs: 150 });
      await ctx.state.reserve(scope, { reservationId: 'young', amounts: [200], lines, ttlMs: 60_000 });
      expect(await ctx.state.reapReservations(scope)).toBe(0);
      await ctx.advance(250);
      expect(await ctx.state.reapReservations(scope)).toBe(1);
      expect(await ctx.state.reapReservations(scope)).toBe(0);
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 0, reserved: 200 });
      expect(await ctx.state.commit(scope, 'old', [300])).toEqual({ ok: true, state: 'already_released', amounts: [300] });
      expect(await ctx.state.commit(scope, 'young', [150])).toEqual({ ok: true, state: 'committed', amounts: [150] });
    });

    it('remembers a settled outcome for the reservation ttl', async () => {
      const scope = unique('bud');
      await ctx.state.reserve(scope, { reservationId: 'r', amounts: [5], lines: [line('org', 100)], ttlMs: 400 });
      await ctx.state.commit(scope, 'r', [5]);
      await ctx.advance(250);
      expect(await ctx.state.commit(scope, 'r', [5])).toEqual({ ok: true, state: 'already_committed', amounts: [5] });
    });

    it('forgets a line once its period has ended', async () => {
      const scope = unique('bud');
      const now = await ctx.state.now();
      const short = { key: 'day', cap: 100, expiresAt: now + 200 };
      await ctx.state.reserve(scope, { reservationId: 'r', amounts: [100], lines: [short], ttlMs: 100 });
      await ctx.state.commit(scope, 'r', [100]);
      expect((await ctx.state.reserve(scope, { reservationId: 'r2', amounts: [1], lines: [short], ttlMs: 100 })).ok).toBe(false);
      await ctx.advance(300);
      expect(await ctx.state.budgetUsage(scope, 'day')).toEqual({ used: 0, reserved: 0 });
    });

    it('rejects malformed arguments', async () => {
      const ok = { reservationId: 'x', amounts: [1], lines: [line('org', 10)], ttlMs: 1000 };
      await expectInvalidArgument(ctx.state.reserve('a{b}', ok));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, amounts: [-1] }));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, amounts: [0.5] }));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, lines: [] }));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, lines: [line('a', 1), line('a', 1)] }));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, ttlMs: 0 }));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, amounts: [] }));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, amounts: [1, 1, 1, 1, 1] }));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, lines: [{ ...line('org', 10), amountIndex: 1 }] }));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, lines: [{ ...line('org', 10), amountIndex: -1 }] }));
      await expectInvalidArgument(ctx.state.reserve('s', { ...ok, lines: [{ ...line('org', 10), amountIndex: 0.5 }] }));
      await expectInvalidArgument(ctx.state.commit('s', 'x', [-3]));
      await expectInvalidArgument(ctx.state.commit('s', 'x', []));
      await expectInvalidArgument(ctx.state.settleReservations('s', [{ reservationId: 'x', commit: [1, 2, 3, 4, 5] }]));
    });
  });
}
