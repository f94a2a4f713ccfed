/**
 * In-process budget lines and reservations: the reference for the Redis budget scripts. Every
 * method runs to completion without awaiting, which is what makes it atomic in one process.
 */
import type { BudgetUsage, ReserveRequest, ReserveResult, SettleResult } from '../port.js';

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

const SEP = '\u0000';

export class MemoryBudgets {
  private readonly lines = new Map<string, Line>();
  private readonly reservations = new Map<string, Reservation>();

  reserve(now: number, scope: string, request: ReserveRequest): ReserveResult {
    if (this.reservation(now, scope, request.reservationId) !== undefined) return { ok: false, reason: 'duplicate' };
    for (const spec of request.lines) {
      const line = this.line(now, scope, spec.key);
      const used = line?.used ?? 0;
      const reserved = line?.reserved ?? 0;
      if (used + reserved + request.amount > spec.cap) {
        return { ok: false, reason: 'exceeded', key: spec.key, cap: spec.cap, used, reserved };
      }
    }
    // A line lives at least as long as the reservation on it, even if its period ends sooner.
    const held = request.lines.map((spec) => ({ key: spec.key, expiresAt: Math.max(spec.expiresAt, now + request.ttlMs) }));
    for (const spec of held) {
      const line = this.line(now, scope, spec.key) ?? { used: 0, reserved: 0, expiresAt: spec.expiresAt };
      line.reserved += request.amount;
      line.expiresAt = Math.max(line.expiresAt, spec.expiresAt);
      this.lines.set(scope + SEP + spec.key, line);
    }
    const deadline = now + request.ttlMs;
    const lastLine = Math.max(...held.map((l) => l.expiresAt));
    this.reservations.set(scope + SEP + request.reservationId, {
      state: 'reserved',
      amount: request.amount,
      settled: 0,
      ttlMs: request.ttlMs,
      deadline,
      // Same safety horizon as Redis: once every line is gone the record no longer matters.
      forgetAt: Math.max(lastLine, deadline) + request.ttlMs,
      lines: held,
    });
    return { ok: true };
  }

  commit(now: number, scope: string, reservationId: string, actual: number): SettleResult {
    return this.settle(now, scope, reservationId, 'committed', actual);
  }

  release(now: number, scope: string, reservationId: string): SettleResult {
    return this.settle(now, scope, reservationId, 'released', 0);
  }

  usage(now: number, scope: string, key: string): BudgetUsage {
    const line = this.line(now, scope, key);
    return { used: line?.used ?? 0, reserved: line?.reserved ?? 0 };
  }

  reap(now: number, scope: string): number {
    let reaped = 0;
    const prefix = scope + SEP;
    for (const [id, r] of this.reservations) {
      if (!id.startsWith(prefix)) continue;
      if (r.state === 'reserved' && r.deadline <= now) {
        this.settle(now, scope, id.slice(prefix.length), 'released', 0);
        reaped += 1;
      }
    }
    return reaped;
  }

  /** Forgets expired lines and settled reservations; called now and then so idle keys do not pile up. */
  sweep(now: number): void {
    for (const [k, line] of this.lines) if (line.expiresAt <= now) this.lines.delete(k);
    for (const [k, r] of this.reservations) if (r.forgetAt <= now) this.reservations.delete(k);
  }

  private settle(now: number, scope: string, id: string, to: 'committed' | 'released', actual: number): SettleResult {
    const r = this.reservation(now, scope, id);
    if (r === undefined) return { ok: false, reason: 'unknown' };
    if (r.state === 'committed') return { ok: true, state: 'already_committed', amount: r.settled };
    if (r.state === 'released') return { ok: true, state: 'already_released', amount: r.settled };
    for (const spec of r.lines) {
      // The period of this line is over: its counter is gone and nothing is carried into the next.
      if (spec.expiresAt <= now) continue;
      const line = this.line(now, scope, spec.key) ?? { used: 0, reserved: 0, expiresAt: spec.expiresAt };
      line.reserved = Math.max(0, line.reserved - r.amount);
      if (to === 'committed') line.used += actual;
      this.lines.set(scope + SEP + spec.key, line);
    }
    r.state = to;
    r.settled = to === 'committed' ? actual : r.amount;
    r.forgetAt = now + r.ttlMs;
    return { ok: true, state: to, amount: r.settled };
  }

  private line(now: number, scope: string, key: string): Line | undefined {
    const k = scope + SEP + key;
    const line = this.lines.get(k);
    if (line !== undefined && line.expiresAt <= now) {
      this.lines.delete(k);
      return undefined;
    }
    return line;
  }

  private reservation(now: number, scope: string, id: string): Reservation | undefined {
    const k = scope + SEP + id;
    const r = this.reservations.get(k);
    if (r !== undefined && r.forgetAt <= now) {
      this.reservations.delete(k);
      return undefined;
    }
    return r;
  }
}
