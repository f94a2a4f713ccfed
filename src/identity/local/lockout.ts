/**
 * Brute-force lockout for sign-in: failures are counted per account and per client address in the
 * hot state (so every replica sees the same counts). Reaching the limit within the window locks
 * that account or address for the lock period; while locked, even the right password is refused.
 * A success resets nothing: otherwise an attacker's count on an account could be wiped by its
 * owner signing in elsewhere, and one address's success could clear another's.
 *
 * Accounts are keyed by a hash of the submitted email whether or not it exists, so lockout
 * behaves the same for unknown emails and reveals nothing.
 */
import { sha256Hex } from '../../core/crypto.js';
import type { HotState } from '../../store/state/port.js';
import type { LockoutConfig } from './config.js';

export type LockoutCheck = { locked: false } | { locked: true; retryAfterSeconds: number };

export interface LoginLockout {
  /** Whether either the account or the address is locked right now. */
  check(email: string, ip: string): Promise<LockoutCheck>;
  /** Counts one failure against both; returns the lock state after counting. */
  recordFailure(email: string, ip: string): Promise<LockoutCheck>;
}

const FAILURES_KEY = 'login-failures';
const LOCK_KEY = 'login-locked-until';
const WINDOW_NAME = 'failures';
const IP_PATTERN = /^[0-9A-Fa-f:.]{1,64}$/;

export function accountScope(email: string): string {
  return `login:acct:${sha256Hex(email.trim().toLowerCase())}`;
}

export function addressScope(ip: string): string {
  // Addresses come from the socket or a trusted proxy; anything odd is hashed rather than trusted as a key.
  return IP_PATTERN.test(ip) ? `login:ip:${ip}` : `login:ip:h:${sha256Hex(ip)}`;
}

export function createLoginLockout(hot: HotState, config: LockoutConfig): LoginLockout {
  async function lockedFor(scope: string, now: number): Promise<number> {
    const until = Number(await hot.get(scope, LOCK_KEY));
    return Number.isFinite(until) && until > now ? until - now : 0;
  }

  async function checkScopes(scopes: string[]): Promise<LockoutCheck> {
    const now = await hot.now();
    const remaining = await Promise.all(scopes.map((scope) => lockedFor(scope, now)));
    const longest = Math.max(0, ...remaining);
    return longest > 0 ? { locked: true, retryAfterSeconds: Math.ceil(longest / 1000) } : { locked: false };
  }

  async function countFailure(scope: string): Promise<void> {
    const decision = await hot.hitWindows(scope, FAILURES_KEY, [{ name: WINDOW_NAME, limit: config.maxFailures, windowMs: config.windowMs }]);
    if (!decision.allowed || decision.remaining === 0) {
      await hot.set(scope, LOCK_KEY, String(decision.now + config.lockMs), config.lockMs);
    }
  }

  return {
    check(email, ip) {
      return checkScopes([accountScope(email), addressScope(ip)]);
    },
    async recordFailure(email, ip) {
      const scopes = [accountScope(email), addressScope(ip)];
      await Promise.all(scopes.map(countFailure));
      return checkScopes(scopes);
    },
  };
}
