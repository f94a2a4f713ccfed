/**
 * In-process budget lines and reservations: the reference for the Redis budget scripts. Every
 * method runs to completion without awaiting, which is what makes it atomic in one process.
 *
 * State is kept per scope, with the unsettled reservations of a scope in their own set, so reaping
 * looks only at what is still held. Settled reservations are remembered for a while (for
 * idempotent settlement: `LIMITS.settledRecordMs`, at most their ttl) and forgotten through
 * queues ordered by when they may go (one for held, one for settled reservations, so a held one's
 * far-off time never delays the settled ones), so cleanup costs in proportion to what expires, not
 * to everything remembered.
 */
import type { BudgetUsage, ReserveRequest, ReserveResult, SettleResult } from '../port.js';
import { LIMITS } from '../validation.js';

interface Line {
  used: number;
  reserved: number;
  expiresAt: number;
}

interface Reservation {
  state: 'reserved' | 'committed' | 'released';
  amount: number;
  /** The settled amount (actual on commit, the reserved amount on release). */
  settled: number;
  ttlMs: number;
  /** When an unsettled reservation becomes reapable. */
  deadline: number;
  /** When the record may be forgotten (settled: ttl after settlement). */
  forgetAt: number;
  lines: { key: string; expiresAt: number }[];
}

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

const COMPACT_AFTER = 4096;

/** When records may be forgotten, in the order they were queued; trimming advances a head. */
class ForgetQueue {
  private entries: { at: number; scope: string; id: string }[] = [];
  private head = 0;

  push(at: number, scope: string, id: string): void {
    this.entries.push({ at, scope, id });
  }

  /**
   * Hands every entry due by `now` to `visit`, stopping at the first one not due yet: an entry
   * due later than those queued after it delays them, by at most the spread of the times this
   * queue is given (which is why held and settled reservations have a queue each).
   */
  drain(now: number, visit: (scope: string, id: string) => void): void {
    while (this.head < this.entries.length) {
      const next = this.entries[this.head];
      if (next === undefined || next.at > now) break;
      this.head += 1;
      visit(next.scope, next.id);
    }
    if (this.head > COMPACT_AFTER && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}

export class MemoryBudgets {
  private readonly scopes = new Map<string, ScopeBudgets>();
  /** Held reservations, due when their last line is over: the safety net for one nobody settles or reaps. */
  private readonly heldForgets = new ForgetQueue();
  /** Settled reservations, due `LIMITS.settledRecordMs` after settlement: the queue that keeps memory bounded. */
  private readonly settledForgets = new ForgetQueue();

  /** Whether the reservation fits, without changing anything. */
  check(now: number, scope: string, request: ReserveRequest): ReserveRefusal | null {
    if (this.reservation(now, scope, request.reservationId) !== undefined) return { ok: false, reason: 'duplicate' };
    for (const spec of request.lines) {
      const line = this.line(now, scope, spec.key);
      const used = line?.used ?? 0;
      const reserved = line?.reserved ?? 0;
      if (used + reserved + request.amount > spec.cap) {
        return { ok: false, reason: 'exceeded', key: spec.key, cap: spec.cap, used, reserved };
      }
    }
    return null;
  }

  /** Holds a reservation `check` accepted. */
  hold(now: number, scope: string, request: ReserveRequest): void {
    const budgets = this.budgets(scope);
    // A line lives at least as long as the reservation on it, even if its period ends sooner.
    const held = request.lines.map((spec) => ({ key: spec.key, expiresAt: Math.max(spec.expiresAt, now + request.ttlMs) }));
    for (const spec of held) {
      const line = this.line(now, scope, spec.key) ?? { used: 0, reserved: 0, expiresAt: spec.expiresAt };
      line.reserved += request.amount;
      line.expiresAt = Math.max(line.expiresAt, spec.expiresAt);
      budgets.lines.set(spec.key, line);
    }
    const deadline = now + request.ttlMs;
    const lastLine = Math.max(...held.map((l) => l.expiresAt));
    const reservation: Reservation = {
      state: 'reserved',
      amount: request.amount,
      settled: 0,
      ttlMs: request.ttlMs,
      deadline,
      // Same safety horizon as Redis: once every line is gone the record no longer matters.
      forgetAt: Math.max(lastLine, deadline) + request.ttlMs,
      lines: held,
    };
    budgets.reservations.set(request.reservationId, reservation);
    budgets.held.add(request.reservationId);
    this.heldForgets.push(reservation.forgetAt, scope, request.reservationId);
  }

  reserve(now: number, scope: string, request: ReserveRequest): ReserveResult {
    const refused = this.check(now, scope, request);
    if (refused !== null) return refused;
    this.hold(now, scope, request);
    return { ok: true };
  }

  /** Commits `actual` (a number) or releases (null). */
  settle(now: number, scope: string, id: string, actual: number | null): SettledLines {
    const r = this.reservation(now, scope, id);
    if (r === undefined) return { result: { ok: false, reason: 'unknown' }, used: [] };
    if (r.state === 'committed') return { result: { ok: true, state: 'already_committed', amount: r.settled }, used: [] };
    if (r.state === 'released') return { result: { ok: true, state: 'already_released', amount: r.settled }, used: [] };
    const budgets = this.budgets(scope);
    const used: { key: string; used: number }[] = [];
    for (const spec of r.lines) {
      // The period of this line is over: its counter is gone and nothing is carried into the next.
      if (spec.expiresAt <= now) continue;
      const line = this.line(now, scope, spec.key) ?? { used: 0, reserved: 0, expiresAt: spec.expiresAt };
      line.reserved = Math.max(0, line.reserved - r.amount);
      if (actual !== null) {
        line.used += actual;
        used.push({ key: spec.key, used: line.used });
      }
      budgets.lines.set(spec.key, line);
    }
    r.state = actual === null ? 'released' : 'committed';
    r.settled = actual ?? r.amount;
    r.forgetAt = now + Math.min(r.ttlMs, LIMITS.settledRecordMs);
    budgets.held.delete(id);
    this.settledForgets.push(r.forgetAt, scope, id);
    return { result: { ok: true, state: r.state, amount: r.settled }, used };
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
      if (r === undefined) budgets.held.delete(id);
      else if (r.deadline <= now) due.push(id);
    }
    for (const id of due) this.settle(now, scope, id, null);
    return due.length;
  }

  /** Forgets settled reservations whose time has come and expired lines; called now and then. */
  sweep(now: number): void {
    // The record may have been settled since (a later forgetAt); reservation() decides on its own time.
    const visit = (scope: string, id: string): void => void this.reservation(now, scope, id);
    this.settledForgets.drain(now, visit);
    this.heldForgets.drain(now, visit);
    for (const [name, budgets] of this.scopes) {
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
    const r = budgets?.reservations.get(id);
    if (r !== undefined && r.forgetAt <= now) {
      budgets?.reservations.delete(id);
      budgets?.held.delete(id);
      return undefined;
    }
    return r;
  }
}
