import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { MemoryHotState } from '../store/state/memory/memory-hot-state.js';
import { createReplicaTracker } from './replicas.js';

describe('replica tracker', () => {
  it('counts replicas and sums the others\' in-flight load from heartbeats in store time, and forgets one that stops', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const state = new MemoryHotState({ clock });
    const own = [3, 5, 7];
    const trackers = own.map((_, i) => createReplicaTracker({ state, ownInFlight: () => own[i] ?? 0, beatMs: 500 }));
    for (const t of trackers) await t.beat();
    // A replica learns the others' beats at its next beat.
    await trackers[0]?.beat();
    expect(trackers[0]?.replicas()).toBe(3);
    expect(trackers[0]?.inFlight()).toBe(3 + 5 + 7);
    // Its own count is always the exact current one, never the published one.
    own[0] = 10;
    expect(trackers[0]?.inFlight()).toBe(10 + 5 + 7);
    // Replica 2 stops beating; after four beat intervals it and its load are gone.
    for (let i = 0; i < 4; i += 1) {
      clock.advance(500);
      await trackers[0]?.beat();
      await trackers[1]?.beat();
    }
    expect(trackers[0]?.replicas()).toBe(2);
    expect(trackers[0]?.inFlight()).toBe(10 + 5);
  });

  it('is at least 1 even when nothing was counted', () => {
    expect(createReplicaTracker({ state: new MemoryHotState(), ownInFlight: () => 0 }).replicas()).toBe(1);
  });
});
