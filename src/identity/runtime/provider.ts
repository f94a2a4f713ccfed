/**
 * Credentials for long-running agent runtimes, on the deploying side. Each (re)deploy asks for a
 * fresh key. When minting fails — an error or no answer within the timeout — the runtime may keep
 * the key it already has, but ONLY if that key's expiry is known and still ahead. An unknown,
 * unparseable or past expiry fails closed: a runtime started with a key that may already be dead
 * would fail later, at a worse moment, with a less clear error.
 */
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';

export const DEFAULT_MINT_TIMEOUT_MS = 5_000;

export interface MintedCredential {
  token: string;
  keyId: string;
  expiresAt: Date;
}

/** Asks the gateway for a fresh key for one runtime instance; must honour the abort signal. */
export type RuntimeCredentialMinter = (instanceId: string, signal: AbortSignal) => Promise<MintedCredential>;

/** The key the runtime already holds; the expiry as stored (runtime_instances keeps it, maybe absent). */
export interface StoredCredential {
  token: string;
  expiresAt: Date | string | number | null | undefined;
}

export type ObtainedCredential =
  | { source: 'minted'; token: string; keyId: string; expiresAt: Date }
  | { source: 'stored'; token: string; expiresAt: Date; mintFailure: 'error' | 'timeout' };

export interface RuntimeCredentialProviderOptions {
  mint: RuntimeCredentialMinter;
  clock: Clock;
  timeoutMs?: number;
  /** The stored key must still be valid this long after now to be used (default 0). */
  minRemainingMs?: number;
}

/** A Date from whatever the store gave back, or null when there is no trustworthy instant. */
export function parseExpiry(value: StoredCredential['expiresAt']): Date | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return Number.isFinite(value.getTime()) ? value : null;
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? new Date(value) : null;
  // Strict ISO 8601 with a zone only: Date.parse accepts too many loose forms to trust blindly.
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms) : null;
}

class MintTimeout extends Error {}

async function mintWithTimeout(mint: RuntimeCredentialMinter, instanceId: string, timeoutMs: number): Promise<MintedCredential> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // Reject first: an aborted minter rejects too, and the race must report the timeout.
      reject(new MintTimeout());
      controller.abort();
    }, timeoutMs);
  });
  try {
    // Race as well as abort: a minter that ignores the signal still cannot hold the deploy up.
    return await Promise.race([mint(instanceId, controller.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export class RuntimeCredentialProvider {
  private readonly timeoutMs: number;
  private readonly minRemainingMs: number;

  constructor(private readonly options: RuntimeCredentialProviderOptions) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_MINT_TIMEOUT_MS;
    this.minRemainingMs = options.minRemainingMs ?? 0;
    if (!Number.isInteger(this.timeoutMs) || this.timeoutMs <= 0) throw new RangeError('timeoutMs must be a positive integer');
    if (!Number.isInteger(this.minRemainingMs) || this.minRemainingMs < 0) throw new RangeError('minRemainingMs must be a non-negative integer');
  }

  /** A fresh key, or the stored one under the rules above; throws AppError('credential_unavailable'). */
  async obtain(instanceId: string, stored: StoredCredential | null): Promise<ObtainedCredential> {
    let mintFailure: 'error' | 'timeout';
    let cause: unknown;
    try {
      const minted = await mintWithTimeout(this.options.mint, instanceId, this.timeoutMs);
      return { source: 'minted', token: minted.token, keyId: minted.keyId, expiresAt: minted.expiresAt };
    } catch (err) {
      mintFailure = err instanceof MintTimeout ? 'timeout' : 'error';
      // Keep only the code of an AppError: a minter's raw error could quote a response body.
      cause = err instanceof AppError ? err.code : mintFailure;
    }
    const failedHow = mintFailure === 'timeout' ? `did not answer within ${this.timeoutMs} ms` : 'failed';
    if (stored === null || stored.token.length === 0) {
      throw new AppError('credential_unavailable', { message: `Minting a runtime key ${failedHow} and no stored key exists.`, cause });
    }
    const expiresAt = parseExpiry(stored.expiresAt);
    if (expiresAt === null) {
      throw new AppError('credential_unavailable', {
        message: `Minting a runtime key ${failedHow}, and the stored key's expiry is missing or unreadable, so it is not used.`,
        cause,
      });
    }
    if (expiresAt.getTime() - this.minRemainingMs <= this.options.clock.now()) {
      throw new AppError('credential_unavailable', { message: `Minting a runtime key ${failedHow}, and the stored key has expired.`, cause });
    }
    return { source: 'stored', token: stored.token, expiresAt, mintFailure };
  }
}
