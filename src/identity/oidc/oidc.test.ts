import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactSign, SignJWT, UnsecuredJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { ConfigError } from '../../config/errors.js';
import { OidcVerifier, parseOidcIssuers, type OidcIssuerConfig } from './index.js';

const ISSUER = 'https://idp.example.test';
const AUDIENCE = 'portcullis';

let server: Server;
let jwksHits = 0;
let jwksUp = true;
let publishedKeys: JWK[] = [];
let jwksUrl = '';
let signingKey: CryptoKey;
let rotatedKey: CryptoKey;
let publicPem = '';

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  const rotated = await generateKeyPair('RS256');
  signingKey = pair.privateKey;
  rotatedKey = rotated.privateKey;
  publicPem = await exportSPKI(pair.publicKey);
  publishedKeys = [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }];
  server = createServer((req, res) => {
    jwksHits++;
    if (!jwksUp) {
      res.statusCode = 500;
      res.end();
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: publishedKeys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function issuerConfig(overrides: Record<string, unknown> = {}): OidcIssuerConfig[] {
  return parseOidcIssuers([
    { name: 'corp', issuer: ISSUER, audience: AUDIENCE, jwksUrl, algorithms: ['RS256'], claims: { user: 'sub', org: 'org_id', roles: 'roles', userType: 'tier' }, maxRole: 'admin', clockToleranceSec: 30, ...overrides },
  ]);
}

const clock = new ManualClock(Date.UTC(2026, 0, 1));
const nowSec = (): number => Math.floor(clock.now() / 1000);

function token(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key: CryptoKey = signingKey): Promise<string> {
  const payload = { iss: ISSUER, aud: AUDIENCE, sub: 'alice', iat: nowSec(), exp: nowSec() + 300, org_id: 'org_a', roles: ['member'], ...claims };
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: 'k1', ...header }).sign(key);
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('OIDC issuer configuration', () => {
  it('refuses symmetric algorithms and none, naming the key', () => {
    for (const alg of ['HS256', 'none']) {
      expect(() => issuerConfig({ algorithms: ['RS256', alg] })).toThrow(ConfigError);
      expect(() => issuerConfig({ algorithms: [alg] })).toThrow(/oidc\.issuers\[0\]\.algorithms/);
    }
  });
  it('refuses plain-http JWKS URLs off loopback and unknown fields', () => {
    expect(() => issuerConfig({ jwksUrl: 'http://idp.example.test/jwks' })).toThrow(/https/);
    expect(() => issuerConfig({ extra: true })).toThrow(ConfigError);
  });
});

describe('OIDC verification', () => {
  const verifier = (): OidcVerifier => new OidcVerifier({ issuers: issuerConfig(), clock, jwksCooldownMs: 30_000 });

  it('maps a valid token to an identity with roles bounded by the issuer cap', async () => {
    const v = verifier();
    expect(await v.verify(await token())).toEqual({ ok: true, identity: { issuerName: 'corp', subject: 'alice', orgId: 'org_a', role: 'member', userType: 'registered' } });
    const capped = await v.verify(await token({ roles: ['owner', 'bogus'], tier: ['paid'] }));
    expect(capped).toMatchObject({ ok: true, identity: { role: 'admin', userType: 'paid' } });
    expect(await v.verify(await token({ roles: 'viewer admin' }))).toMatchObject({ ok: true, identity: { role: 'admin' } });
    expect(await v.verify(await token({ roles: ['superuser'] }))).toMatchObject({ ok: true, identity: { role: null } });
    expect(await v.verify(await token({ org_id: undefined }))).toMatchObject({ ok: true, identity: { orgId: null, role: null } });
    expect(await v.verify(await token({ org_id: 'bad org!' }))).toEqual({ ok: false, code: 'invalid_token' });
  });

  describe('attack cases: refused with a stable code, never a throw', () => {
    let v: OidcVerifier;
    beforeAll(() => {
      v = verifier();
    });
    const cases: Array<[string, () => Promise<string>, string]> = [
      ['alg none', async () => new UnsecuredJWT({ sub: 'alice', org_id: 'org_a' }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime(nowSec() + 300).encode(), 'invalid_token'],
      [
        'HS256 keyed with the issuer public key PEM',
        async () => {
          const input = `${b64({ alg: 'HS256', kid: 'k1' })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub: 'alice', exp: nowSec() + 300 })}`;
          return `${input}.${createHmac('sha256', publicPem).update(input).digest('base64url')}`;
        },
        'invalid_token',
      ],
      ['signed by another key under the same kid', () => token({}, {}, rotatedKey), 'invalid_token'],
      ['exp equal to now', () => token({ exp: nowSec() }), 'token_expired'],
      ['exp in the past', () => token({ exp: nowSec() - 3600 }), 'token_expired'],
      ['nbf beyond tolerance', () => token({ nbf: nowSec() + 120 }), 'invalid_token'],
      ['iat beyond tolerance', () => token({ iat: nowSec() + 120 }), 'invalid_token'],
      ['wrong audience', () => token({ aud: 'someone-else' }), 'invalid_token'],
      ['unknown issuer', () => token({ iss: 'https://evil.example.test' }), 'invalid_token'],
      ['no subject', () => token({ sub: undefined }), 'invalid_token'],
      ['algorithm outside the allow-list (ES256)', async () => token({}, { alg: 'ES256' }, (await generateKeyPair('ES256')).privateKey), 'invalid_token'],
      [
        'non-object payload',
        async () => new CompactSign(new TextEncoder().encode('[1,2,3]')).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(signingKey),
        'invalid_token',
      ],
      ['truncated signature', async () => (await token()).slice(0, -6), 'invalid_token'],
      ['over the size limit', () => token({ pad: 'x'.repeat(17 * 1024) }), 'invalid_token'],
      ['not a JWT', async () => 'hello', 'invalid_token'],
    ];
    for (const [name, make, code] of cases) {
      it(`refuses: ${name}`, async () => {
        expect(await v.verify(await make())).toEqual({ ok: false, code });
      });
    }

    it('refuses a flipped payload byte', async () => {
      const [h, p, s] = (await token()).split('.') as [string, string, string];
      const bytes = Buffer.from(p, 'base64url');
      bytes[5] = (bytes[5] ?? 0) ^ 0x02;
      expect(await v.verify(`${h}.${bytes.toString('base64url')}.${s}`)).toEqual({ ok: false, code: 'invalid_token' });
    });
  });

  it('refetches the JWKS at most once per cooldown for unknown kids', async () => {
    const v = new OidcVerifier({ issuers: issuerConfig(), clock, jwksCooldownMs: 300 });
    const before = jwksHits;
    expect((await v.verify(await token())).ok).toBe(true);
    expect(jwksHits - before).toBe(1);
    // Inside the cooldown: no unknown kid causes a fetch, however many arrive.
    for (let i = 0; i < 20; i++) expect(await v.verify(await token({}, { kid: `made-up-${i}` }))).toEqual({ ok: false, code: 'invalid_token' });
    expect(jwksHits - before).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 350));
    const burst = await Promise.all(Array.from({ length: 10 }, async (_, i) => v.verify(await token({}, { kid: `other-${i}` }))));
    expect(burst.every((r) => !r.ok)).toBe(true);
    expect(jwksHits - before).toBe(2);
  });

  it('picks up a rotated key on the first refetch after the cooldown', async () => {
    const fresh = await generateKeyPair('ES256');
    const v = new OidcVerifier({ issuers: issuerConfig({ algorithms: ['RS256', 'ES256'] }), clock, jwksCooldownMs: 100 });
    expect((await v.verify(await token())).ok).toBe(true);
    publishedKeys = [...publishedKeys, { ...(await exportJWK(fresh.publicKey)), kid: 'k2', alg: 'ES256' }];
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect((await v.verify(await token({}, { alg: 'ES256', kid: 'k2' }, fresh.privateKey))).ok).toBe(true);
  });

  it('reports an unreachable JWKS as a dependency failure, not as a bad token', async () => {
    jwksUp = false;
    try {
      const v = verifier();
      expect(await v.verify(await token())).toEqual({ ok: false, code: 'dependency_unavailable' });
    } finally {
      jwksUp = true;
    }
  });
});
