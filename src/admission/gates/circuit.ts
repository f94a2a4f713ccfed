/**
 * Circuit breakers of upstream dependencies (e.g. `provider:openai`), shared by every replica. The
 * state lives in the hot-state store; each replica decides the common case — closed or open — from
 * a local mirror, with no round trip. The mirror is updated on every transition over pub/sub (the
 * replica that makes a transition applies it at once and broadcasts it) and re-read from the store
 * at most every `refreshMs` for a dependency in use, so a missed message costs at most that long.
 * What must be exact stays atomic in the store, and only happens on failures and during recovery:
 * failure counting, half-open probe counting, closing.
 *
 * Store layout (scope `cb:<dependency>`), all timing by store TTLs:
 *   closed     no `tripped` value, or `tripped` = `closed:g` after generation g closed. Failures
 *              count in `failures:<closed-since>` (ttl = window, so a closing starts a fresh count);
 *              reaching the threshold trips the breaker (once per closed period: a `tripping` lock)
 *              if the failures are also `failureRatio` of the outcomes the tripping replica saw
 *              lately (recent-outcomes.ts: held in memory, so successes still cost no round trip).
 *   open       `tripped` = generation g and `open:g` exists (ttl = recovery time; its value is the
 *              store time it ends): fail fast.
 *   half-open  `tripped` = g but `open:g` expired: at most `halfOpenProbes` requests per recovery
 *              period get through (`probes:g` counter, ttl = recovery time; a refused check and a
 *              probe whose request a later gate refused give their count back); `successesToClose`
 *              successes close it, a failed probe re-opens it under a new generation.
 *
 * Only outcomes of admitted requests reach `report`; backpressure and other refusals never do.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { HotState } from '../../store/state/port.js';
import { RecentOutcomes, outcomesCounted } from '../breakers/recent-outcomes.js';
import type { AdmissionConfig } from '../config.js';
import { parseMessageObject } from '../messages.js';
import type { Refusal } from '../types.js';

export const CIRCUIT_CHANNEL = 'admission-circuit';
const DEPENDENCY = /^[A-Za-z0-9_.:-]{1,128}$/;
const TRIPPED_TTL_MS = 7 * 24 * 60 * 60 * 1000;
const CLOSED = 'closed:';
const INITIAL = 'initial';
const DEFAULT_REFRESH_MS = 1000;
const MAX_DEPENDENCIES = 10_000;

export type CircuitState = 'closed' | 'open' | 'half_open';
export type CircuitPass = { ok: true; probe: string | null } | { ok: false; refusal: Refusal };

/** What a replica believes; `reopensAt` is on its own clock (a duration learned from the store). */
type Mirror = { state: 'closed'; since: string; refreshedAt: number } | { state: 'open'; generation: string; reopensAt: number; refreshedAt: number };

interface Transition {
  d: string;
  s: 'open' | 'closed';
  /** Open: the generation; closed: the `closed:g` marker failures are counted under. */
  g: string;
  /** Open: milliseconds until half-open. */
  ms?: number;
}

const PASS: CircuitPass = { ok: true, probe: null };
const TOLD: Promise<void> = Promise.resolve();

function scopeOf(dependency: string): string {
  if (!DEPENDENCY.test(dependency)) throw new Error('invalid dependency name for the circuit breaker');
  return `cb:${dependency}`;
}

/** The generation a `tripped` value names, or null when it says closed. */
const trippedGeneration = (tripped: string | null): string | null => (tripped === null || tripped.startsWith(CLOSED) ? null : tripped);

/** Keeps a per-dependency map under MAX_DEPENDENCIES: the entry set longest ago goes first. */
function makeRoom(entries: Map<string, unknown>): void {
  if (entries.size < MAX_DEPENDENCIES) return;
  const oldest = entries.keys().next();
  if (oldest.done !== true) entries.delete(oldest.value);
}

export interface CircuitDeps {
  state: HotState;
  config: () => AdmissionConfig;
  clock: Clock;
  logger?: Logger;
  refreshMs?: number;
}

export class CircuitBreakers {
  private readonly mirrors = new Map<string, Mirror>();
  /** Outcomes of closed dependencies' calls on this replica; bounded like the mirrors. */
  private readonly recent = new Map<string, RecentOutcomes>();
  private readonly refreshing = new Map<string, Promise<void>>();
  private readonly refreshMs: number;
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(private readonly deps: CircuitDeps) {
    this.refreshMs = deps.refreshMs ?? DEFAULT_REFRESH_MS;
  }

  /** Listens for transitions made by other replicas. */
  async start(): Promise<void> {
    this.unsubscribe ??= await this.deps.state.subscribe(CIRCUIT_CHANNEL, (message) => this.onMessage(message));
  }

  async stop(): Promise<void> {
    const off = this.unsubscribe;
    this.unsubscribe = undefined;
    await off?.();
  }

  /**
   * The gate: closed passes and open refuses from the mirror, without a promise (every guarded
   * request asks); half-open takes a probe in the store.
   */
  check(dependency: string): CircuitPass | Promise<CircuitPass> {
    // A name already mirrored passed this test when it was first seen.
    if (!this.mirrors.has(dependency) && !DEPENDENCY.test(dependency)) return Promise.reject(new Error('invalid dependency name for the circuit breaker'));
    const mirror = this.mirror(dependency);
    if (mirror.state === 'closed') return PASS;
    const now = this.deps.clock.now();
    if (now < mirror.reopensAt) return { ok: false, refusal: this.refusal(dependency, 'open', mirror.reopensAt - now) };
    return this.probe(dependency, mirror.generation);
  }

  /**
   * The synchronous part of `report`: counts a closed dependency's outcome among this replica's
   * recent ones, and says whether the store must hear of it (`tell`) — not for a success, nor for
   * any outcome while open, of a non-probe.
   */
  observe(dependency: string, probe: string | null, outcome: 'success' | 'failure'): boolean {
    if (probe !== null) return true;
    if (this.mirror(dependency).state !== 'closed') return false;
    this.recentOf(dependency).record(outcome === 'failure', outcomesCounted(this.deps.config().circuit));
    return outcome === 'failure';
  }

  private async probe(dependency: string, generation: string): Promise<CircuitPass> {
    const scope = scopeOf(dependency);
    const config = this.deps.config().circuit;
    const key = `probes:${generation}`;
    const taken = await this.deps.state.increment(scope, key, 1, config.recoverySeconds * 1000);
    if (taken <= config.halfOpenProbes) return { ok: true, probe: generation };
    // A refused check holds no place: the count only ever exceeds the real probes while a refusal is in flight.
    await this.deps.state.increment(scope, key, -1, config.recoverySeconds * 1000);
    return { ok: false, refusal: this.refusal(dependency, 'half_open', config.recoverySeconds * 1000) };
  }

  /** A probe taken by `check` whose request a later gate refused: its place goes back. */
  async returnProbe(dependency: string, probe: string): Promise<void> {
    await this.deps.state.increment(scopeOf(dependency), `probes:${probe}`, -1, this.deps.config().circuit.recoverySeconds * 1000);
  }

  /** Outcome of an admitted request; `probe` is what `check` returned. A success while closed costs no round trip. */
  report(dependency: string, probe: string | null, outcome: 'success' | 'failure'): Promise<void> {
    return this.observe(dependency, probe, outcome) ? this.tell(dependency, probe, outcome) : TOLD;
  }

  /** The store's part of `report`, for an outcome `observe` said the store must hear of. */
  async tell(dependency: string, probe: string | null, outcome: 'success' | 'failure'): Promise<void> {
    const scope = scopeOf(dependency);
    const { state } = this.deps;
    const config = this.deps.config().circuit;
    if (probe === null) {
      const mirror = this.mirror(dependency);
      // Outcomes of requests admitted before a trip say nothing new while it is open.
      if (outcome === 'success' || mirror.state !== 'closed') return;
      const failures = await state.increment(scope, `failures:${mirror.since}`, 1, config.windowSeconds * 1000);
      if (failures < config.failureThreshold || !this.recentOf(dependency).reaches(config.failureRatio)) return;
      if (await state.setIfAbsent(scope, `tripping:${mirror.since}`, '1', config.windowSeconds * 1000)) await this.trip(dependency);
      return;
    }
    // A probe of an older generation (a re-trip or a close happened since) does not move it.
    if ((await state.get(scope, 'tripped')) !== probe) return;
    if (outcome === 'failure') {
      if (await state.setIfAbsent(scope, `retrip:${probe}`, '1', TRIPPED_TTL_MS)) await this.trip(dependency);
      return;
    }
    const successes = await state.increment(scope, `successes:${probe}`, 1, TRIPPED_TTL_MS);
    if (successes < config.successesToClose) return;
    // Closing only if still in this generation: a concurrent re-trip must win.
    if ((await state.get(scope, 'tripped')) !== probe) return;
    const since = `${CLOSED}${probe}`;
    await state.set(scope, 'tripped', since, TRIPPED_TTL_MS);
    await this.announce({ d: dependency, s: 'closed', g: since });
  }

  /** The store's view (authoritative), e.g. for tests and operators. */
  async stateOf(dependency: string): Promise<CircuitState> {
    const scope = scopeOf(dependency);
    const generation = trippedGeneration(await this.deps.state.get(scope, 'tripped'));
    if (generation === null) return 'closed';
    return (await this.deps.state.get(scope, `open:${generation}`)) === null ? 'half_open' : 'open';
  }

  /** What this replica currently believes, without asking the store. */
  localState(dependency: string): CircuitState {
    const mirror = this.mirrors.get(dependency);
    if (mirror === undefined || mirror.state === 'closed') return 'closed';
    return this.deps.clock.now() < mirror.reopensAt ? 'open' : 'half_open';
  }

  /** Re-reads one dependency from the store into the mirror. */
  async refresh(dependency: string): Promise<void> {
    const scope = scopeOf(dependency);
    const { state, clock } = this.deps;
    const tripped = await state.get(scope, 'tripped');
    const generation = trippedGeneration(tripped);
    if (generation === null) {
      this.set(dependency, { state: 'closed', since: tripped ?? INITIAL, refreshedAt: clock.now() });
      return;
    }
    const [ends, storeNow] = await Promise.all([state.get(scope, `open:${generation}`), state.now()]);
    const remaining = ends === null ? 0 : Math.max(0, Number(ends) - storeNow);
    const now = clock.now();
    this.set(dependency, { state: 'open', generation, reopensAt: now + (Number.isFinite(remaining) ? remaining : 0), refreshedAt: now });
  }

  private async trip(dependency: string): Promise<void> {
    const scope = scopeOf(dependency);
    const { state } = this.deps;
    const recoveryMs = this.deps.config().circuit.recoverySeconds * 1000;
    const generation = randomUUID();
    const storeNow = await state.now();
    // Open first, then point `tripped` at it, so no reader ever sees tripped without its open key.
    await state.set(scope, `open:${generation}`, String(storeNow + recoveryMs), recoveryMs);
    await state.set(scope, 'tripped', generation, TRIPPED_TTL_MS);
    await this.announce({ d: dependency, s: 'open', g: generation, ms: recoveryMs });
  }

  /** Applies a transition here at once, then tells the other replicas. */
  private async announce(transition: Transition): Promise<void> {
    this.apply(transition);
    try {
      await this.deps.state.publish(CIRCUIT_CHANNEL, JSON.stringify(transition));
    } catch (error) {
      // Stored already: the others see it at their next refresh.
      this.deps.logger?.warn({ err: error, dependency: transition.d }, 'circuit transition not broadcast');
    }
  }

  private apply(t: Transition): void {
    const now = this.deps.clock.now();
    if (t.s === 'closed') {
      // A closing starts the count afresh, here as in the store.
      this.recent.get(t.d)?.clear();
      this.set(t.d, { state: 'closed', since: t.g, refreshedAt: now });
    } else this.set(t.d, { state: 'open', generation: t.g, reopensAt: now + (t.ms ?? 0), refreshedAt: now });
  }

  private onMessage(message: string): void {
    const parsed = parseMessageObject(message);
    if (parsed === null) return;
    const { d, s, g, ms } = parsed;
    if (typeof d !== 'string' || !DEPENDENCY.test(d) || typeof g !== 'string' || g.length > 200) return;
    if (s === 'closed') this.apply({ d, s, g });
    else if (s === 'open' && typeof ms === 'number' && Number.isSafeInteger(ms) && ms >= 0 && ms <= 3_600_000) this.apply({ d, s, g, ms });
  }

  /** The mirror of a dependency; unknown or stale ones are (re)read from the store in the background. */
  private mirror(dependency: string): Mirror {
    const now = this.deps.clock.now();
    let mirror = this.mirrors.get(dependency);
    if (mirror === undefined) {
      mirror = { state: 'closed', since: INITIAL, refreshedAt: Number.NEGATIVE_INFINITY };
      this.set(dependency, mirror);
    }
    if (now - mirror.refreshedAt >= this.refreshMs && !this.refreshing.has(dependency)) {
      const running = this.refresh(dependency)
        .catch((error: unknown) => this.deps.logger?.warn({ err: error, dependency }, 'circuit state refresh failed'))
        .finally(() => this.refreshing.delete(dependency));
      this.refreshing.set(dependency, running);
    }
    return mirror;
  }

  private set(dependency: string, mirror: Mirror): void {
    // Bounded (org endpoints make dependencies per org): the entry refreshed longest ago goes first;
    // a dependency seen again is read from the store afresh.
    this.mirrors.delete(dependency);
    makeRoom(this.mirrors);
    this.mirrors.set(dependency, mirror);
  }

  private recentOf(dependency: string): RecentOutcomes {
    let recent = this.recent.get(dependency);
    if (recent === undefined) {
      makeRoom(this.recent);
      recent = new RecentOutcomes();
      this.recent.set(dependency, recent);
    }
    return recent;
  }

  private refusal(dependency: string, stateName: CircuitState, remainingMs: number): Refusal {
    const retryAfterSeconds = Math.max(1, Math.min(60, Math.ceil(remainingMs / 1000)));
    return { gate: 'circuit', code: 'circuit_open', status: 503, message: `${dependency} is failing; requests are paused`, retryAfterSeconds, limit: { dependency, state: stateName } };
  }
}
