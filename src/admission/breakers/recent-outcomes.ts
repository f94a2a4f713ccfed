/**
 * The last outcomes of calls to one dependency as this replica saw them, and what share of them
 * failed. A breaker opens on a count of failures only when they are also that large a share of what
 * is happening: a busy dependency that fails now and then is not down, and one tenant whose own
 * requests time out among everyone else's successes cannot pause the dependency for all of them.
 *
 * The ring holds `failureThreshold / failureRatio` outcomes (rounded down), so a dependency failing
 * every call still opens after exactly `failureThreshold` failures, whatever it did before.
 */
import type { CircuitSettings } from '../config.js';

/** Bounds the ring (a byte per outcome, per dependency) whatever the settings say. */
const MAX_OUTCOMES = 1024;
/** Keeps `3 / 0.3` at 10 and `0.3 × 10` at 3 in floating point. */
const EPSILON = 1e-9;

/** How many outcomes the share is taken over; 0 when the ratio is off. */
export function outcomesCounted(settings: Pick<CircuitSettings, 'failureThreshold' | 'failureRatio'>): number {
  if (settings.failureRatio <= 0) return 0;
  return Math.min(MAX_OUTCOMES, Math.max(settings.failureThreshold, Math.floor(settings.failureThreshold / settings.failureRatio + EPSILON)));
}

export class RecentOutcomes {
  #failed = new Uint8Array(0);
  #next = 0;
  #seen = 0;
  #failures = 0;

  /** `length` follows the live settings; a change starts the count afresh. */
  record(failed: boolean, length: number): void {
    if (length !== this.#failed.length) this.#resize(length);
    if (length === 0) return;
    const slot = this.#next;
    if (this.#seen === length) this.#failures -= this.#failed[slot] ?? 0;
    else this.#seen += 1;
    this.#failed[slot] = failed ? 1 : 0;
    if (failed) this.#failures += 1;
    this.#next = slot + 1 === length ? 0 : slot + 1;
  }

  /** Whether the failures among the outcomes seen reach `ratio` (always, when the ratio is off). */
  reaches(ratio: number): boolean {
    if (ratio <= 0) return true;
    return this.#seen > 0 && this.#failures + EPSILON >= ratio * this.#seen;
  }

  clear(): void {
    this.#resize(this.#failed.length);
  }

  #resize(length: number): void {
    this.#failed = new Uint8Array(length);
    this.#next = 0;
    this.#seen = 0;
    this.#failures = 0;
  }
}
