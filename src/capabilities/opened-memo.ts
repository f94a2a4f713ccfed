/**
 * A bounded memo of capabilities that already authenticated (AES-256-GCM with their binding as
 * associated data) and passed the strict claims schema, so a sandbox presenting the same token on
 * every request pays a SHA-256 and a map lookup instead of a decryption, a JSON parse and a schema
 * walk (together about ten times the rest of a redemption).
 *
 * Only what is fixed by the token's bytes and the keyring is memoised: the keyring's keys never
 * change after it is built, so a token that opened with a binding opens with it again. Everything
 * that depends on the clock (expiry, not-yet-valid, a retired key's window) is checked again on
 * every use by the codec, and revocation and proofs by the redemption. Entries are keyed as every
 * credential memo is (core/digest-memo.ts) and carry the binding they opened with, so a hit for
 * another container or key is no hit: the full open then refuses it. Failures are never memoised,
 * so forged tokens cannot fill it. The claims handed out are frozen, since every hit shares them.
 */
import { DigestMemo } from '../core/digest-memo.js';
import { sameBinding, type CapabilityBinding, type CapabilityClaims } from './claims.js';

/** Plenty for the capabilities live on one replica; beyond it the oldest entry goes first. */
export const DEFAULT_OPENED_ENTRIES = 10_000;

export class OpenedCapabilityMemo {
  readonly #entries: DigestMemo<CapabilityClaims>;

  constructor(maxEntries = DEFAULT_OPENED_ENTRIES) {
    this.#entries = new DigestMemo(maxEntries);
  }

  static digest(token: string): string {
    return DigestMemo.digest(token);
  }

  /** The memoised claims when the token of `digest` opened with exactly this binding. */
  get(digest: string, binding: CapabilityBinding): CapabilityClaims | undefined {
    const claims = this.#entries.get(digest);
    return claims !== undefined && sameBinding(claims.binding, binding) ? claims : undefined;
  }

  /** Remembers claims that authenticated and passed the schema; returns them frozen. */
  remember(digest: string, claims: CapabilityClaims): CapabilityClaims {
    const frozen = deepFreeze(claims);
    this.#entries.remember(digest, frozen);
    return frozen;
  }

  /** Drops a token that can never open again (expired). */
  forget(digest: string): void {
    this.#entries.forget(digest);
  }

  get size(): number {
    return this.#entries.size;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
