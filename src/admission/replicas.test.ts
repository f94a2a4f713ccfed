import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { MemoryHotState } from '../store/state/memory/memory-hot-state.js';
import { createReplicaTracker } from './replicas.js';

describe('replica tracker', () => {
  it('counts replicas that heartbeat in store time, and forgets one that stops', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const state = new MemoryHotState({ clock });
    const trackers = [0, 1, 2].map(() => createReplicaTracker({ state, epochMs: 2000 }));
    for (const t of trackers) await t.beat();
    // A replica learns the others' beats at its next beat; a second beat in the same epoch adds nothing.
    await trackers[0]?.beat();
    expect(trackers[0]?.count()).toBe(3);
    clock.advance(2000);
    for (const t of trackers) await t.beat();
    expect(trackers[2]?.count()).toBe(3);
    // Replica 2 stops; after two epochs only the two live ones are counted.
    clock.advance(2000);
    await trackers[0]?.beat();
    await trackers[1]?.beat();
    clock.advance(2000);
    await trackers[0]?.beat();
    await trackers[1]?.beat();
    expect(trackers[0]?.count()).toBe(2);
  });

  it('is at least 1 even when nothing was counted', () => {
    expect(createReplicaTracker({ state: new MemoryHotState() }).count()).toBe(1);
  });
});
