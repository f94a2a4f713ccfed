/**
 * The in-process `admit` and `settleReservations` steps: the reference for the Redis admit and
 * settle-many scripts. Synchronous from start to end, which makes each step atomic in one process.
 */
import type { AdmitRequest, AdmitResult, SettleManyResult, Settlement, WindowDecision } from '../port.js';
import { LIMITS } from '../validation.js';
import type { MemoryBudgets, ReserveRefusal } from './memory-budgets.js';
import type { MemoryWindows } from './memory-windows.js';
import { refuseWindows, tightestWindow } from './sliding-log.js';

export function admitStep(now: number, scope: string, request: AdmitRequest, windows: MemoryWindows, budgets: MemoryBudgets): AdmitResult {
  let reaped = 0;
  let triedReap = false;
  const spec = request.windows;
  const logs = spec === undefined ? [] : windows.logsFor(now, scope, spec.key, spec.specs);
  const cost = spec?.cost ?? 1;
  const peek = (): WindowDecision | undefined => (spec === undefined ? undefined : tightestWindow(now, spec.specs, logs, cost, false));

  if (spec !== undefined) {
    const refusal = refuseWindows(now, spec.specs, logs, cost);
    if (refusal !== undefined) return { ok: false, refusedBy: 'windows', windows: refusal, reaped, now };
  }
  if (request.refusedAfter === 'windows') return withWindows({ ok: false, refusedBy: 'caller', reaped, now }, peek());

  for (const [index, reservation] of request.reservations.entries()) {
    let refusal: ReserveRefusal | null = budgets.check(now, scope, reservation);
    // Held reservations may be leaks past their deadline: free them once and look again.
    if (refusal !== null && refusal.reason === 'exceeded' && refusal.reserved > 0 && !triedReap) {
      triedReap = true;
      reaped = budgets.reap(now, scope, LIMITS.reapOnRefusal);
      if (reaped > 0) refusal = budgets.check(now, scope, reservation);
    }
    if (refusal === null) continue;
    if (refusal.reason === 'duplicate') return withWindows({ ok: false, refusedBy: 'duplicate', reservation: index, reaped, now }, peek());
    const { key, cap, used, reserved } = refusal;
    return withWindows({ ok: false, refusedBy: 'exceeded', reservation: index, key, cap, used, reserved, reaped, now }, peek());
  }
  if (request.refusedAfter === 'reservations') return withWindows({ ok: false, refusedBy: 'caller', reaped, now }, peek());

  for (const reservation of request.reservations) budgets.hold(now, scope, reservation);
  const decision = spec === undefined ? undefined : tightestWindow(now, spec.specs, logs, cost, true);
  return withWindows({ ok: true, reaped, now }, decision);
}

/** Adds the window decision to a result built just above (one object per decision, no copy). */
function withWindows(result: AdmitResult, windows: WindowDecision | undefined): AdmitResult {
  if (windows !== undefined) result.windows = windows;
  return result;
}

export function settleStep(now: number, scope: string, settlements: Settlement[], budgets: MemoryBudgets): SettleManyResult {
  const out: SettleManyResult = { results: [], used: [] };
  for (const s of settlements) {
    const settled = budgets.settle(now, scope, s.reservationId, s.commit);
    out.results.push(settled.result);
    out.used.push(...settled.used);
  }
  return out;
}
