/**
 * The capability keyring: which AES-256-GCM key seals new capabilities and which keys may still
 * open old ones. Rotation is "add a newer key, then retire the old one": a retired key keeps
 * opening tokens only while one it sealed could still be alive (retiredAt + longest lifetime +
 * skew), then it is refused. An unknown key id is refused outright; no other key is ever tried.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import { MAX_CAPABILITY_LIFETIME_MS } from './claims.js';
import { DEFAULT_OPENED_ENTRIES, OpenedCapabilityMemo } from './opened-memo.js';

export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
export const DEFAULT_SKEW_MS = 60_000;

export interface CapabilityKeyInput {
  /** Public key id, written in the clear into every token it seals. */
  id: string;
  /** Exactly 32 random bytes. */
  secret: Uint8Array;
  /** When the key was introduced (ms); the newest unretired key seals. */
  createdAt: number;
  /** When the key stopped sealing (ms); absent while it is active. */
  retiredAt?: number | null;
}

export interface KeyringOptions {
  /** Longest capability lifetime this deployment issues; at most 4 h. */
  maxLifetimeMs?: number;
  /** Clock skew tolerated between replicas. */
  skewMs?: number;
  /** Tokens remembered as opened (opened-memo.ts); 0 opens every token in full every time. */
  openedMemoEntries?: number;
}

/** A startup misuse: names the key id and the fix, never the secret. */
export class CapabilityKeyringError extends Error {
  override readonly name = 'CapabilityKeyringError';
}

export interface CapabilityKey {
  readonly id: string;
  readonly key: KeyObject;
  readonly createdAt: number;
  readonly retiredAt: number | null;
}

export type KeyLookup =
  | { ok: true; key: CapabilityKey }
  | { ok: false; reason: 'unknown_key' | 'retired_key' };

export class CapabilityKeyring {
  readonly maxLifetimeMs: number;
  readonly skewMs: number;
  /** Tokens these keys already opened; valid for the keyring's life, since its keys never change. */
  readonly opened: OpenedCapabilityMemo;
  private readonly byId: Map<string, CapabilityKey>;
  private readonly sealing: CapabilityKey;

  constructor(keys: readonly CapabilityKeyInput[], options: KeyringOptions = {}) {
    this.maxLifetimeMs = options.maxLifetimeMs ?? MAX_CAPABILITY_LIFETIME_MS;
    this.skewMs = options.skewMs ?? DEFAULT_SKEW_MS;
    this.opened = new OpenedCapabilityMemo(options.openedMemoEntries ?? DEFAULT_OPENED_ENTRIES);
    if (!Number.isInteger(this.maxLifetimeMs) || this.maxLifetimeMs <= 0 || this.maxLifetimeMs > MAX_CAPABILITY_LIFETIME_MS) {
      throw new CapabilityKeyringError(`capability maxLifetimeMs must be an integer in 1..${MAX_CAPABILITY_LIFETIME_MS}`);
    }
    if (!Number.isInteger(this.skewMs) || this.skewMs < 0 || this.skewMs > 5 * 60_000) {
      throw new CapabilityKeyringError('capability skewMs must be an integer in 0..300000');
    }
    this.byId = new Map();
    for (const input of keys) {
      if (!KEY_ID_PATTERN.test(input.id)) {
        throw new CapabilityKeyringError('capability key id must be 1-32 characters of [A-Za-z0-9_-]');
      }
      if (this.byId.has(input.id)) throw new CapabilityKeyringError(`capability key id "${input.id}" is listed twice`);
      if (input.secret.length !== 32) {
        throw new CapabilityKeyringError(`capability key "${input.id}" must be exactly 32 bytes (generate with: openssl rand -base64 32)`);
      }
      const retiredAt = input.retiredAt ?? null;
      if (!Number.isFinite(input.createdAt) || (retiredAt !== null && !Number.isFinite(retiredAt))) {
        throw new CapabilityKeyringError(`capability key "${input.id}" needs numeric createdAt/retiredAt`);
      }
      this.byId.set(input.id, { id: input.id, key: createSecretKey(Buffer.from(input.secret)), createdAt: input.createdAt, retiredAt });
    }
    let newest: CapabilityKey | undefined;
    for (const key of this.byId.values()) {
      if (key.retiredAt !== null) continue;
      if (newest === undefined || key.createdAt > newest.createdAt) newest = key;
    }
    if (newest === undefined) throw new CapabilityKeyringError('the capability keyring needs at least one key that is not retired');
    this.sealing = newest;
  }

  /** The key new capabilities are sealed with. */
  sealingKey(): CapabilityKey {
    return this.sealing;
  }

  /** The key for `kid` if it may still open tokens at `now`. */
  lookup(kid: string, now: number): KeyLookup {
    const key = this.byId.get(kid);
    if (key === undefined) return { ok: false, reason: 'unknown_key' };
    if (key.retiredAt !== null && now >= this.openUntil(key.retiredAt)) return { ok: false, reason: 'retired_key' };
    return { ok: true, key };
  }

  /** The moment a key retired at `retiredAt` stops opening tokens. */
  openUntil(retiredAt: number): number {
    return retiredAt + this.maxLifetimeMs + this.skewMs;
  }
}
