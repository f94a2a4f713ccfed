import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../core/clock.js';
import { describeHotStateContract } from '../contract.js';
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

  it('refuses work after close', async () => {
    const state = new MemoryHotState();
    await state.close();
    await expect(state.get('s', 'k')).rejects.toThrow();
  });
});
