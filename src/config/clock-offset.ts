/**
 * `PORTCULLIS_CLOCK_OFFSET_MS`: shifts this process's own clock (the Clock every service gets from
 * the composition root) by a signed number of milliseconds. It exists to test and demonstrate that
 * replicas whose clocks disagree still make the same admission decisions, because every time-based
 * decision that must agree across replicas (rate-limit windows, reservation deadlines, replica
 * liveness, breaker timing) takes its time from the hot-state store, not from this clock. It does
 * not change the system time, Node's Date, or the store's time; leave it unset in production.
 */
import type { Clock } from '../core/clock.js';
import { ConfigError } from './errors.js';

export const CLOCK_OFFSET_ENV = 'PORTCULLIS_CLOCK_OFFSET_MS';
/** One day either way: enough for any skew test, small enough that nothing expires by accident. */
const MAX_OFFSET_MS = 24 * 60 * 60 * 1000;

export function clockOffsetFromEnv(env: NodeJS.ProcessEnv): number {
  const raw = env[CLOCK_OFFSET_ENV];
  if (raw === undefined || raw.trim() === '') return 0;
  const value = Number(raw);
  if (!/^-?\d{1,9}$/.test(raw.trim()) || !Number.isSafeInteger(value) || Math.abs(value) > MAX_OFFSET_MS) {
    throw ConfigError.single(CLOCK_OFFSET_ENV, 'must be a whole number of milliseconds between -86400000 and 86400000', `unset it, or set e.g. ${CLOCK_OFFSET_ENV}=-120000`);
  }
  return value;
}

/** `inner` shifted by `offsetMs` (the same clock when 0). */
export function offsetClock(inner: Clock, offsetMs: number): Clock {
  if (offsetMs === 0) return inner;
  return { now: () => inner.now() + offsetMs };
}
