import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { DbError } from '../../store/db/errors.js';
import { HotStateUnavailable } from '../../store/state/errors.js';
import { MemoryHotState } from '../../store/state/memory/memory-hot-state.js';
import { switchableState } from '../testing.js';
import { guardCalls } from './guard.js';
import { LocalBreaker } from './local-breaker.js';
import { createStoreBreakers } from './store-breakers.js';

const SETTINGS = { failureThreshold: 3, failureRatio: 0.5, windowSeconds: 10, recoverySeconds: 5, halfOpenProbes: 2, successesToClose: 2 };

function breaker() {
  const clock = new ManualClock();
  return { clock, b: new LocalBreaker('test', () => SETTINGS, clock) };
}

function fail(b: LocalBreaker, times = 1): void {
  for (let i = 0; i < times; i += 1) {
    const d = b.allow();
    if (d.ok) b.report(d.pass, false);
  }
}

describe('local circuit breaker', () => {
  it('opens after N failures within the window, then fails fast until the recovery time', () => {
    const { b, clock } = breaker();
    fail(b, 2);
    clock.advance(10_001);
    // The first two left the window: one more failure does not open it.
    fail(b, 1);
    expect(b.state).toBe('closed');
    fail(b, 2);
    expect(b.state).toBe('open');
    const refused = b.allow();
    expect(refused).toEqual({ ok: false, retryAfterMs: 5000 });
    clock.advance(4000);
    expect(b.allow()).toEqual({ ok: false, retryAfterMs: 1000 });
    clock.advance(1000);
    expect(b.state).toBe('half_open');
  });

  it('failures that are a small share of the calls do not open it; a store failing every call still does', () => {
    const { b } = breaker();
    const call = (ok: boolean): void => {
      const d = b.allow();
      if (d.ok) b.report(d.pass, ok);
    };
    for (let i = 0; i < 28; i += 1) call(i % 4 !== 3);
    expect(b.state).toBe('closed');
    // Then it goes down: after however many successes, exactly the threshold of failures in a row opens it.
    for (let i = 0; i < 50; i += 1) call(true);
    fail(b, 2);
    expect(b.state).toBe('closed');
    fail(b, 1);
    expect(b.state).toBe('open');
  });

  it('half-open lets a bounded number of probes through per recovery period; M successes close it', () => {
    const { b, clock } = breaker();
    fail(b, 3);
    clock.advance(5000);
    const p1 = b.allow();
    const p2 = b.allow();
    expect(p1.ok && p1.pass.probe).toBe(true);
    expect(p2.ok).toBe(true);
    expect(b.allow().ok).toBe(false);
    if (!p1.ok || !p2.ok) throw new Error('expected probes');
    b.report(p1.pass, true);
    expect(b.state).toBe('half_open');
    b.report(p2.pass, true);
    expect(b.state).toBe('closed');
    // Closed counts afresh.
    fail(b, 2);
    expect(b.state).toBe('closed');
  });

  it('a failed probe opens it again; outcomes of calls from an earlier state do not move it', () => {
    const { b, clock } = breaker();
    const early = b.allow();
    fail(b, 3);
    clock.advance(5000);
    const probe = b.allow();
    if (!probe.ok || !early.ok) throw new Error('expected passes');
    // A call that started while closed and fails now says nothing about the half-open store.
    b.report(early.pass, false);
    expect(b.state).toBe('half_open');
    b.report(probe.pass, false);
    expect(b.state).toBe('open');
    expect(b.allow()).toEqual({ ok: false, retryAfterMs: 5000 });
  });

  it('probe places free again after a recovery period when probes never report', () => {
    const { b, clock } = breaker();
    fail(b, 3);
    clock.advance(5000);
    expect(b.allow().ok).toBe(true);
    expect(b.allow().ok).toBe(true);
    expect(b.allow().ok).toBe(false);
    clock.advance(5000);
    expect(b.allow().ok).toBe(true);
  });
});

describe('guarded calls', () => {
  it('refuses without calling the target while open, counts only the failures it is told to, never refuses pass-through methods', async () => {
    const { b, clock } = breaker();
    let calls = 0;
    const target = {
      async read(fail: 'down' | 'bug' | null): Promise<string> {
        calls += 1;
        if (fail === 'down') throw new HotStateUnavailable(new Error('ECONNREFUSED'));
        if (fail === 'bug') throw new Error('caller bug');
        return 'ok';
      },
      async close(): Promise<string> {
        return 'closed';
      },
    };
    const guarded = guardCalls(target, b, {
      isFailure: (error) => error instanceof HotStateUnavailable,
      refuse: (retryAfterSeconds) => new HotStateUnavailable(new Error('open'), retryAfterSeconds),
      passThrough: ['close'],
    });
    // Errors that are the caller's own are not the store failing.
    for (let i = 0; i < 5; i += 1) await expect(guarded.read('bug')).rejects.toThrow('caller bug');
    expect(b.state).toBe('closed');
    for (let i = 0; i < 3; i += 1) await expect(guarded.read('down')).rejects.toBeInstanceOf(HotStateUnavailable);
    expect(b.state).toBe('open');
    const before = calls;
    const refused: unknown = await guarded.read(null).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HotStateUnavailable);
    expect((refused as HotStateUnavailable).retryAfterSeconds).toBe(5);
    expect(calls).toBe(before);
    expect(await guarded.close()).toBe('closed');
    clock.advance(5000);
    expect(await guarded.read(null)).toBe('ok');
    expect(await guarded.read(null)).toBe('ok');
    expect(b.state).toBe('closed');
  });
});

describe('store breakers', () => {
  it('leave the in-process hot state as it is: it cannot become unreachable', () => {
    const memory = new MemoryHotState();
    expect(createStoreBreakers({ settings: SETTINGS, clock: new ManualClock() }).guardHotState(memory)).toBe(memory);
  });

  it('the hot state behind its breaker fails fast as unavailable; the record store as dependency_unavailable, both with Retry-After', async () => {
    const clock = new ManualClock();
    const breakers = createStoreBreakers({ settings: { ...SETTINGS, recoverySeconds: 2 }, clock });
    const switchable = switchableState(new MemoryHotState({ clock }));
    const state = breakers.guardHotState(switchable.state);
    switchable.setDown(true);
    for (let i = 0; i < 3; i += 1) await expect(state.get('s', 'k')).rejects.toBeInstanceOf(HotStateUnavailable);
    const calls = switchable.calls();
    const refused: unknown = await state.get('s', 'k').catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'dependency_unavailable', retryAfterSeconds: 2 });
    expect(switchable.calls()).toBe(calls);
    // Closing the store is never refused.
    await state.close();

    let reads = 0;
    const records = breakers.guardRecords({
      async loadUser(): Promise<null> {
        reads += 1;
        throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      },
    });
    for (let i = 0; i < 3; i += 1) await expect(records.loadUser()).rejects.toThrow('ECONNREFUSED');
    const fast: unknown = await records.loadUser().catch((e: unknown) => e);
    expect(fast).toBeInstanceOf(AppError);
    expect(fast).toMatchObject({ code: 'dependency_unavailable', retryAfterSeconds: 2 });
    expect(reads).toBe(3);
    // One-off reads share the record-store breaker.
    await expect(breakers.runRecords(async () => 'x')).rejects.toMatchObject({ code: 'dependency_unavailable' });
    // Settings follow the live config once pointed at it.
    breakers.follow(() => ({ ...SETTINGS, recoverySeconds: 60 }));
    clock.advance(2000);
    expect(await breakers.runRecords(async () => 'back')).toBe('back');
  });

  it('a statement the database refused for its data (a NUL, a duplicate key) never opens the record-store breaker', async () => {
    const breakers = createStoreBreakers({ settings: SETTINGS, clock: new ManualClock() });
    let calls = 0;
    const refusing = (code: string) => () => {
      calls += 1;
      return Promise.reject(new DbError({ message: 'refused', code }));
    };
    // Many times the failure threshold, as a caller sending bad text over and over would.
    for (let i = 0; i < 20; i += 1) {
      await expect(breakers.runRecords(refusing(i % 2 === 0 ? '22021' : '23505'))).rejects.toBeInstanceOf(DbError);
    }
    expect(calls).toBe(20);
    expect(await breakers.runRecords(async () => 'still open for business')).toBe('still open for business');
    // The store itself failing (a lost connection) still opens it.
    for (let i = 0; i < 3; i += 1) await expect(breakers.runRecords(refusing('08006'))).rejects.toBeInstanceOf(DbError);
    await expect(breakers.runRecords(async () => 'x')).rejects.toMatchObject({ code: 'dependency_unavailable' });
  });
});
