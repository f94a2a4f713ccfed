/**
 * Argument bounds both adapters enforce identically, so a caller sees the same refusal whichever
 * store runs. Bounds exist because every value here ends up in memory or in a Lua script: nothing
 * unbounded may reach them.
 */
import { invalidArgument } from './errors.js';
import type { AdmitRequest, BudgetLine, EnqueueGuard, QueueItem, ReserveRequest, Settlement, WindowSpec } from './port.js';

export const LIMITS = {
  scopeLength: 256,
  keyLength: 512,
  channelLength: 256,
  valueBytes: 1024 * 1024,
  payloadBytes: 256 * 1024,
  windowsPerHit: 8,
  windowNamePattern: /^[A-Za-z0-9_-]{1,64}$/,
  /** Longest window: a 31-day month keeps every hourly/daily/monthly limit possible. */
  maxWindowMs: 31 * 24 * 3600 * 1000,
  linesPerReservation: 8,
  /** Amounts one reservation holds (a call's money, tokens and requests, and room for one more). */
  amountsPerReservation: 4,
  /** Reservations per admit step and settlements per settle step. */
  reservationsPerStep: 8,
  /** Live members one presence set keeps; a beat beyond it is refused. */
  presenceMembers: 1000,
  /** Expired reservations an admit step reaps before checking a refusing line again. */
  reapOnRefusal: 100,
  /** Ten years; long enough for any lease, ttl or budget period. */
  maxTtlMs: 10 * 365 * 24 * 3600 * 1000,
  /** Items moved back per requeueExpired call, so one call never blocks the store for long. */
  requeueBatch: 1000,
  /** Outbox entries per read or acknowledgement. */
  outboxBatch: 1000,
  /**
   * How long the shared store (Redis) remembers a settled reservation (at most its ttl): long enough
   * for a settlement sent again after a lost reply or a reconnect to get the first answer, short
   * enough that a busy gateway with budgets does not hold every call of the last ttl (about 1.3 KB a
   * call with three metrics on org, user and key — two records, of eight lines and of one — so 600 s
   * of 1 000 calls/s would be 0.8 GB). The
   * in-process store keeps less (memory/memory-budgets.ts: no reply is lost there).
   */
  settledRecordMs: 60_000,
} as const;

/** Reject anything that could escape a Redis hash tag or an empty/oversized name. */
export function checkScope(scope: string, what = 'scope'): void {
  if (scope.length === 0 || scope.length > LIMITS.scopeLength) throw invalidArgument(`${what} length out of range`);
  if (scope.includes('{') || scope.includes('}')) throw invalidArgument(`${what} must not contain braces`);
}

export function checkKey(key: string, what = 'key'): void {
  if (key.length === 0 || key.length > LIMITS.keyLength) throw invalidArgument(`${what} length out of range`);
}

export function checkChannel(channel: string): void {
  if (channel.length === 0 || channel.length > LIMITS.channelLength) throw invalidArgument('channel length out of range');
}

export function checkNonNegativeInteger(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw invalidArgument(`${what} must be a non-negative safe integer`);
}

export function checkTtl(ttlMs: number, what = 'ttlMs'): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > LIMITS.maxTtlMs) throw invalidArgument(`${what} out of range`);
}

export function checkValue(value: string, maxBytes: number = LIMITS.valueBytes, what = 'value'): void {
  // Length first: a string longer than maxBytes UTF-16 units is surely too large; avoids encoding huge inputs.
  if (value.length > maxBytes || Buffer.byteLength(value, 'utf8') > maxBytes) throw invalidArgument(`${what} too large`);
}

export function checkWindows(windows: WindowSpec[], cost: number): void {
  if (windows.length === 0 || windows.length > LIMITS.windowsPerHit) throw invalidArgument('window count out of range');
  for (let i = 0; i < windows.length; i += 1) {
    const w = windows[i];
    if (w === undefined) throw invalidArgument('window missing');
    if (!LIMITS.windowNamePattern.test(w.name)) throw invalidArgument('window name must match [A-Za-z0-9_-]{1,64}');
    // A handful of windows at most (bounded above): comparing pairs costs less than a set per request.
    for (let j = 0; j < i; j += 1) if (windows[j]?.name === w.name) throw invalidArgument('window names must be unique');
    if (!Number.isSafeInteger(w.limit) || w.limit < 1) throw invalidArgument('window limit must be a positive integer');
    if (!Number.isSafeInteger(w.windowMs) || w.windowMs < 1 || w.windowMs > LIMITS.maxWindowMs) {
      throw invalidArgument('window length out of range');
    }
  }
  checkNonNegativeInteger(cost, 'cost');
}

export function checkReserve(request: ReserveRequest): void {
  checkKey(request.reservationId, 'reservationId');
  checkAmounts(request.amounts, 'amounts');
  checkTtl(request.ttlMs);
  if (request.lines.length === 0 || request.lines.length > LIMITS.linesPerReservation) {
    throw invalidArgument('line count out of range');
  }
  const keys = new Set<string>();
  for (const line of request.lines) checkLine(line, keys, request.amounts.length);
}

/** Reserved amounts or committed actuals: 1 to `amountsPerReservation` non-negative safe integers. */
export function checkAmounts(amounts: readonly number[], what: string): void {
  // Checked as an array too: a caller outside TypeScript may pass a bare number.
  const list: unknown = amounts;
  if (!Array.isArray(list) || amounts.length === 0 || amounts.length > LIMITS.amountsPerReservation) throw invalidArgument(`${what} count out of range`);
  for (const amount of amounts) checkNonNegativeInteger(amount, what);
}

export function checkAdmit(request: AdmitRequest): void {
  if (request.windows !== undefined) {
    checkKey(request.windows.key);
    checkWindows(request.windows.specs, request.windows.cost ?? 1);
  }
  if (request.reservations.length > LIMITS.reservationsPerStep) throw invalidArgument('reservation count out of range');
  if (request.reservations.length > 0) checkReservations(request.reservations);
  if (request.refusedAfter !== undefined && request.refusedAfter !== 'windows' && request.refusedAfter !== 'reservations') {
    throw invalidArgument('refusedAfter must be windows or reservations');
  }
}

function checkReservations(reservations: ReserveRequest[]): void {
  const ids = new Set<string>();
  const lines = new Set<string>();
  for (const reservation of reservations) {
    checkReserve(reservation);
    if (ids.has(reservation.reservationId)) throw invalidArgument('reservation ids must be unique');
    ids.add(reservation.reservationId);
    // One line in two reservations of a step would be checked against a stale count.
    for (const line of reservation.lines) {
      if (lines.has(line.key)) throw invalidArgument('line keys must be unique across reservations');
      lines.add(line.key);
    }
  }
}

export function checkSettlements(settlements: Settlement[]): void {
  if (settlements.length === 0 || settlements.length > LIMITS.reservationsPerStep) throw invalidArgument('settlement count out of range');
  const ids = new Set<string>();
  for (const s of settlements) {
    checkKey(s.reservationId, 'reservationId');
    if (ids.has(s.reservationId)) throw invalidArgument('reservation ids must be unique');
    ids.add(s.reservationId);
    if (s.commit !== null) checkAmounts(s.commit, 'commit');
  }
}

export function checkHeartbeat(member: string, value: string, ttlMs: number): void {
  checkKey(member, 'member');
  checkValue(value, 4096);
  checkTtl(ttlMs);
}

function checkLine(line: BudgetLine, seen: Set<string>, amounts: number): void {
  checkKey(line.key, 'line key');
  if (seen.has(line.key)) throw invalidArgument('line keys must be unique');
  seen.add(line.key);
  checkNonNegativeInteger(line.cap, 'cap');
  checkNonNegativeInteger(line.expiresAt, 'expiresAt');
  const index = line.amountIndex ?? 0;
  if (!Number.isSafeInteger(index) || index < 0 || index >= amounts) throw invalidArgument('amountIndex must name one of the amounts');
}

export function checkQueueItem(item: QueueItem, guard: EnqueueGuard | undefined, outboxEvent?: string): void {
  checkKey(item.id, 'item id');
  checkValue(item.payload, LIMITS.payloadBytes, 'payload');
  if (guard !== undefined) checkNonNegativeInteger(guard.maxLoad, 'maxLoad');
  if (outboxEvent !== undefined) checkOutboxEvent(outboxEvent);
}

export function checkOutboxEvent(outboxEvent: string): void {
  checkValue(outboxEvent, LIMITS.payloadBytes, 'outbox event');
}

export function checkOutboxBatch(count: number, what: string): void {
  if (!Number.isSafeInteger(count) || count < 1 || count > LIMITS.outboxBatch) throw invalidArgument(`${what} out of range`);
}
