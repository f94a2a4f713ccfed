/**
 * A self-contained signer + verifier pair for the benchmark: fresh random secret, real clock, no
 * stores. `verify` runs exactly the hot-path key check (`ApiKeyVerifier.verify`).
 */
import { randomBytes } from 'node:crypto';
import { systemClock } from '../../core/clock.js';
import { DEFAULT_KEY_TTL_MS, ApiKeySigner } from './signer.js';
import { ApiKeyVerifier } from './verifier.js';
import type { ApiKeyVerifyResult } from './format.js';

export interface KeyVerifierBench {
  /** A freshly minted valid key. */
  token: string;
  signer: ApiKeySigner;
  verifier: ApiKeyVerifier;
  verify(token: string): Promise<ApiKeyVerifyResult>;
}

export async function createKeyVerifierBench(): Promise<KeyVerifierBench> {
  const secrets = new Map([['bench', new Uint8Array(randomBytes(32))]]);
  const signer = new ApiKeySigner({ secrets, signingKid: 'bench', clock: systemClock, defaultTtlMs: DEFAULT_KEY_TTL_MS, maxTtlMs: DEFAULT_KEY_TTL_MS });
  const verifier = new ApiKeyVerifier({ secrets, clock: systemClock });
  const { token } = await signer.sign({
    keyId: 'key_benchbenchbenchbenc',
    userId: 'usr_benchbenchbenchbenc',
    orgId: 'org_benchbenchbenchbenc',
    scopes: ['models:invoke'],
    pepper: randomBytes(16).toString('base64url'),
  });
  return { token, signer, verifier, verify: (t) => verifier.verify(t) };
}
