/**
 * The in-flight slots of synchronous requests on THIS replica: an exact in-process counter, capped
 * per replica (the hard threshold of `concurrencyPerReplica`), so taking a slot costs no round trip
 * and no two requests can ever take the last one. A slot is taken tentatively before the request's
 * one hot-state step (it counts against the cap while that step runs, so the cap holds however many
 * decisions are in flight) and confirmed or given back when the step answers. Only confirmed
 * (admitted, unsettled) slots count as load for backpressure and in the replica's heartbeat.
 *
 * A slot nobody settles (a handler bug) stops counting after `ttlMs`, like the shared slot line did
 * before; slots of a replica that dies leave with its heartbeat.
 */

export interface SlotClaim {
  /** The request was admitted: the slot now counts as load until released. */
  confirm(): void;
  /** Gives the slot back (refused, or settled); idempotent. */
  release(): void;
}

export type SlotTake = { ok: true; claim: SlotClaim } | { ok: false; reason: 'full' | 'duplicate'; held: number };

/** One taken slot, and its own claim: one object per request rather than a record and two closures. */
class Slot implements SlotClaim {
  confirmed = false;
  released = false;

  constructor(
    private readonly owner: InFlightSlots,
    readonly requestId: string,
    readonly expiresAt: number,
  ) {}

  confirm(): void {
    if (this.released || this.confirmed || !this.owner.holds(this)) return;
    this.confirmed = true;
    this.owner.countConfirmed();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.owner.drop(this);
  }
}

export class InFlightSlots {
  private readonly slots = new Map<string, Slot>();
  private confirmedCount = 0;

  /** Admitted, unsettled synchronous requests on this replica. */
  get held(): number {
    return this.confirmedCount;
  }

  take(requestId: string, cap: number, now: number, ttlMs: number): SlotTake {
    if (this.slots.size >= cap) this.sweep(now);
    if (this.slots.has(requestId)) return { ok: false, reason: 'duplicate', held: this.slots.size };
    if (this.slots.size >= cap) return { ok: false, reason: 'full', held: this.slots.size };
    const slot = new Slot(this, requestId, now + ttlMs);
    this.slots.set(requestId, slot);
    return { ok: true, claim: slot };
  }

  /** Frees slots past their ttl (called when the cap is reached and on every heartbeat). */
  sweep(now: number): void {
    for (const slot of this.slots.values()) if (slot.expiresAt <= now) this.drop(slot);
  }

  // holds, countConfirmed and drop are the slots' side of their claims (Slot above); not for callers.

  /** Whether this slot still counts (a sweep may have dropped it). */
  holds(slot: Slot): boolean {
    return this.slots.get(slot.requestId) === slot;
  }

  countConfirmed(): void {
    this.confirmedCount += 1;
  }

  drop(slot: Slot): void {
    if (!this.holds(slot)) return;
    this.slots.delete(slot.requestId);
    if (slot.confirmed) this.confirmedCount -= 1;
  }
}
