/**
 * In-process budget lines and reservations: the reference for the Redis budget scripts. Every
 * method runs to completion without awaiting, which is what makes it atomic in one process.
 *
 * State is kept per scope, with the unsettled reservations of a scope in their own set, so reaping
 * and the safety net for reservations nobody settles look only at what is still held. A settled
 * reservation shrinks to its outcome and is remembered for a while (idempotent settlement:
 * `IN_PROCESS_SETTLED_RECORD_MS`, at most its ttl), then forgotten through a queue ordered by when
 * it may go, so cleanup costs in proportion to what expires, not to everything remembered, and a
 * busy gateway keeps a few seconds of settled calls, never its whole budget period.
 */
import type { BudgetUsage, ReserveRequest, ReserveResult, SettleResult } from '../port.js';

/**
 * How long a settled reservation is remembered here: a settlement in process never loses its
 * answer on the way back (the shared store keeps `LIMITS.settledRecordMs` for that), so only
 * settlements of the same moment repeat one — a caller racing the reaper at the deadline. A
 * settlement of a forgotten reservation answers `unknown` and changes nothing. A budgeted call
 * settles one reservation: at 4 000 calls a second, the 60 s of the shared store would hold 240 000
 * records here, this horizon 4 000.
 */
export const IN_PROCESS_SETTLED_RECORD_MS = 1_000;

interface Line {
  used: number;
  reserved: number;
  expiresAt: number;
}

interface HeldReservation {
  state: 'reserved';
  amounts: number[];
  ttlMs: number;
  /** When it becomes reapable. */
  deadline: number;
  /** When the record may be forgotten even if nobody settled or reaped it (its lines are gone). */
  forgetAt: number;
  lines: { key: string; expiresAt: number; amountIndex: number }[];
}

/** What is kept of a reservation once settled: its outcome, until it may be forgotten. */
interface SettledReservation {
  state: 'committed' | 'released';
  /** The settled amounts (the actuals on commit, the reserved amounts on release). */
  settled: number[];
  forgetAt: number;
}

type Reservation = HeldReservation | SettledReservation;

interface ScopeBudgets {
  lines: Map<string, Line>;
  reservations: Map<string, Reservation>;
  /** Ids of reservations not settled yet. */
  held: Set<string>;
}

/** A refusal `check` found: what `reserve` answers, or null when the reservation fits. */
export type ReserveRefusal = Exclude<ReserveResult, { ok: true }>;

export interface SettledLines {
  result: SettleResult;
  /** Committed usage of the lines a commit moved. */
  used: { key: string; used: number }[];
}

const COMPACT_AFTER = 1024;

/**
 * When settled records may be forgotten, in the order they were settled; trimming advances a head.
 * Three parallel arrays rather than an object per entry: a busy gateway queues several records a
 * call, and the times stay unboxed.
 */
class ForgetQueue {
  private at: number[] = [];
  private owners: ScopeBudgets[] = [];
  private ids: string[] = [];
  private head = 0;

  push(at: number, owner: ScopeBudgets, id: string): void {
    this.at.push(at);
    this.owners.push(owner);
    this.ids.push(id);
  }

  get length(): number {
    return this.at.length - this.head;
  }

  /**
   * Hands every entry due by `now` to `visit`, stopping at the first one not due yet. Every record
   * gets the same horizon (or its shorter ttl), so the times are in order but for a short ttl.
   */
  drain(now: number, visit: (owner: ScopeBudgets, id: string) => void): void {
    while (this.head < this.at.length && (this.at[this.head] ?? Number.POSITIVE_INFINITY) <= now) {
      const owner = this.owners[this.head];
      const id = this.ids[this.head];
      this.head += 1;
      if (owner !== undefined && id !== undefined) visit(owner, id);
    }
    if (this.head > COMPACT_AFTER && this.head * 2 > this.at.length) {
      this.at = this.at.slice(this.head);
      this.owners = this.owners.slice(this.head);
      this.ids = this.ids.slice(this.head);
      this.head = 0;
    }
  }
}

/** The amount a line takes; validation guarantees the index names one. */
function amountOf(amounts: readonly number[], index: number | undefined): number {
  return amounts[index ?? 0] ?? 0;
}

/** Forgets the record if its time has come (the id may hold a newer record by now, due later). */
function forgetIfDue(now: number, owner: ScopeBudgets, id: string): void {
  const r = owner.reservations.get(id);
  if (r !== undefined && r.forgetAt <= now) {
    owner.reservations.delete(id);
    owner.held.delete(id);
  }
}

export class MemoryBudgets {
  private readonly scopes = new Map<string, ScopeBudgets>();
  /** Settled reservations, due `settledRecordMs` after settlement: the queue that keeps memory bounded. */
  private readonly settledForgets = new ForgetQueue();

  constructor(private readonly settledRecordMs = IN_PROCESS_SETTLED_RECORD_MS) {}

  /** Whether the reservation fits, without changing anything. */
  check(now: number, scope: string, request: ReserveRequest): ReserveRefusal | null {
    if (this.reservation(now, scope, request.reservationId) !== undefined) return { ok: false, reason: 'duplicate' };
    for (const spec of request.lines) {
      const line = this.line(now, scope, spec.key);
      const used = line?.used ?? 0;
      const reserved = line?.reserved ?? 0;
      if (used + reserved + amountOf(request.amounts, spec.amountIndex) > spec.cap) {
        return { ok: false, reason: 'exceeded', key: spec.key, cap: spec.cap, used, reserved };
      }
    }
    return null;
  }

  /** Holds a reservation `check` accepted. */
  hold(now: number, scope: string, request: ReserveRequest): void {
    const budgets = this.budgets(scope);
    const deadline = now + request.ttlMs;
    const held: HeldReservation['lines'] = [];
    let lastLine = deadline;
    for (const spec of request.lines) {
      // A line lives at least as long as the reservation on it, even if its period ends sooner.
      const expiresAt = Math.max(spec.expiresAt, deadline);
      const amountIndex = spec.amountIndex ?? 0;
      held.push({ key: spec.key, expiresAt, amountIndex });
      lastLine = Math.max(lastLine, expiresAt);
      const line = this.line(now, scope, spec.key) ?? { used: 0, reserved: 0, expiresAt };
      line.reserved += amountOf(request.amounts, amountIndex);
      line.expiresAt = Math.max(line.expiresAt, expiresAt);
      budgets.lines.set(spec.key, line);
    }
    const reservation: HeldReservation = {
      state: 'reserved',
      amounts: request.amounts.slice(),
      ttlMs: request.ttlMs,
      deadline,
      // Same safety horizon as Redis: once every line is gone the record no longer matters.
      forgetAt: lastLine + request.ttlMs,
      lines: held,
    };
    budgets.reservations.set(request.reservationId, reservation);
    budgets.held.add(request.reservationId);
  }

  reserve(now: number, scope: string, request: ReserveRequest): ReserveResult {
    const refused = this.check(now, scope, request);
    if (refused !== null) return refused;
    this.hold(now, scope, request);
    return { ok: true };
  }

  /** Commits `actual` (one per reserved amount) or releases (null). */
  settle(now: number, scope: string, id: string, actual: readonly number[] | null): SettledLines {
    const r = this.reservation(now, scope, id);
    if (r === undefined) return { result: { ok: false, reason: 'unknown' }, used: [] };
    if (r.state !== 'reserved') return { result: { ok: true, state: r.state === 'committed' ? 'already_committed' : 'already_released', amounts: r.settled.slice() }, used: [] };
    if (actual !== null && actual.length !== r.amounts.length) return { result: { ok: false, reason: 'mismatch' }, used: [] };
    const budgets = this.budgets(scope);
    const used: { key: string; used: number }[] = [];
    for (const spec of r.lines) {
      // The period of this line is over: its counter is gone and nothing is carried into the next.
      if (spec.expiresAt <= now) continue;
      const line = this.line(now, scope, spec.key) ?? { used: 0, reserved: 0, expiresAt: spec.expiresAt };
      line.reserved = Math.max(0, line.reserved - amountOf(r.amounts, spec.amountIndex));
      if (actual !== null) {
        line.used += amountOf(actual, spec.amountIndex);
        used.push({ key: spec.key, used: line.used });
      }
      budgets.lines.set(spec.key, line);
    }
    const settled: SettledReservation = { state: actual === null ? 'released' : 'committed', settled: actual === null ? r.amounts : actual.slice(), forgetAt: now + Math.min(r.ttlMs, this.settledRecordMs) };
    budgets.reservations.set(id, settled);
    budgets.held.delete(id);
    this.settledForgets.push(settled.forgetAt, budgets, id);
    return { result: { ok: true, state: settled.state, amounts: settled.settled.slice() }, used };
  }

  usage(now: number, scope: string, key: string): BudgetUsage {
    const line = this.line(now, scope, key);
    return { used: line?.used ?? 0, reserved: line?.reserved ?? 0 };
  }

  /** Releases held reservations of the scope past their deadline (at most `max`); returns how many. */
  reap(now: number, scope: string, max = Number.POSITIVE_INFINITY): number {
    const budgets = this.scopes.get(scope);
    if (budgets === undefined) return 0;
    const due: string[] = [];
    for (const id of budgets.held) {
      if (due.length >= max) break;
      const r = budgets.reservations.get(id);
      if (r === undefined || r.state !== 'reserved') budgets.held.delete(id);
      else if (r.deadline <= now) due.push(id);
    }
    for (const id of due) this.settle(now, scope, id, null);
    return due.length;
  }

  /**
   * Forgets settled reservations whose time has come, held ones whose lines are all gone (nobody
   * settled or reaped them), and expired lines; called now and then. Held reservations are few (the
   * calls in flight), so they are looked at directly rather than queued for a month-long line.
   */
  sweep(now: number): void {
    this.settledForgets.drain(now, (owner, id) => forgetIfDue(now, owner, id));
    for (const [name, budgets] of this.scopes) {
      for (const id of budgets.held) forgetIfDue(now, budgets, id);
      for (const [key, line] of budgets.lines) if (line.expiresAt <= now) budgets.lines.delete(key);
      if (budgets.lines.size === 0 && budgets.reservations.size === 0) this.scopes.delete(name);
    }
  }

  private budgets(scope: string): ScopeBudgets {
    let budgets = this.scopes.get(scope);
    if (budgets === undefined) {
      budgets = { lines: new Map(), reservations: new Map(), held: new Set() };
      this.scopes.set(scope, budgets);
    }
    return budgets;
  }

  private line(now: number, scope: string, key: string): Line | undefined {
    const budgets = this.scopes.get(scope);
    const line = budgets?.lines.get(key);
    if (line !== undefined && line.expiresAt <= now) {
      budgets?.lines.delete(key);
      return undefined;
    }
    return line;
  }

  private reservation(now: number, scope: string, id: string): Reservation | undefined {
    const budgets = this.scopes.get(scope);
    if (budgets === undefined) return undefined;
    forgetIfDue(now, budgets, id);
    return budgets.reservations.get(id);
  }
}
