import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../core/clock.js';
import { describeHotStateContract } from '../contract.js';
import { IN_PROCESS_SETTLED_RECORD_MS } from './memory-budgets.js';
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

  it('remembers a settled reservation for the in-process horizon only, and keeps nothing of it after, even while a month-long line is open', async () => {
    const clock = new ManualClock();
    const state = new MemoryHotState({ clock });
    const month = clock.now() + 30 * 24 * 3600 * 1000;
    const reserve = (id: string) => state.admit('s', { reservations: [{ reservationId: id, amounts: [10], ttlMs: 600_000, lines: [{ key: 'org:cost', cap: 1_000_000, expiresAt: month }] }] });
    for (let i = 0; i < 500; i += 1) {
      expect((await reserve(`r${i}`)).ok).toBe(true);
      await state.commit('s', `r${i}`, [5]);
    }
    expect((await reserve('open')).ok).toBe(true);
    clock.advance(IN_PROCESS_SETTLED_RECORD_MS / 2);
    // A repeated settlement inside the horizon still gets the first answer.
    expect(await state.commit('s', 'r0', [9])).toEqual({ ok: true, state: 'already_committed', amounts: [5] });
    clock.advance(IN_PROCESS_SETTLED_RECORD_MS);
    // The sweep runs every 1000 writes: after it, only the reservation still held is kept, and
    // nothing else remembers the 500 settled ones (no queue entry waiting for the month to end).
    for (let i = 0; i < 1000; i += 1) await state.set('s', `k${i % 10}`, 'v');
    const budgets = (state as unknown as { budgets: { scopes: Map<string, { reservations: Map<string, unknown> }>; settledForgets: { length: number } } }).budgets;
    expect([...(budgets.scopes.get('s')?.reservations.keys() ?? [])]).toEqual(['open']);
    expect(budgets.settledForgets.length).toBe(0);
    expect(Object.keys(budgets)).not.toContain('heldForgets');
    expect(await state.commit('s', 'r1', [9])).toEqual({ ok: false, reason: 'unknown' });
    expect(await state.budgetUsage('s', 'org:cost')).toEqual({ used: 2500, reserved: 10 });
    // The one still held is settled as usual.
    expect(await state.commit('s', 'open', [7])).toEqual({ ok: true, state: 'committed', amounts: [7] });
  });

  it('forgets a held reservation nobody settles or reaps once its lines are gone', async () => {
    const clock = new ManualClock();
    const state = new MemoryHotState({ clock });
    const soon = clock.now() + 1000;
    expect((await state.admit('s', { reservations: [{ reservationId: 'lost', amounts: [10], ttlMs: 500, lines: [{ key: 'org:cost', cap: 100, expiresAt: soon }] }] })).ok).toBe(true);
    clock.advance(1000 + 500 + 1);
    for (let i = 0; i < 1000; i += 1) await state.set('s', `k${i % 10}`, 'v');
    const budgets = (state as unknown as { budgets: { scopes: Map<string, unknown> } }).budgets;
    expect(budgets.scopes.has('s')).toBe(false);
  });

  it('refuses work after close', async () => {
    const state = new MemoryHotState();
    await state.close();
    await expect(state.get('s', 'k')).rejects.toThrow();
  });
});
