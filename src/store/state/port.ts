/**
 * The hot-state port: everything on the request path that must be shared between replicas and
 * must be atomic. Two adapters implement it (memory/ for the embedded deployment, redis/ for the
 * distributed one) and both pass the one contract suite in contract.ts.
 *
 * Keys are grouped by a `scope` (a principal, an org, a queue name). The Redis adapter turns the
 * scope into a hash tag (`pc:{scope}:...`) so that every key one atomic operation touches lives in
 * one Redis Cluster slot. Scopes and keys are plain strings chosen by the caller; adapters must not
 * let a caller-supplied value escape its scope (no `}` in a scope).
 *
 * Every time-based decision takes its time from the store (`TIME` in Redis), never from the
 * replica's clock, so replicas with skewed clocks agree.
 */

/** One window of a sliding-window limit: at most `limit` units in any `windowMs` interval. */
export interface WindowSpec {
  /** A short name reported back on refusal, e.g. "burst" or "hour". */
  name: string;
  limit: number;
  windowMs: number;
}

export interface WindowDecision {
  allowed: boolean;
  /** The window that refused, or the tightest (least remaining) one when allowed. */
  window: string;
  limit: number;
  remaining: number;
  /** Milliseconds (store time) when one more unit of the reported window becomes available. */
  resetAt: number;
  /** 0 when allowed; otherwise how long until the request would be admitted. */
  retryAfterMs: number;
  /** Store time of the decision. */
  now: number;
}

export interface BudgetLine {
  /** Budget counter key within the scope, e.g. "budget:org:month:2026-11". */
  key: string;
  /** Hard cap in integer units (micro-units of money, tokens or requests). */
  cap: number;
  /** When the counter may be forgotten (store time, ms); the end of its period plus slack. */
  expiresAt: number;
  /** Which of the reservation's `amounts` this line takes (an index; 0 when absent). */
  amountIndex?: number;
}

export interface ReserveRequest {
  reservationId: string;
  /**
   * What the reservation holds: one amount or several (money, tokens and requests of one call, at
   * most 4), each line taking the one its `amountIndex` names, so one reservation covers a call.
   */
  amounts: number[];
  lines: BudgetLine[];
  /** Reservation lifetime; an unsettled reservation older than this is freed by reapReservations. */
  ttlMs: number;
}

export type ReserveResult =
  | { ok: true }
  | { ok: false; reason: 'exceeded'; key: string; cap: number; used: number; reserved: number }
  | { ok: false; reason: 'duplicate' };

/** `amounts`: what was settled, one per reserved amount (the actuals on commit, the reserved ones on release). */
export type SettleResult =
  | { ok: true; state: 'committed' | 'released'; amounts: number[] }
  | { ok: true; state: 'already_committed' | 'already_released'; amounts: number[] }
  /** Not remembered (never reserved, or settled and forgotten); nothing changed. */
  | { ok: false; reason: 'unknown' }
  /** A commit whose actuals are not one per reserved amount; nothing changed. */
  | { ok: false; reason: 'mismatch' };

/**
 * The counter gates of one request in ONE atomic step (see `HotState.admit`): the rate-limit windows
 * first, then the budget reservations, in gate order. Everything lives in one scope (one Redis slot).
 */
export interface AdmitRequest {
  /** Sliding windows of the caller's rate limit (as `hitWindows`); absent when the request is not throttled. */
  windows?: { key: string; specs: WindowSpec[]; cost?: number };
  /** Reservations, all or nothing across all of them; at most 8. */
  reservations: ReserveRequest[];
  /**
   * A gate decided in-process has already refused the request: `windows` — a gate between the rate
   * limit and the reservations (backpressure, circuit, an unpriced model); `reservations` — a gate
   * after them (the in-flight slot). The store checks only what comes before that point, so the
   * refusal reported keeps gate order, and consumes nothing.
   */
  refusedAfter?: 'windows' | 'reservations';
}

export type AdmitOutcome =
  | { ok: true }
  /** The windows refused; `windows` is the refusal. */
  | { ok: false; refusedBy: 'windows' }
  /** Everything before `refusedAfter` passed, so the caller's own refusal stands. */
  | { ok: false; refusedBy: 'caller' }
  /** A reservation id already seen in the scope; `reservation` is its index. */
  | { ok: false; refusedBy: 'duplicate'; reservation: number }
  /** A budget line would pass its cap (after reaping expired reservations of the scope once). */
  | { ok: false; refusedBy: 'exceeded'; reservation: number; key: string; cap: number; used: number; reserved: number };

export type AdmitResult = AdmitOutcome & {
  /**
   * The window decision (as `hitWindows` reports it) when windows were given: the refusal, or the
   * tightest window — after this hit when admitted, without it when nothing was consumed.
   */
  windows?: WindowDecision;
  /** Expired reservations of the scope released during this step (leaks freed on the way). */
  reaped: number;
  /** Store time of the decision. */
  now: number;
};

/** One reservation to settle: `commit` the actual of each reserved amount, or release everything when null. */
export interface Settlement {
  reservationId: string;
  commit: number[] | null;
}

export interface SettleManyResult {
  /** One result per settlement, in order. */
  results: SettleResult[];
  /** Committed usage of every line a commit in this step moved, read in the same step. */
  used: { key: string; used: number }[];
}

/** A live member of a presence set and the value it last reported. */
export interface PresenceMember {
  member: string;
  value: string;
}

export interface BudgetUsage {
  used: number;
  reserved: number;
}

export interface QueueItem {
  id: string;
  payload: string;
}

export interface EnqueueGuard {
  /** Refuse when queued + in-flight would exceed this number after the push. */
  maxLoad: number;
}

/** `duplicate`: an item with this id is already queued or in flight (enqueue is idempotent by id). */
export type EnqueueResult =
  | { ok: true; depth: number }
  | { ok: false; reason: 'full'; load: number }
  | { ok: false; reason: 'duplicate' };

export interface ClaimedItem extends QueueItem {
  workerId: string;
  leaseExpiresAt: number;
  attempts: number;
}

/** An event waiting in a queue's outbox, to be copied to the record store and then acknowledged. */
export interface OutboxEntry {
  /** Opaque, unique within the queue, increasing in write order. */
  id: string;
  event: string;
}

/** The outbox entry `requeueExpired(queue, { outbox: true })` writes for each item it moves back. */
export interface RequeueOutboxEvent {
  type: typeof REQUEUE_OUTBOX_TYPE;
  itemId: string;
  /** The worker whose lease lapsed. */
  workerId: string;
  /** Claims of the item so far (the lapsed claim was the last); with itemId, unique per requeue. */
  attempts: number;
  /** Store time (ms) of the requeue. */
  at: number;
}
export const REQUEUE_OUTBOX_TYPE = 'queue.requeue';

export type QueueItemState = { state: 'queued' } | { state: 'held'; workerId: string } | { state: 'absent' };

export type MessageHandler = (message: string) => void;

export interface HotState {
  readonly kind: 'memory' | 'redis';

  /** Store time in ms. */
  now(): Promise<number>;

  /**
   * Exact sliding windows (a log of hits per window, no fixed buckets, so no double burst at an
   * edge). A hit at time t counts in a window while now < t + windowMs. Checks every window at once
   * and consumes `cost` (default 1; 0 only reads) from all of them only if all allow; a refused hit
   * consumes nothing. When refused, the reported window is the one that frees last and
   * `retryAfterMs` is exactly how long until this same hit would be admitted. Window names must
   * match [A-Za-z0-9_-]{1,64}; the log of a window is kept under (scope, key, window name).
   */
  hitWindows(scope: string, key: string, windows: WindowSpec[], cost?: number): Promise<WindowDecision>;
  /** Adds to a plain counter that expires `ttlMs` after its first increment (later calls do not extend it); returns the new value. */
  increment(scope: string, key: string, by: number, ttlMs: number): Promise<number>;

  /**
   * The counter gates of one request in one atomic step, on store time: checks the windows (as
   * `hitWindows`), then — unless `refusedAfter` says a gate in between refused — every reservation
   * (as `reserve`; a line that would pass its cap while reservations are held on it first reaps the
   * scope's expired reservations and is checked again), then consumes the windows and holds every
   * reservation only if everything passed. A refusal at any point consumes nothing anywhere, and
   * the first refusal in that order is the one reported.
   */
  admit(scope: string, request: AdmitRequest): Promise<AdmitResult>;
  /**
   * Reserves on every line the amount it takes, all or nothing: admitted only when used + reserved +
   * amount <= cap holds on every line. A reservation id seen before in the scope (settled or not, while it
   * is remembered) is `duplicate`. Line counters live until their `expiresAt`. (`admit` with one
   * reservation and no windows.)
   */
  reserve(scope: string, request: ReserveRequest): Promise<ReserveResult>;
  /**
   * Settles several reservations of the scope in one atomic step, each as `commit` or `release`
   * would (idempotent by reservation id), and reports the committed usage of the lines it moved.
   * At most 8 settlements.
   */
  settleReservations(scope: string, settlements: Settlement[]): Promise<SettleManyResult>;
  /**
   * Moves the reservation to used: every line gets the actual of the amount it took (`actual` holds
   * one per reserved amount, in order; any other count answers `mismatch`). Idempotent by
   * reservation id: a second commit answers `already_committed` with the first actuals and changes
   * nothing; a commit after a release answers `already_released`. An actual is recorded as given,
   * even above the reserved amount, because it is what was really spent; admission passes actual <=
   * reserved. A settled
   * outcome is remembered for the retry horizon, at most the reservation's ttl: 60 s on a shared
   * store (a settlement sent again after a lost reply gets the first answer), 1 s in process (no
   * reply is lost there; only settlements of the same moment repeat). A settlement of a reservation
   * no longer remembered answers `unknown` and changes nothing.
   */
  commit(scope: string, reservationId: string, actual: number[]): Promise<SettleResult>;
  /** Frees the reservation entirely (idempotent by reservation id; after a commit: `already_committed`). */
  release(scope: string, reservationId: string): Promise<SettleResult>;
  budgetUsage(scope: string, key: string): Promise<BudgetUsage>;
  /** Releases reservations in the scope whose ttl has passed (they then settle as `already_released`); returns how many. */
  reapReservations(scope: string): Promise<number>;

  /**
   * Presence: records `member` as alive with `value` until `ttlMs` from now (store time), forgets
   * members whose time has passed, and returns every live member (this one included). One step, so
   * replicas beating with skewed clocks still agree on who is alive. At most 1000 members per scope.
   */
  heartbeat(scope: string, member: string, value: string, ttlMs: number): Promise<PresenceMember[]>;

  get(scope: string, key: string): Promise<string | null>;
  set(scope: string, key: string, value: string, ttlMs?: number): Promise<void>;
  /** Sets only when absent; true when this call set it. */
  setIfAbsent(scope: string, key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Reads and deletes in one step: a one-time value is returned to exactly one caller. */
  takeOnce(scope: string, key: string): Promise<string | null>;
  delete(scope: string, key: string): Promise<void>;

  /**
   * Fire-and-forget broadcast to every subscriber of the channel in every replica. Delivery is
   * asynchronous and at most once: a replica that is disconnected when a message is published
   * misses it, so use pub/sub to invalidate caches that also have a TTL, never as the only record.
   */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Resolves once the subscription is active: a message published after that reaches `handler`.
   * The returned function unsubscribes this handler (idempotent). A throwing handler does not
   * affect other handlers.
   */
  subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>>;

  /**
   * Appends to the tail (FIFO). With a guard, refuses atomically when queued + inFlight + 1 >
   * maxLoad. Queue names follow the scope rules (no braces): the queue name is the hash tag.
   *
   * `outboxEvent` (transactional outbox): written to the queue's outbox in the same atomic step as
   * the push, and only when the push succeeds, so there is never a task without its event nor an
   * event without its task. A relay copies outbox entries to the record store (idempotently by
   * entry id) and then acknowledges them.
   */
  enqueue(queue: string, item: QueueItem, guard?: EnqueueGuard, outboxEvent?: string): Promise<EnqueueResult>;
  /** The oldest `max` (1..1000) unacknowledged outbox entries, oldest first. Entries are never dropped unacknowledged. */
  readOutbox(queue: string, max: number): Promise<OutboxEntry[]>;
  /** Removes these outbox entries; returns how many existed. Safe to repeat. */
  ackOutbox(queue: string, ids: string[]): Promise<number>;
  /** Takes the head item and leases it to `workerId` until now + leaseMs; `attempts` counts claims of this item. */
  claim(queue: string, workerId: string, leaseMs: number): Promise<ClaimedItem | null>;
  /** Extends the lease of an item this worker holds; false when it no longer holds it or the lease has lapsed. */
  renew(queue: string, itemId: string, workerId: string, leaseMs: number): Promise<boolean>;
  /**
   * Removes a claimed item for good; false when the worker no longer holds it. A lapsed lease that
   * has not been requeued yet is still held: finishing late is better than running the work twice.
   * `outboxEvent` is written to the outbox in the same atomic step, and only when the item was removed.
   */
  complete(queue: string, itemId: string, workerId: string, outboxEvent?: string): Promise<boolean>;
  /**
   * Puts items whose lease has passed back at the head of the queue; returns how many. With
   * `outbox: true`, each item moved also gets an outbox entry in the same atomic step: the JSON of a
   * `RequeueOutboxEvent` (the store writes it, since only the store knows which leases lapsed).
   */
  requeueExpired(queue: string, options?: { outbox?: boolean }): Promise<number>;
  /** Where an item is: waiting in the queue, held by a worker, or not in the queue (never enqueued or completed). */
  queueItemState(queue: string, itemId: string): Promise<QueueItemState>;
  queueLoad(queue: string): Promise<{ queued: number; inFlight: number }>;

  /**
   * Throws when the store cannot be reached. Every method throws `HotStateUnavailable` (see
   * errors.ts; an AppError `dependency_unavailable`) when the store is unreachable, so callers can
   * fail closed with a 503 and tell it apart from bugs.
   */
  ping(): Promise<void>;
  close(): Promise<void>;
}
