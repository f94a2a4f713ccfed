/**
 * In-process sliding-window log, the reference for what the Redis script computes. Each window
 * keeps its hits (time, cost) oldest first plus their running total, so a check costs the number of
 * hits that fell out of the window since the last check, not the size of the window.
 */
import type { WindowDecision, WindowSpec } from '../port.js';

/** Trimmed hits are cut off the front once there are this many and they are most of the log. */
const COMPACT_AFTER = 1024;

/**
 * A FIFO of hits with an advancing head, so trimming the oldest hits does not shift the arrays.
 * Times and costs sit in two arrays of numbers rather than an object per hit: a busy key keeps a
 * window's worth of hits (thousands a second), and objects that live that long are what the
 * garbage collector pays most for, copied between generations before they die. Hits of the same
 * millisecond are one entry: they count, and stop counting, together.
 */
export class HitLog {
  private times: number[] = [];
  private costs: number[] = [];
  private head = 0;
  total = 0;
  /** Last time a hit was added; the log is empty for good once lastHitAt + windowMs has passed. */
  lastHitAt = 0;

  /** Drops hits that no longer count: a hit at t counts while now < t + windowMs. */
  trim(now: number, windowMs: number): void {
    const threshold = now - windowMs;
    const { times, costs } = this;
    let head = this.head;
    while (head < times.length && (times[head] ?? Number.POSITIVE_INFINITY) <= threshold) {
      this.total -= costs[head] ?? 0;
      head += 1;
    }
    this.head = head;
    if (head > COMPACT_AFTER && head * 2 > times.length) {
      this.times = times.slice(head);
      this.costs = costs.slice(head);
      this.head = 0;
    }
  }

  add(now: number, cost: number): void {
    const last = this.times.length - 1;
    if (last >= this.head && this.times[last] === now) this.costs[last] = (this.costs[last] ?? 0) + cost;
    else {
      this.times.push(now);
      this.costs.push(cost);
    }
    this.total += cost;
    this.lastHitAt = now;
  }

  oldestAt(): number | undefined {
    return this.times[this.head];
  }

  /** Time of the hit whose expiry frees enough units for `need` more; undefined if never. */
  freedAfter(need: number): number | undefined {
    let freed = 0;
    for (let i = this.head; i < this.times.length; i += 1) {
      freed += this.costs[i] ?? 0;
      if (freed >= need) return this.times[i];
    }
    return undefined;
  }

  isEmpty(): boolean {
    return this.head >= this.times.length;
  }
}

/**
 * The refusal of a multi-window hit against logs already trimmed to `now`, or undefined when every
 * window allows it. Consumes nothing. `logs[i]` belongs to `windows[i]`.
 */
export function refuseWindows(now: number, windows: WindowSpec[], logs: HitLog[], cost: number): WindowDecision | undefined {
  let refusal: WindowDecision | undefined;
  for (let i = 0; i < windows.length; i += 1) {
    const spec = windows[i];
    const log = logs[i];
    if (spec === undefined || log === undefined) continue;
    const used = log.total;
    if (used + cost <= spec.limit) continue;
    // A cost above the limit can never pass; report a whole window so callers back off.
    const freedAt = cost > spec.limit ? undefined : log.freedAfter(used + cost - spec.limit);
    const resetAt = freedAt === undefined ? now + spec.windowMs : freedAt + spec.windowMs;
    // The request passes only when every window has freed, so the latest-freeing window is reported.
    if (refusal === undefined || resetAt > refusal.resetAt) {
      refusal = {
        allowed: false,
        window: spec.name,
        limit: spec.limit,
        remaining: Math.max(0, spec.limit - used),
        resetAt,
        retryAfterMs: resetAt - now,
        now,
      };
    }
  }
  return refusal;
}

/**
 * The tightest (least remaining) window of a hit every window allows, after consuming `cost` from
 * each when `consume` is set, or as things stand when not (a peek, or a hit another gate refused).
 * On every admitted request: loops, and one decision object for the window reported.
 */
export function tightestWindow(now: number, windows: WindowSpec[], logs: HitLog[], cost: number, consume: boolean): WindowDecision {
  let tightest = -1;
  let tightestRemaining = 0;
  for (let i = 0; i < windows.length; i += 1) {
    const spec = windows[i];
    const log = logs[i];
    if (spec === undefined || log === undefined) continue;
    if (consume && cost > 0) log.add(now, cost);
    const remaining = spec.limit - log.total;
    if (tightest === -1 || remaining < tightestRemaining) {
      tightest = i;
      tightestRemaining = remaining;
    }
  }
  const spec = windows[tightest];
  const oldest = logs[tightest]?.oldestAt();
  // windows is never empty (validated), so a window is found; the fallback only satisfies the types.
  if (spec === undefined) return { allowed: true, window: '', limit: 0, remaining: 0, resetAt: now, retryAfterMs: 0, now };
  return { allowed: true, window: spec.name, limit: spec.limit, remaining: tightestRemaining, resetAt: oldest === undefined ? now : oldest + spec.windowMs, retryAfterMs: 0, now };
}

/** Decides one multi-window hit, consuming only when every window allows. */
export function decideWindows(now: number, windows: WindowSpec[], logs: HitLog[], cost: number): WindowDecision {
  return refuseWindows(now, windows, logs, cost) ?? tightestWindow(now, windows, logs, cost, true);
}
