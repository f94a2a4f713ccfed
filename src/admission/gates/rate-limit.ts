/**
 * Rate limit gate: a sliding burst window and a sliding hourly cap per principal within its org,
 * decided by ONE `hitWindows` call on the hot-state store. The store checks both windows and
 * consumes from both only if both allow, with its own time (Redis TIME), so a refused request
 * consumes nothing and replicas with skewed clocks agree: a burst limit of N admits exactly N.
 *
 * When the hot-state store is unreachable the call throws `HotStateUnavailable` and the pipeline
 * refuses with 503 `dependency_unavailable` (fail closed). We chose that over a per-replica local
 * fallback because a local limiter cannot keep the "exactly N across replicas" promise, and the
 * later gates (in-flight slot, budget) need the same store anyway, so a request admitted by a local
 * fallback would be refused one gate later.
 */
import type { Principal } from '../../identity/principal.js';
import type { HotState, WindowDecision, WindowSpec } from '../../store/state/port.js';
import { HOURLY_WINDOW_MS, type TypeLimit } from '../config.js';
import type { Refusal } from '../types.js';

export type LimitResolver = (principal: Principal) => TypeLimit;

export type RateLimitVerdict = { ok: true; headers: Record<string, string> } | { ok: false; refusal: Refusal; headers: Record<string, string> };

export function windowsFor(limit: TypeLimit): WindowSpec[] {
  const windows: WindowSpec[] = [{ name: 'burst', limit: limit.burst, windowMs: limit.burstWindowSeconds * 1000 }];
  if (limit.hourly !== null) windows.push({ name: 'hour', limit: limit.hourly, windowMs: HOURLY_WINDOW_MS });
  return windows;
}

/** Hot-state scope of a principal's windows: its org, so one org's counters never mix with another's. */
export function rateLimitScope(principal: Principal): string {
  return `rl:${principal.orgId ?? '-'}`;
}

/** `RateLimit-Policy` (IETF httpapi-ratelimit-headers draft): every window that applies. */
export function policyHeader(windows: WindowSpec[]): string {
  return windows.map((w) => `"${w.name}";q=${w.limit};w=${Math.round(w.windowMs / 1000)}`).join(', ');
}

/** `RateLimit`: the tightest window, its remaining quota and seconds until it frees a unit. */
export function rateLimitHeader(decision: WindowDecision): string {
  const seconds = Math.max(0, Math.ceil((decision.allowed ? decision.resetAt - decision.now : decision.retryAfterMs) / 1000));
  return `"${decision.window}";r=${decision.allowed ? decision.remaining : 0};t=${seconds}`;
}

export function createRateLimitGate(deps: { state: HotState; limits: LimitResolver }) {
  return async function rateLimit(principal: Principal): Promise<RateLimitVerdict> {
    const windows = windowsFor(deps.limits(principal));
    const decision = await deps.state.hitWindows(rateLimitScope(principal), principal.id, windows);
    const headers = { 'RateLimit-Policy': policyHeader(windows), RateLimit: rateLimitHeader(decision) };
    if (decision.allowed) return { ok: true, headers };
    const retryAfterSeconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    const seconds = Math.round((windows.find((w) => w.name === decision.window)?.windowMs ?? 0) / 1000);
    return {
      ok: false,
      headers,
      refusal: {
        gate: 'rate_limit',
        code: 'rate_limited',
        status: 429,
        message: `${decision.window} limit of ${decision.limit} per ${seconds} s reached`,
        retryAfterSeconds,
        limit: { window: decision.window, limit: decision.limit, windowSeconds: seconds },
      },
    };
  };
}
