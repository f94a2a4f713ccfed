import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sealCapability } from './codec.js';
import type { CapabilityClaims } from './claims.js';
import { redeemCapability, type RedeemDeps, type RedeemRequest } from './redeem.js';
import { CONTAINER, HOUR, OTHER_SESSION, SESSION, T0, claims, keyring } from './testing/fixtures.js';
import { FakeReplayStore, ath, makeProof, proofKey } from './testing/proofs.js';

const ring = keyring();
const NOW = T0 + 1000;
const OPENAI = 'https://api.openai.com/v1/chat/completions';

function deps(overrides: Partial<RedeemDeps> = {}): RedeemDeps {
  return { keyring: ring, isRevoked: async () => false, replay: new FakeReplayStore(() => NOW), ...overrides };
}

function request(overrides: Partial<RedeemRequest> = {}): RedeemRequest {
  return { method: 'POST', url: OPENAI, containerId: CONTAINER, now: NOW, ...overrides };
}

describe('redeemCapability: container binding', () => {
  const token = sealCapability(claims(), ring);

  it('admits a granted request from the bound container', async () => {
    const result = await redeemCapability(token, request(), deps());
    expect(result).toMatchObject({ ok: true, routeClass: 'provider_model', forwardPath: '/v1/chat/completions' });
    if (result.ok) expect(result.grant.credential.ref).toBe('provider:openai');
  });

  it.each<[string, Partial<RedeemRequest>, string, number]>([
    ['another container', { containerId: 'ctr-2' }, 'invalid', 401],
    ['no binding evidence', { containerId: undefined }, 'binding_missing', 403],
    ['expiry at exactly now', { now: T0 + HOUR }, 'expired', 401],
    ["another session's route on a shared origin", { url: `https://target.example.com/api/sessions/${OTHER_SESSION}/events` }, 'other_session', 403],
    ['a foreign host', { url: 'https://target.example.com.evil.test/v1/chat/completions' }, 'host_mismatch', 403],
    ['userinfo', { url: 'https://api.openai.com@evil.test/v1/chat/completions' }, 'userinfo', 403],
    ['a dot segment', { url: 'https://api.openai.com/v1/chat/completions/%2e%2e/%2e%2e/admin' }, 'path_dot_segment', 403],
    ['a method outside the grant', { method: 'DELETE' }, 'method_not_allowed', 403],
  ])('refuses %s', async (_name, overrides, reason, status) => {
    expect(await redeemCapability(token, request(overrides), deps())).toMatchObject({ ok: false, reason, status });
  });

  it('routes the bound session to its session grant', async () => {
    const result = await redeemCapability(token, request({ url: `https://target.example.com/api/sessions/${SESSION}/events` }), deps());
    expect(result).toMatchObject({ ok: true, routeClass: 'session_ingest' });
  });

  it('refuses revoked capabilities and fails closed when revocation cannot be read', async () => {
    const seen: CapabilityClaims[] = [];
    const revoked = await redeemCapability(token, request(), deps({ isRevoked: async (c) => (seen.push(c), true) }));
    expect(revoked).toMatchObject({ ok: false, reason: 'revoked', status: 401, code: 'capability_revoked' });
    expect(seen[0]?.capabilityId).toBe(claims().capabilityId);
    expect(await redeemCapability(token, request(), deps({ isRevoked: async () => 'unavailable' }))).toMatchObject({
      ok: false,
      reason: 'revocation_unavailable',
      status: 503,
    });
    const throwing = deps({
      isRevoked: async () => {
        throw new Error('redis down');
      },
    });
    expect(await redeemCapability(token, request(), throwing)).toMatchObject({ ok: false, reason: 'revocation_unavailable', status: 503 });
  });

  it('refuses oversized tokens before decoding', async () => {
    expect(await redeemCapability('a'.repeat(70_000), request(), deps())).toMatchObject({ ok: false, reason: 'too_large', status: 401 });
  });

  it('property: arbitrary tokens and URLs are refused with a typed reason, never a 500', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), fc.oneof(fc.string(), fc.webUrl()), fc.string({ maxLength: 8 }), async (garbage, url, method) => {
        const result = await redeemCapability(garbage, request({ url, method }), deps());
        expect(result.ok).toBe(false);
        if (!result.ok) expect([401, 403, 503]).toContain(result.status);
      }),
      { numRuns: 300 },
    );
  });
});

describe('redeemCapability: proof-of-possession binding', () => {
  it('admits a fresh proof by the bound key once, and refuses the replay', async () => {
    const key = await proofKey('EdDSA');
    const token = sealCapability(claims({ binding: { type: 'pop', jkt: key.jkt } }), ring);
    const proof = await makeProof(key, { htm: 'POST', htu: OPENAI, iat: Math.floor(NOW / 1000), ath: ath(token) });
    const shared = deps();
    expect(await redeemCapability(token, request({ containerId: undefined, proof }), shared)).toMatchObject({ ok: true });
    expect(await redeemCapability(token, request({ containerId: undefined, proof }), shared)).toMatchObject({
      ok: false,
      reason: 'proof_replayed',
      status: 403,
    });
  });

  it('refuses a proof by another key, a missing proof, and a container id in place of a proof', async () => {
    const key = await proofKey();
    const other = await proofKey();
    const token = sealCapability(claims({ binding: { type: 'pop', jkt: key.jkt } }), ring);
    const foreign = await makeProof(other, { htm: 'POST', htu: OPENAI, iat: Math.floor(NOW / 1000), ath: ath(token) });
    expect(await redeemCapability(token, request({ containerId: undefined, proof: foreign }), deps())).toMatchObject({ ok: false, reason: 'invalid' });
    expect(await redeemCapability(token, request({ containerId: undefined }), deps())).toMatchObject({ ok: false, reason: 'binding_missing' });
    expect(await redeemCapability(token, request(), deps())).toMatchObject({ ok: false, reason: 'invalid' });
  });

  it('does not burn a proof id on a request the route policy refuses', async () => {
    const key = await proofKey();
    const token = sealCapability(claims({ binding: { type: 'pop', jkt: key.jkt } }), ring);
    const proof = await makeProof(key, { htm: 'POST', htu: OPENAI, iat: Math.floor(NOW / 1000), ath: ath(token) });
    const shared = deps();
    const refused = await redeemCapability(token, request({ containerId: undefined, proof, url: `${OPENAI}/../x` }), shared);
    expect(refused).toMatchObject({ ok: false, reason: 'path_dot_segment' });
    expect(await redeemCapability(token, request({ containerId: undefined, proof }), shared)).toMatchObject({ ok: true });
  });

  it('checks the proof against the gateway URL when it differs from the upstream URL', async () => {
    const key = await proofKey();
    const token = sealCapability(claims({ binding: { type: 'pop', jkt: key.jkt } }), ring);
    const egressUrl = 'https://gateway.example/egress/openai/v1/chat/completions';
    const proof = await makeProof(key, { htm: 'POST', htu: egressUrl, iat: Math.floor(NOW / 1000), ath: ath(token) });
    expect(await redeemCapability(token, request({ containerId: undefined, proof }), deps())).toMatchObject({ ok: false, reason: 'proof_url_mismatch' });
    expect(await redeemCapability(token, request({ containerId: undefined, proof, proofUrl: egressUrl }), deps())).toMatchObject({ ok: true });
  });
});
