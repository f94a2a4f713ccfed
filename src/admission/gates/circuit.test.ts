import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { MemoryHotState } from '../../store/state/memory/memory-hot-state.js';
import { testAdmissionConfig } from '../testing.js';
import { createCircuitBreakers } from './circuit.js';

function setup() {
  const clock = new ManualClock();
  const state = new MemoryHotState({ clock });
  const config = testAdmissionConfig({ circuit: { failureThreshold: 3, windowSeconds: 10, recoverySeconds: 5, halfOpenProbes: 2, successesToClose: 2 } });
  // Two breakers on one store stand for two replicas sharing Redis.
  const a = createCircuitBreakers({ state, config: () => config });
  const b = createCircuitBreakers({ state, config: () => config });
  return { clock, a, b };
}

describe('circuit breaker', () => {
  it('opens after N failures in the window, shared across replicas', async () => {
    const { a, b } = setup();
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

  it('failures spread beyond the window do not open it', async () => {
    const { a, clock } = setup();
    await a.report('dep', null, 'failure');
    await a.report('dep', null, 'failure');
    clock.advance(10_001);
    await a.report('dep', null, 'failure');
    expect(await a.stateOf('dep')).toBe('closed');
  });

  it('half-open after the recovery time lets a bounded number of probes through; M successes close it', async () => {
    const { a, b, clock } = setup();
    for (let i = 0; i < 3; i += 1) await a.report('dep', null, 'failure');
    clock.advance(5_000);
    expect(await a.stateOf('dep')).toBe('half_open');
    const probes = await Promise.all(Array.from({ length: 5 }, (_, i) => (i % 2 === 0 ? a : b).check('dep')));
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
    const { a, clock } = setup();
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
    const { a, clock } = setup();
    for (let i = 0; i < 3; i += 1) await a.report('dep', null, 'failure');
    clock.advance(5_000);
    expect((await a.check('dep')).ok).toBe(true);
    expect((await a.check('dep')).ok).toBe(true);
    expect((await a.check('dep')).ok).toBe(false);
    clock.advance(5_000);
    expect((await a.check('dep')).ok).toBe(true);
  });

  it('refuses a dependency name that could escape its scope', async () => {
    const { a } = setup();
    await expect(a.check('bad{name}')).rejects.toThrow('invalid dependency name');
  });
});
