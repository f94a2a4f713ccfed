/** Test helpers: proof-of-possession keys and proofs, and a minimal replay store. */
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, CompactSign, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import type { ReplayStore } from '../pop.js';

export interface ProofKey {
  alg: 'ES256' | 'EdDSA';
  privateKey: CryptoKey;
  publicJwk: JWK;
  jkt: string;
}

export async function proofKey(alg: 'ES256' | 'EdDSA' = 'ES256'): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
  const publicJwk = await exportJWK(publicKey);
  return { alg, privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
}

export interface ProofClaims {
  jti?: string;
  htm?: string;
  htu?: string;
  iat?: number;
  ath?: string;
  [extra: string]: unknown;
}

let counter = 0;

export async function makeProof(
  key: ProofKey,
  claims: ProofClaims,
  header: Record<string, unknown> = {},
): Promise<string> {
  counter += 1;
  const payload = { jti: `proof-${counter}-${Math.random()}`, ...claims };
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.publicJwk, ...header })
    .sign(key.privateKey);
}

export function ath(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}

/** Only `setIfAbsent`, with TTLs on an injected clock; enough for replay tests. */
export class FakeReplayStore implements ReplayStore {
  private readonly entries = new Map<string, number>();
  failing = false;
  constructor(private readonly now: () => number = () => Date.now()) {}
  async setIfAbsent(scope: string, key: string, _value: string, ttlMs: number): Promise<boolean> {
    if (this.failing) throw new Error('store unreachable');
    const id = `${scope}\u0000${key}`;
    const expiresAt = this.entries.get(id);
    if (expiresAt !== undefined && expiresAt > this.now()) return false;
    this.entries.set(id, this.now() + ttlMs);
    return true;
  }
}
