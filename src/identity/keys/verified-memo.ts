/**
 * A bounded memo of API keys whose signature, header and claims already passed full verification,
 * so a key used again costs one SHA-256 and a map lookup instead of a JWS check (jose's HMAC runs
 * through WebCrypto, which is async and far dearer than everything else a request does).
 *
 * Entries are keyed by the SHA-256 of the whole token, never the token itself: nothing secret is
 * held as a key, and a lookup's timing depends on a digest the caller cannot steer. Accepting a
 * different token from the memo would need a SHA-256 second preimage. Only what stays true for
 * the key's whole life is memoised (the verified claims); what can change — expiry against the
 * clock, the deny-list, the pepper and the member's role — is still checked on every request by
 * the verifier and the authenticator. Failures are never memoised, so garbage cannot fill it.
 */
import { hash } from 'node:crypto';
import type { ApiKeyClaims } from './format.js';

/** Plenty for the keys active on one replica; beyond it the oldest entries go first. */
export const DEFAULT_MEMO_ENTRIES = 10_000;

export class VerifiedKeyMemo {
  readonly #entries = new Map<string, ApiKeyClaims>();

  constructor(private readonly maxEntries = DEFAULT_MEMO_ENTRIES) {}

  static digest(token: string): string {
    return hash('sha256', token, 'base64');
  }

  get(digest: string): ApiKeyClaims | undefined {
    return this.#entries.get(digest);
  }

  remember(digest: string, claims: ApiKeyClaims): void {
    if (this.maxEntries <= 0) return;
    if (this.#entries.size >= this.maxEntries && !this.#entries.has(digest)) {
      // Maps iterate in insertion order: the first key is the oldest entry.
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(digest, claims);
  }

  /** Drops an entry whose key turned out expired; it can never verify again. */
  forget(digest: string): void {
    this.#entries.delete(digest);
  }

  get size(): number {
    return this.#entries.size;
  }
}
