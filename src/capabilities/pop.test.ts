import { createHmac } from 'node:crypto';
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { proofThumbprint, verifyProof, type ProofInput } from './pop.js';
import { FakeReplayStore, ath, makeProof, proofKey } from './testing/proofs.js';

const NOW = Date.UTC(2026, 0, 1, 12);
const URL_ = 'https://api.openai.com/v1/chat/completions';
const iatNow = Math.floor(NOW / 1000);

function input(proof: string | undefined, jkt: string, overrides: Partial<ProofInput> = {}): ProofInput {
  return { proof, method: 'POST', url: URL_, jkt, now: NOW, ...overrides };
}

describe('proof of possession', () => {
  it.each(['ES256', 'EdDSA'] as const)('accepts a fresh %s proof once and refuses its replay', async (alg) => {
    const key = await proofKey(alg);
    const store = new FakeReplayStore(() => NOW);
    const proof = await makeProof(key, { htm: 'POST', htu: URL_, iat: iatNow });
    expect(await proofThumbprint(proof)).toBe(key.jkt);
    expect(await verifyProof(input(proof, key.jkt), store)).toMatchObject({ ok: true });
    expect(await verifyProof(input(proof, key.jkt), store)).toEqual({ ok: false, reason: 'proof_replayed' });
  });

  it('ignores query and fragment when comparing htu', async () => {
    const key = await proofKey();
    const proof = await makeProof(key, { htm: 'POST', htu: URL_, iat: iatNow });
    const result = await verifyProof(input(proof, key.jkt, { url: `${URL_}?stream=true` }), new FakeReplayStore(() => NOW));
    expect(result.ok).toBe(true);
  });

  it('refuses a proof signed by another key than the bound one', async () => {
    const bound = await proofKey();
    const other = await proofKey();
    const proof = await makeProof(other, { htm: 'POST', htu: URL_, iat: iatNow });
    expect(await verifyProof(input(proof, bound.jkt), new FakeReplayStore())).toEqual({ ok: false, reason: 'proof_key_mismatch' });
  });

  it('refuses a header key that does not match the signature', async () => {
    const a = await proofKey();
    const b = await proofKey();
    const proof = await makeProof(a, { htm: 'POST', htu: URL_, iat: iatNow }, { jwk: b.publicJwk });
    expect(await verifyProof(input(proof, b.jkt), new FakeReplayStore())).toEqual({ ok: false, reason: 'proof_invalid' });
  });

  it('refuses method, URL and access-token mismatches', async () => {
    const key = await proofKey();
    const store = new FakeReplayStore(() => NOW);
    const wrongMethod = await makeProof(key, { htm: 'GET', htu: URL_, iat: iatNow });
    expect(await verifyProof(input(wrongMethod, key.jkt), store)).toEqual({ ok: false, reason: 'proof_method_mismatch' });
    const wrongUrl = await makeProof(key, { htm: 'POST', htu: 'https://api.openai.com/v1/models', iat: iatNow });
    expect(await verifyProof(input(wrongUrl, key.jkt), store)).toEqual({ ok: false, reason: 'proof_url_mismatch' });
    const wrongHost = await makeProof(key, { htm: 'POST', htu: 'https://evil.test/v1/chat/completions', iat: iatNow });
    expect(await verifyProof(input(wrongHost, key.jkt), store)).toEqual({ ok: false, reason: 'proof_url_mismatch' });
    const forToken = await makeProof(key, { htm: 'POST', htu: URL_, iat: iatNow, ath: ath('token-a') });
    expect(await verifyProof(input(forToken, key.jkt, { accessToken: 'token-b' }), store)).toEqual({ ok: false, reason: 'proof_token_mismatch' });
    const noAth = await makeProof(key, { htm: 'POST', htu: URL_, iat: iatNow });
    expect(await verifyProof(input(noAth, key.jkt, { accessToken: 'token-a' }), store)).toEqual({ ok: false, reason: 'proof_token_mismatch' });
    const good = await makeProof(key, { htm: 'POST', htu: URL_, iat: iatNow, ath: ath('token-a') });
    expect((await verifyProof(input(good, key.jkt, { accessToken: 'token-a' }), store)).ok).toBe(true);
  });

  it('accepts iat within ±60 s and refuses beyond', async () => {
    const key = await proofKey();
    const store = new FakeReplayStore(() => NOW);
    for (const [offset, ok] of [[-60, true], [60, true], [-61, false], [61, false]] as const) {
      const proof = await makeProof(key, { htm: 'POST', htu: URL_, iat: iatNow + offset });
      const result = await verifyProof(input(proof, key.jkt), store);
      expect(result.ok, `offset ${offset}`).toBe(ok);
      if (!ok) expect(result).toEqual({ ok: false, reason: 'proof_stale' });
    }
  });

  it('refuses algorithms outside the allow-list, wrong typ and private keys in the header', async () => {
    const store = new FakeReplayStore(() => NOW);
    const payload = new TextEncoder().encode(JSON.stringify({ jti: 'x', htm: 'POST', htu: URL_, iat: iatNow }));
    const hmacKey = new Uint8Array(32).fill(7);
    // Built by hand: a symmetric key in the header is exactly what the library's types forbid.
    const hsHeader = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: Buffer.from(hmacKey).toString('base64url') } })).toString('base64url');
    const hsInput = `${hsHeader}.${Buffer.from(payload).toString('base64url')}`;
    const hs = `${hsInput}.${createHmac('sha256', hmacKey).update(hsInput).digest('base64url')}`;
    const hsJkt = (await proofThumbprint(hs)) ?? '';
    expect(await verifyProof(input(hs, hsJkt), store)).toEqual({ ok: false, reason: 'proof_invalid' });

    const rsa = await generateKeyPair('RS256');
    const rsaJwk = await exportJWK(rsa.publicKey);
    const rs = await new CompactSign(payload).setProtectedHeader({ alg: 'RS256', typ: 'dpop+jwt', jwk: rsaJwk }).sign(rsa.privateKey);
    expect(await verifyProof(input(rs, (await proofThumbprint(rs)) ?? ''), store)).toEqual({ ok: false, reason: 'proof_invalid' });

    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: rsaJwk })).toString('base64url')}.${Buffer.from(payload).toString('base64url')}.`;
    expect(await verifyProof(input(none, 'x'.repeat(43)), store)).toEqual({ ok: false, reason: 'proof_invalid' });

    const key = await proofKey();
    const jwtTyp = await makeProof(key, { htm: 'POST', htu: URL_, iat: iatNow }, { typ: 'JWT' });
    expect(await verifyProof(input(jwtTyp, key.jkt), store)).toEqual({ ok: false, reason: 'proof_malformed' });

    const pair = await generateKeyPair('ES256', { extractable: true });
    const privateJwk = await exportJWK(pair.privateKey);
    const leaky = await new CompactSign(payload).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: privateJwk }).sign(pair.privateKey);
    expect(await verifyProof(input(leaky, (await proofThumbprint(leaky)) ?? ''), store)).toEqual({ ok: false, reason: 'proof_invalid' });
  });

  it('refuses missing, oversized and garbage proofs with typed reasons', async () => {
    const store = new FakeReplayStore();
    const jkt = 'A'.repeat(43);
    expect(await verifyProof(input(undefined, jkt), store)).toEqual({ ok: false, reason: 'proof_missing' });
    expect(await verifyProof(input('x'.repeat(9000), jkt), store)).toEqual({ ok: false, reason: 'proof_malformed' });
    for (const garbage of ['a.b.c', '...', 'not a jws', 'eyJ.eyJ.sig']) {
      expect((await verifyProof(input(garbage, jkt), store)).ok).toBe(false);
    }
  });

  it('fails closed when the replay store is unreachable', async () => {
    const key = await proofKey();
    const store = new FakeReplayStore(() => NOW);
    store.failing = true;
    const proof = await makeProof(key, { htm: 'POST', htu: URL_, iat: iatNow });
    expect(await verifyProof(input(proof, key.jkt), store)).toEqual({ ok: false, reason: 'replay_unavailable' });
  });
});
