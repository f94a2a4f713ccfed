/** Contract: a request's counter gates in one step (`admit`), settling in one step, presence. */
import { describe, expect, it } from 'vitest';
import type { AdmitRequest, BudgetLine, HotState, ReserveRequest, WindowSpec } from '../port.js';
import { expectInvalidArgument, unique, type ContractContext } from './context.js';

const FAR = Date.UTC(2100, 0, 1);
const BURST: WindowSpec = { name: 'burst', limit: 3, windowMs: 60_000 };
const HOUR: WindowSpec = { name: 'hour', limit: 100, windowMs: 3_600_000 };

function line(key: string, cap: number): BudgetLine {
  return { key, cap, expiresAt: FAR };
}

function reservation(id: string, amount: number, lines: BudgetLine[], ttlMs = 60_000): ReserveRequest {
  return { reservationId: id, amounts: [amount], lines, ttlMs };
}

/** What the windows hold, read without consuming. */
async function remaining(state: HotState, scope: string, specs: WindowSpec[] = [BURST, HOUR]): Promise<number[]> {
  return Promise.all(specs.map(async (spec) => (await state.hitWindows(scope, 'caller', [spec], 0)).remaining));
}

export function admitContract(ctx: ContractContext): void {
  describe('admit: windows and reservations in one step', () => {
    it('consumes the windows and holds every reservation when everything passes', async () => {
      const scope = unique('adm');
      const request: AdmitRequest = {
        windows: { key: 'caller', specs: [BURST, HOUR] },
        reservations: [reservation('r:cost', 300, [line('org:cost', 1000), line('user:cost', 500)]), reservation('r:req', 1, [line('org:req', 10)])],
      };
      const result = await ctx.state.admit(scope, request);
      expect(result).toMatchObject({ ok: true, reaped: 0, windows: { allowed: true, window: 'burst', limit: 3, remaining: 2, retryAfterMs: 0 } });
      expect(result.windows?.now).toBe(result.now);
      expect(await remaining(ctx.state, scope)).toEqual([2, 99]);
      expect(await ctx.state.budgetUsage(scope, 'user:cost')).toEqual({ used: 0, reserved: 300 });
      expect(await ctx.state.budgetUsage(scope, 'org:req')).toEqual({ used: 0, reserved: 1 });
    });

    it('a window refusal consumes nothing anywhere and reports the window like hitWindows', async () => {
      const scope = unique('adm');
      const windows = { key: 'caller', specs: [BURST, HOUR] };
      for (let i = 0; i < 3; i += 1) expect((await ctx.state.admit(scope, { windows, reservations: [reservation(`ok${i}`, 1, [line('org', 100)])] })).ok).toBe(true);
      const refused = await ctx.state.admit(scope, { windows, reservations: [reservation('late', 1, [line('org', 100)])] });
      expect(refused).toMatchObject({ ok: false, refusedBy: 'windows', windows: { allowed: false, window: 'burst', remaining: 0 } });
      expect(refused.windows?.retryAfterMs).toBeGreaterThan(0);
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 0, reserved: 3 });
      expect(await remaining(ctx.state, scope)).toEqual([0, 97]);
      // The refused id was never written: it can still be used.
      expect(await ctx.state.release(scope, 'late')).toEqual({ ok: false, reason: 'unknown' });
    });

    it('a budget refusal after passing the windows leaves the windows untouched and holds nothing', async () => {
      const scope = unique('adm');
      const windows = { key: 'caller', specs: [BURST, HOUR] };
      await ctx.state.reserve(scope, reservation('earlier', 450, [line('user', 500)]));
      const refused = await ctx.state.admit(scope, {
        windows,
        reservations: [reservation('a:req', 1, [line('org:req', 10)]), reservation('a:cost', 100, [line('org', 1000), line('user', 500)])],
      });
      expect(refused).toMatchObject({ ok: false, refusedBy: 'exceeded', reservation: 1, key: 'user', cap: 500, used: 0, reserved: 450 });
      // Reported as it stands: nothing of this hit was consumed.
      expect(refused.windows).toMatchObject({ allowed: true, window: 'burst', remaining: 3 });
      expect(await remaining(ctx.state, scope)).toEqual([3, 100]);
      expect(await ctx.state.budgetUsage(scope, 'org:req')).toEqual({ used: 0, reserved: 0 });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 0, reserved: 0 });
    });

    it('a reused reservation id is a duplicate that consumes nothing', async () => {
      const scope = unique('adm');
      const windows = { key: 'caller', specs: [BURST] };
      expect((await ctx.state.admit(scope, { windows, reservations: [reservation('same', 1, [line('org', 100)])] })).ok).toBe(true);
      const again = await ctx.state.admit(scope, { windows, reservations: [reservation('other', 1, [line('org2', 100)]), reservation('same', 1, [line('org', 100)])] });
      expect(again).toMatchObject({ ok: false, refusedBy: 'duplicate', reservation: 1 });
      expect(await remaining(ctx.state, scope, [BURST])).toEqual([2]);
      expect(await ctx.state.budgetUsage(scope, 'org2')).toEqual({ used: 0, reserved: 0 });
    });

    it('keeps gate order around a refusal decided by the caller, and consumes nothing', async () => {
      const scope = unique('adm');
      const windows = { key: 'caller', specs: [BURST] };
      const lines = [line('org', 100)];
      // A gate between the windows and the reservations refused: the windows still come first.
      const between = await ctx.state.admit(scope, { windows, reservations: [reservation('b', 1, lines)], refusedAfter: 'windows' });
      expect(between).toMatchObject({ ok: false, refusedBy: 'caller', windows: { allowed: true, remaining: 3 } });
      // A gate after the reservations refused: a budget refusal comes first.
      const tight = [line('org', 0)];
      expect(await ctx.state.admit(scope, { windows, reservations: [reservation('c', 1, tight)], refusedAfter: 'reservations' })).toMatchObject({
        ok: false,
        refusedBy: 'exceeded',
        key: 'org',
      });
      expect(await ctx.state.admit(scope, { windows, reservations: [reservation('d', 1, lines)], refusedAfter: 'reservations' })).toMatchObject({
        ok: false,
        refusedBy: 'caller',
      });
      expect(await remaining(ctx.state, scope, [BURST])).toEqual([3]);
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 0, reserved: 0 });
      for (let i = 0; i < 3; i += 1) await ctx.state.admit(scope, { windows, reservations: [] });
      expect(await ctx.state.admit(scope, { windows, reservations: [], refusedAfter: 'windows' })).toMatchObject({ ok: false, refusedBy: 'windows' });
    });

    it('works with windows only, reservations only, or neither', async () => {
      const scope = unique('adm');
      expect(await ctx.state.admit(scope, { windows: { key: 'caller', specs: [BURST] }, reservations: [] })).toMatchObject({ ok: true, windows: { remaining: 2 } });
      const budgetOnly = await ctx.state.admit(scope, { reservations: [reservation('x', 5, [line('org', 10)])] });
      expect(budgetOnly.ok).toBe(true);
      expect(budgetOnly.windows).toBeUndefined();
      expect((await ctx.state.admit(scope, { reservations: [] })).ok).toBe(true);
    });

    it('frees expired reservations of the scope on a refusal they caused, then admits', async () => {
      const scope = unique('adm');
      await ctx.state.reserve(scope, reservation('leak', 90, [line('org', 100)], 150));
      expect(await ctx.state.admit(scope, { reservations: [reservation('young', 20, [line('org', 100)])] })).toMatchObject({ ok: false, refusedBy: 'exceeded', reserved: 90 });
      await ctx.advance(250);
      const admitted = await ctx.state.admit(scope, { reservations: [reservation('young', 20, [line('org', 100)])] });
      expect(admitted).toMatchObject({ ok: true, reaped: 1 });
      expect(await ctx.state.budgetUsage(scope, 'org')).toEqual({ used: 0, reserved: 20 });
      expect(await ctx.state.commit(scope, 'leak', [90])).toEqual({ ok: true, state: 'already_released', amounts: [90] });
    });

    it('is exact under concurrency: each limit admits exactly its share, refusals consume nothing', async () => {
      const peer = ctx.harness.peer === undefined ? ctx.state : await ctx.harness.peer();
      const pick = (i: number): HotState => (i % 2 === 0 ? ctx.state : peer);
      // The window is the tight limit: exactly 50 of 300.
      const byWindow = unique('adm');
      const windows = { key: 'caller', specs: [{ name: 'burst', limit: 50, windowMs: 60_000 }, HOUR] };
      const first = await Promise.all(
        Array.from({ length: 300 }, (_, i) => pick(i).admit(byWindow, { windows, reservations: [reservation(`r${i}`, 1, [line('org', 1000)])] })),
      );
      expect(first.filter((r) => r.ok)).toHaveLength(50);
      expect(await ctx.state.budgetUsage(byWindow, 'org')).toEqual({ used: 0, reserved: 50 });
      // The budget is the tight limit: exactly 10 of 300, and the windows count only those 10.
      const byBudget = unique('adm');
      const wide = { key: 'caller', specs: [{ name: 'burst', limit: 1000, windowMs: 60_000 }, HOUR] };
      const second = await Promise.all(
        Array.from({ length: 300 }, (_, i) => pick(i).admit(byBudget, { windows: wide, reservations: [reservation(`r${i}`, 100_000, [line('org', 1_000_000)])] })),
      );
      expect(second.filter((r) => r.ok)).toHaveLength(10);
      expect(await remaining(ctx.state, byBudget, wide.specs)).toEqual([990, 90]);
      expect(await ctx.state.budgetUsage(byBudget, 'org')).toEqual({ used: 0, reserved: 1_000_000 });
    });

    it('rejects malformed arguments', async () => {
      const ok = reservation('x', 1, [line('org', 10)]);
      await expectInvalidArgument(ctx.state.admit('a{b}', { reservations: [ok] }));
      await expectInvalidArgument(ctx.state.admit('s', { reservations: [ok, ok] }));
      await expectInvalidArgument(ctx.state.admit('s', { reservations: [ok, reservation('y', 1, [line('org', 10)])] }));
      await expectInvalidArgument(ctx.state.admit('s', { reservations: Array.from({ length: 9 }, (_, i) => reservation(`r${i}`, 1, [line(`l${i}`, 1)])) }));
      await expectInvalidArgument(ctx.state.admit('s', { windows: { key: 'k', specs: [] }, reservations: [] }));
      await expectInvalidArgument(ctx.state.admit('s', { windows: { key: 'k', specs: [BURST], cost: -1 }, reservations: [] }));
      await expectInvalidArgument(ctx.state.admit('s', { reservations: [], refusedAfter: 'nowhere' as 'windows' }));
    });
  });

  describe('settleReservations', () => {
    it('commits and releases several reservations in one step and reports the committed usage of the lines moved', async () => {
      const scope = unique('set');
      await ctx.state.admit(scope, {
        reservations: [reservation('c', 100, [line('org:cost', 1000), line('user:cost', 500)]), reservation('t', 50, [line('org:tok', 1000)]), reservation('q', 1, [line('org:req', 10)])],
      });
      const settled = await ctx.state.settleReservations(scope, [
        { reservationId: 'c', commit: [40] },
        { reservationId: 't', commit: null },
        { reservationId: 'q', commit: [1] },
        { reservationId: 'never', commit: [1] },
      ]);
      expect(settled.results).toEqual([
        { ok: true, state: 'committed', amounts: [40] },
        { ok: true, state: 'released', amounts: [50] },
        { ok: true, state: 'committed', amounts: [1] },
        { ok: false, reason: 'unknown' },
      ]);
      expect([...settled.used].sort((a, b) => a.key.localeCompare(b.key))).toEqual([
        { key: 'org:cost', used: 40 },
        { key: 'org:req', used: 1 },
        { key: 'user:cost', used: 40 },
      ]);
      expect(await ctx.state.budgetUsage(scope, 'user:cost')).toEqual({ used: 40, reserved: 0 });
      expect(await ctx.state.budgetUsage(scope, 'org:tok')).toEqual({ used: 0, reserved: 0 });
      // Settling again changes nothing and moves no line.
      const again = await ctx.state.settleReservations(scope, [
        { reservationId: 'c', commit: [90] },
        { reservationId: 't', commit: [5] },
      ]);
      expect(again).toEqual({
        results: [
          { ok: true, state: 'already_committed', amounts: [40] },
          { ok: true, state: 'already_released', amounts: [50] },
        ],
        used: [],
      });
      expect(await ctx.state.budgetUsage(scope, 'org:cost')).toEqual({ used: 40, reserved: 0 });
    });

    it('rejects malformed arguments', async () => {
      await expectInvalidArgument(ctx.state.settleReservations('s', []));
      await expectInvalidArgument(ctx.state.settleReservations('s', [{ reservationId: 'a', commit: [-1] }]));
      await expectInvalidArgument(ctx.state.settleReservations('s', [{ reservationId: 'a', commit: [1] }, { reservationId: 'a', commit: null }]));
      await expectInvalidArgument(ctx.state.settleReservations('s{', [{ reservationId: 'a', commit: [1] }]));
    });
  });

  describe('heartbeat (presence)', () => {
    it('lists live members with their last value and forgets those whose time passed', async () => {
      const scope = unique('pres');
      expect(await ctx.state.heartbeat(scope, 'a', '1', 150)).toEqual([{ member: 'a', value: '1' }]);
      const both = await ctx.state.heartbeat(scope, 'b', '2', 60_000);
      expect([...both].sort((x, y) => x.member.localeCompare(y.member))).toEqual([
        { member: 'a', value: '1' },
        { member: 'b', value: '2' },
      ]);
      expect(await ctx.state.heartbeat(scope, 'b', '3', 60_000)).toHaveLength(2);
      await ctx.advance(250);
      expect(await ctx.state.heartbeat(scope, 'b', '4', 60_000)).toEqual([{ member: 'b', value: '4' }]);
      expect(await ctx.state.heartbeat(unique('pres'), 'b', '5', 60_000)).toEqual([{ member: 'b', value: '5' }]);
    });

    it('rejects malformed arguments', async () => {
      await expectInvalidArgument(ctx.state.heartbeat('s}', 'a', '1', 1000));
      await expectInvalidArgument(ctx.state.heartbeat('s', '', '1', 1000));
      await expectInvalidArgument(ctx.state.heartbeat('s', 'a', '1', 0));
      await expectInvalidArgument(ctx.state.heartbeat('s', 'a', 'x'.repeat(5000), 1000));
    });
  });
}
