/**
 * A bounded memo keyed by the SHA-256 of a credential, for what a credential already proved (a
 * verified API key's claims, an opened capability's). Keyed by the digest, never the credential:
 * nothing secret is held as a key, a lookup's timing depends on a digest the caller cannot steer,
 * and reaching another entry would take a SHA-256 second preimage. Callers memoise only successes,
 * so garbage cannot fill it; beyond `maxEntries` the oldest entry goes first.
 */
import { hash } from 'node:crypto';

export class DigestMemo<T> {
  readonly #entries = new Map<string, T>();

  constructor(private readonly maxEntries: number) {}

  static digest(credential: string): string {
    return hash('sha256', credential, 'base64');
  }

  get(digest: string): T | undefined {
    return this.#entries.get(digest);
  }

  remember(digest: string, value: T): void {
    if (this.maxEntries <= 0) return;
    if (this.#entries.size >= this.maxEntries && !this.#entries.has(digest)) {
      // Maps iterate in insertion order: the first key is the oldest entry.
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(digest, value);
  }

  /** Drops an entry that can never be valid again (its credential expired). */
  forget(digest: string): void {
    this.#entries.delete(digest);
  }

  get size(): number {
    return this.#entries.size;
  }
}
