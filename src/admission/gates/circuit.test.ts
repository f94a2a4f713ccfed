import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { MemoryHotState } from '../../store/state/memory/memory-hot-state.js';
import { countingState, testAdmissionConfig } from '../testing.js';
import { CircuitBreakers } from './circuit.js';

async function setup() {
  const clock = new ManualClock();
  const state = new MemoryHotState({ clock });
  const config = testAdmissionConfig({ circuit: { failureThreshold: 3, windowSeconds: 10, recoverySeconds: 5, halfOpenProbes: 2, successesToClose: 2 } });
  // Two breakers on one store stand for two replicas sharing Redis; each listens for the other's transitions.
  const a = new CircuitBreakers({ state, config: () => config, clock });
  const b = new CircuitBreakers({ state, config: () => config, clock });
  await a.start();
  await b.start();
  return { clock, state, config, a, b };
}

describe('circuit breaker', () => {
  it('opens after N failures in the window, shared across replicas', async () => {
    const { a, b } = await setup();
    await a.report('provider:x', null, 'failure');
    await b.report('provider:x', null, 'failure');
    expect(await a.stateOf('provider:x')).toBe('closed');
    expect((await b.check('provider:x')).ok).toBe(true);
    await a.report('provider:x', null, 'failure');
    expect(await b.stateOf('provider:x')).toBe('open');
    const refused = await b.check('provider:x');
    expect(!refused.ok && refused.refusal).toMatchObject({ gate: 'circuit', code: 'circuit_open', status: 503, retryAfterSeconds: 5 });
    // Other dependencies are unaffected.
    expect((await b.check('provider:y')).ok).toBe(true);
  });

  it('failures that are a small share of what a replica sees do not open it; a dependency failing every call still does', async () => {
    const { a } = await setup();
    // One call in four fails: 7 failures in the window, over the threshold of 3, but a quarter of the calls.
    for (let i = 0; i < 28; i += 1) await a.report('dep', null, i % 4 === 3 ? 'failure' : 'success');
    expect(await a.stateOf('dep')).toBe('closed');
    // Then it goes down: after however many successes, exactly the threshold of failures in a row opens it.
    for (let i = 0; i < 50; i += 1) await a.report('dep', null, 'success');
    await a.report('dep', null, 'failure');
    await a.report('dep', null, 'failure');
    expect(await a.stateOf('dep')).toBe('closed');
    await a.report('dep', null, 'failure');
    expect(await a.stateOf('dep')).toBe('open');
  });

  it('with failureRatio 0 the count alone opens it', async () => {
    const clock = new ManualClock();
    const config = testAdmissionConfig({ circuit: { failureThreshold: 3, failureRatio: 0, windowSeconds: 10, recoverySeconds: 5, halfOpenProbes: 2, successesToClose: 2 } });
    const a = new CircuitBreakers({ state: new MemoryHotState({ clock }), config: () => config, clock });
    for (let i = 0; i < 12; i += 1) await a.report('dep', null, i % 4 === 3 ? 'failure' : 'success');
    expect(await a.stateOf('dep')).toBe('open');
  });

  it('failures spread beyond the window do not open it', async () => {
    const { a, clock } = await setup();
    await a.report('dep', null, 'failure');
    await a.report('dep', null, 'failure');
    clock.advance(10_001);
    await a.report('dep', null, 'failure');
    expect(await a.stateOf('dep')).toBe('closed');
  });

  it('half-open after the recovery time lets a bounded number of probes through; M successes close it', async () => {
    const { a, b, clock } = await setup();
    for (let i = 0; i < 3; i += 1) await a.report('dep', null, 'failure');
    clock.advance(5_000);
    expect(await a.stateOf('dep')).toBe('half_open');
    const probes = await Promise.all(Array.from({ length: 5 }, async (_, i) => (i % 2 === 0 ? a : b).check('dep')));
    const admitted = probes.filter((p) => p.ok);
    expect(admitted).toHaveLength(2);
    const [p1, p2] = admitted;
    if (p1 === undefined || !p1.ok || p2 === undefined || !p2.ok) throw new Error('expected two probes');
    expect(p1.probe).not.toBeNull();
    await a.report('dep', p1.probe, 'success');
    expect(await a.stateOf('dep')).toBe('half_open');
    await b.report('dep', p2.probe, 'success');
    expect(await a.stateOf('dep')).toBe('closed');
    expect((await b.check('dep')).ok).toBe(true);
    // A closed breaker counts failures afresh: the ones that tripped it are forgotten.
    await a.report('dep', null, 'failure');
    await a.report('dep', null, 'failure');
    expect(await a.stateOf('dep')).toBe('closed');
    await a.report('dep', null, 'failure');
    expect(await a.stateOf('dep')).toBe('open');
  });

  it('a failing probe re-opens it for another recovery period; stale outcomes do not move it', async () => {
    const { a, clock } = await setup();
    for (let i = 0; i < 3; i += 1) await a.report('dep', null, 'failure');
    clock.advance(5_000);
    const probe = await a.check('dep');
    if (!probe.ok) throw new Error('expected a probe');
    await a.report('dep', probe.probe, 'failure');
    expect(await a.stateOf('dep')).toBe('open');
    // A success of a request admitted before the trip does not count toward closing.
    await a.report('dep', null, 'success');
    await a.report('dep', probe.probe, 'success');
    expect(await a.stateOf('dep')).toBe('open');
    clock.advance(5_000);
    expect(await a.stateOf('dep')).toBe('half_open');
  });

  it('probe slots free again after a recovery period when probes never report', async () => {
    const { a, clock } = await setup();
    for (let i = 0; i < 3; i += 1) await a.report('dep', null, 'failure');
    clock.advance(5_000);
    expect((await a.check('dep')).ok).toBe(true);
    expect((await a.check('dep')).ok).toBe(true);
    expect((await a.check('dep')).ok).toBe(false);
    clock.advance(5_000);
    expect((await a.check('dep')).ok).toBe(true);
  });

  it('refuses a dependency name that could escape its scope', async () => {
    const { a } = await setup();
    await expect(a.check('bad{name}')).rejects.toThrow('invalid dependency name');
  });

  it('decides closed and open from the local mirror without a round trip; a transition reaches the other replica over pub/sub', async () => {
    const { a, b, state } = await setup();
    const calls: string[] = [];
    const counted = countingState(state, calls, ['subscribe']);
    const config = testAdmissionConfig({ circuit: { failureThreshold: 3, windowSeconds: 10, recoverySeconds: 5, halfOpenProbes: 2, successesToClose: 2 } });
    const c = new CircuitBreakers({ state: counted, config: () => config, clock: new ManualClock(), refreshMs: 60_000 });
    await c.start();
    // The first sight of a dependency reads it once in the background; after that, nothing.
    expect((await c.check('dep')).ok).toBe(true);
    await c.refresh('dep');
    calls.length = 0;
    for (let i = 0; i < 100; i += 1) expect((await c.check('dep')).ok).toBe(true);
    await c.report('dep', null, 'success');
    expect(calls).toEqual([]);
    for (let i = 0; i < 3; i += 1) await a.report('dep', null, 'failure');
    // The trip made through `a` reached `b` and `c` before `a.report` returned.
    expect(b.localState('dep')).toBe('open');
    expect(c.localState('dep')).toBe('open');
    calls.length = 0;
    const refused = await c.check('dep');
    expect(!refused.ok && refused.refusal).toMatchObject({ code: 'circuit_open', limit: { state: 'open' } });
    expect(calls).toEqual([]);
    await c.stop();
  });

  it('a replica that missed the broadcast learns the state from the store within its refresh interval', async () => {
    const { a, clock, state, config } = await setup();
    const deaf = new CircuitBreakers({ state, config: () => config, clock, refreshMs: 1000 });
    expect((await deaf.check('dep')).ok).toBe(true);
    for (let i = 0; i < 3; i += 1) await a.report('dep', null, 'failure');
    expect(deaf.localState('dep')).toBe('closed');
    clock.advance(1000);
    // The first check past the interval starts the re-read; the ones after it see the store's state.
    await deaf.check('dep');
    await deaf.refresh('dep');
    const refused = await deaf.check('dep');
    expect(!refused.ok && refused.refusal.code).toBe('circuit_open');
    // Retry-After is what is left of the recovery time, as the store says.
    expect(!refused.ok && refused.refusal.retryAfterSeconds).toBe(4);
  });

  it('a probe whose request a later gate refused gives its place back', async () => {
    const { a, clock } = await setup();
    for (let i = 0; i < 3; i += 1) await a.report('dep', null, 'failure');
    clock.advance(5_000);
    const first = await a.check('dep');
    const second = await a.check('dep');
    if (!first.ok || !second.ok || first.probe === null) throw new Error('expected two probes');
    expect((await a.check('dep')).ok).toBe(false);
    await a.returnProbe('dep', first.probe);
    expect((await a.check('dep')).ok).toBe(true);
  });
});
