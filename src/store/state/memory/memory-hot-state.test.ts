import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../core/clock.js';
import { describeHotStateContract } from '../contract.js';
import { LIMITS } from '../validation.js';
import { MemoryHotState } from './memory-hot-state.js';

describeHotStateContract('memory', async () => {
  const clock = new ManualClock();
  const state = new MemoryHotState({ clock });
  return {
    state,
    advance: async (ms) => {
      clock.advance(ms);
    },
    cleanup: () => state.close(),
  };
});

describe('MemoryHotState specifics', () => {
  it('forgets idle keys on its periodic sweep', async () => {
    const clock = new ManualClock();
    const state = new MemoryHotState({ clock });
    await state.set('s', 'gone', 'v', 10);
    clock.advance(20);
    for (let i = 0; i < 1000; i += 1) await state.set('s', `k${i % 10}`, 'v');
    // Reaching into the map is the only way to see that the sweep removed what nobody read again.
    const values = (state as unknown as { values: Map<string, unknown> }).values;
    expect([...values.keys()].some((k) => k.endsWith('gone'))).toBe(false);
  });

  it('remembers a settled reservation for the retry horizon only, even while a month-long line is open', async () => {
    const clock = new ManualClock();
    const state = new MemoryHotState({ clock });
    const month = clock.now() + 30 * 24 * 3600 * 1000;
    const reserve = (id: string) => state.admit('s', { reservations: [{ reservationId: id, amount: 10, ttlMs: 600_000, lines: [{ key: 'org:cost', cap: 1_000_000, expiresAt: month }] }] });
    for (let i = 0; i < 500; i += 1) {
      expect((await reserve(`r${i}`)).ok).toBe(true);
      await state.commit('s', `r${i}`, 5);
    }
    clock.advance(LIMITS.settledRecordMs - 1000);
    // A retried settlement inside the horizon still gets the first answer.
    expect(await state.commit('s', 'r0', 9)).toEqual({ ok: true, state: 'already_committed', amount: 5 });
    clock.advance(2000);
    // The sweep runs every 1000 writes: after it, none of the 500 records is held any more.
    for (let i = 0; i < 1000; i += 1) await state.set('s', `k${i % 10}`, 'v');
    const budgets = (state as unknown as { budgets: { scopes: Map<string, { reservations: Map<string, unknown> }> } }).budgets;
    expect(budgets.scopes.get('s')?.reservations.size ?? 0).toBe(0);
    expect(await state.commit('s', 'r1', 9)).toEqual({ ok: false, reason: 'unknown' });
    expect(await state.budgetUsage('s', 'org:cost')).toEqual({ used: 2500, reserved: 0 });
  });

  it('refuses work after close', async () => {
    const state = new MemoryHotState();
    await state.close();
    await expect(state.get('s', 'k')).rejects.toThrow();
  });
});
