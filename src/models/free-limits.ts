/**
 * Per-address limits on free models, counted in the hot state so every replica sees one count:
 * an hourly limit for all free-model traffic from an address, checked before authentication so a
 * flood of free requests never reaches the credential checks, and a daily cap on anonymous use.
 * Buckets are fixed hour/day windows keyed by their start, expiring with the window.
 */
import type { Clock } from '../core/clock.js';
import type { HotState } from '../store/state/index.js';

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;
const SCOPE = 'models-free';

export type FreeLimitDecision = { ok: true } | { ok: false; retryAfterSeconds: number; limit: 'hourly' | 'daily' };

export class FreeModelLimits {
  constructor(
    private readonly state: HotState,
    private readonly clock: Clock,
    private readonly limits: { perIpHourly: number; anonymousPerIpDaily: number },
  ) {}

  /** Counts one free-model request from `ip` toward its hourly limit; runs before any credential is checked. */
  async hitAddress(ip: string): Promise<FreeLimitDecision> {
    const now = this.clock.now();
    const hour = Math.floor(now / HOUR_MS);
    const hourly = await this.state.increment(SCOPE, `h:${hour}:${ip}`, 1, HOUR_MS + 60_000);
    if (hourly > this.limits.perIpHourly) return { ok: false, limit: 'hourly', retryAfterSeconds: Math.ceil(((hour + 1) * HOUR_MS - now) / 1000) };
    return { ok: true };
  }

  /** Counts one anonymous free-model request from `ip` toward its daily cap. */
  async hitAnonymous(ip: string): Promise<FreeLimitDecision> {
    const now = this.clock.now();
    const day = Math.floor(now / DAY_MS);
    const daily = await this.state.increment(SCOPE, `d:${day}:${ip}`, 1, DAY_MS + 60_000);
    if (daily > this.limits.anonymousPerIpDaily) return { ok: false, limit: 'daily', retryAfterSeconds: Math.ceil(((day + 1) * DAY_MS - now) / 1000) };
    return { ok: true };
  }
}
