/**
 * Rate limit: a sliding burst window and a sliding hourly cap per principal within its org. The
 * windows are checked and consumed inside the request's one atomic hot-state step (`HotState.admit`,
 * in the org's scope together with its budget lines), with the store's own time (Redis TIME), so a
 * refused request — refused here or at any later gate — consumes nothing, and replicas with skewed
 * clocks agree: a burst limit of N admits exactly N. This file turns limits into windows and the
 * store's decision into headers and refusals.
 *
 * When the hot-state store is unreachable the step throws `HotStateUnavailable` and the pipeline
 * refuses with 503 `dependency_unavailable` (fail closed). We chose that over a per-replica local
 * fallback because a local limiter cannot keep the "exactly N across replicas" promise, and the
 * budget gate needs the same store anyway.
 */
import type { Principal } from '../../identity/principal.js';
import type { WindowDecision, WindowSpec } from '../../store/state/port.js';
import { HOURLY_WINDOW_MS, type TypeLimit } from '../config.js';
import type { Refusal } from '../types.js';

export type LimitResolver = (principal: Principal) => TypeLimit;

const memo = new WeakMap<TypeLimit, WindowSpec[]>();

/** The windows of a limit (built once per limit object: limits are replaced, never mutated). */
export function windowsFor(limit: TypeLimit): WindowSpec[] {
  let windows = memo.get(limit);
  if (windows === undefined) {
    windows = [{ name: 'burst', limit: limit.burst, windowMs: limit.burstWindowSeconds * 1000 }];
    if (limit.hourly !== null) windows.push({ name: 'hour', limit: limit.hourly, windowMs: HOURLY_WINDOW_MS });
    memo.set(limit, windows);
  }
  return windows;
}

const policies = new WeakMap<WindowSpec[], string>();

/** `RateLimit-Policy` (IETF httpapi-ratelimit-headers draft): every window that applies (built once per windows list). */
export function policyHeader(windows: WindowSpec[]): string {
  let policy = policies.get(windows);
  if (policy === undefined) {
    policy = windows.map((w) => `"${w.name}";q=${w.limit};w=${Math.round(w.windowMs / 1000)}`).join(', ');
    policies.set(windows, policy);
  }
  return policy;
}

/** `RateLimit`: the tightest window, its remaining quota and seconds until it frees a unit. */
export function rateLimitHeader(decision: WindowDecision): string {
  const seconds = Math.max(0, Math.ceil((decision.allowed ? decision.resetAt - decision.now : decision.retryAfterMs) / 1000));
  return `"${decision.window}";r=${decision.allowed ? decision.remaining : 0};t=${seconds}`;
}

export function rateLimitHeaders(windows: WindowSpec[], decision: WindowDecision): Record<string, string> {
  return { 'RateLimit-Policy': policyHeader(windows), RateLimit: rateLimitHeader(decision) };
}

export function rateLimitRefusal(windows: WindowSpec[], decision: WindowDecision | undefined): Refusal {
  const window = decision?.window ?? '';
  const seconds = Math.round((windows.find((w) => w.name === window)?.windowMs ?? 0) / 1000);
  return {
    gate: 'rate_limit',
    code: 'rate_limited',
    status: 429,
    message: `${window} limit of ${decision?.limit ?? 0} per ${seconds} s reached`,
    retryAfterSeconds: Math.max(1, Math.ceil((decision?.retryAfterMs ?? 1000) / 1000)),
    limit: { window, limit: decision?.limit ?? 0, windowSeconds: seconds },
  };
}
