/**
 * A bounded memo of API keys whose signature, header and claims already passed full verification,
 * so a key used again costs one SHA-256 and a map lookup instead of a JWS check (jose's HMAC runs
 * through WebCrypto, which is async and far dearer than everything else a request does).
 *
 * Keyed as every credential memo is (core/digest-memo.ts). Only what stays true for the key's whole
 * life is memoised (the verified claims); what can change — expiry against the clock, the
 * deny-list, the pepper and the member's role — is still checked on every request by the verifier
 * and the authenticator. Failures are never memoised.
 */
import { DigestMemo } from '../../core/digest-memo.js';
import type { ApiKeyClaims } from './format.js';

/** Plenty for the keys active on one replica; beyond it the oldest entries go first. */
export const DEFAULT_MEMO_ENTRIES = 10_000;

export class VerifiedKeyMemo extends DigestMemo<ApiKeyClaims> {
  constructor(maxEntries = DEFAULT_MEMO_ENTRIES) {
    super(maxEntries);
  }
}
