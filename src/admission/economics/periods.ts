/**
 * Budget periods with boundaries in UTC. A period has a label that becomes part of the counter key
 * (`day:2026-11-22`, `month:2026-11`, `total`), so a new period starts from zero simply by using a
 * new key, and the old counter expires on its own a little after its period ends.
 */
export type Period = 'day' | 'month' | 'total';
export const PERIODS: readonly Period[] = ['day', 'month', 'total'];

/** Counters outlive their period by this much, so a late settlement still finds its line. */
export const PERIOD_SLACK_MS = 24 * 60 * 60 * 1000;
/** "Total" has no end; its counters are kept for the longest ttl the hot state allows. */
export const TOTAL_LIFETIME_MS = 9 * 365 * 24 * 60 * 60 * 1000;

export interface PeriodWindow {
  label: string;
  /** Start of the period (ms, UTC); 0 for total. */
  startsAt: number;
  /** End of the period (exclusive, ms, UTC); null for total. */
  endsAt: number | null;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

export function periodWindow(period: Period, now: number): PeriodWindow {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  switch (period) {
    case 'day': {
      const day = d.getUTCDate();
      return { label: `day:${y}-${pad(m + 1)}-${pad(day)}`, startsAt: Date.UTC(y, m, day), endsAt: Date.UTC(y, m, day + 1) };
    }
    case 'month':
      return { label: `month:${y}-${pad(m + 1)}`, startsAt: Date.UTC(y, m, 1), endsAt: Date.UTC(y, m + 1, 1) };
    case 'total':
      return { label: 'total', startsAt: 0, endsAt: null };
  }
}

/** When the counter of this period may be forgotten (store time, ms). */
export function counterExpiresAt(window: PeriodWindow, now: number): number {
  return window.endsAt === null ? now + TOTAL_LIFETIME_MS : window.endsAt + PERIOD_SLACK_MS;
}

/** Whole seconds until a period that resets at `resetsAt` does, rounded up; undefined for total (waiting does not help). */
export function secondsUntilReset(resetsAt: number | null, now: number): number | undefined {
  return resetsAt === null ? undefined : Math.max(1, Math.ceil((resetsAt - now) / 1000));
}
