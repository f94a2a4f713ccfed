import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { ConfigError } from '../../config/errors.js';
import { API_KEY_PREFIX, ApiKeySigner, ApiKeyVerifier, DEFAULT_KEY_TTL_MS, createKeyVerifierBench } from './index.js';
import { VerifiedKeyMemo } from './verified-memo.js';

const SECRET = new Uint8Array(randomBytes(32));
const OLD_SECRET = new Uint8Array(randomBytes(32));
const DAY = 24 * 60 * 60 * 1000;

function setup(clock = new ManualClock()) {
  const secrets = new Map([
    ['k2', SECRET],
    ['k1', OLD_SECRET],
  ]);
  const signer = new ApiKeySigner({ secrets, signingKid: 'k2', clock, defaultTtlMs: DEFAULT_KEY_TTL_MS, maxTtlMs: 90 * DAY });
  const verifier = new ApiKeyVerifier({ secrets, clock, clockToleranceSec: 5 });
  return { clock, signer, verifier };
}

const INPUT = { keyId: 'key_aaaaaaaaaaaaaaaa', userId: 'usr_bbbbbbbbbbbbbbbb', orgId: 'org_cccccccccccccccc', scopes: ['models:invoke'], pepper: 'pepper-0123456789' };

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Builds a compact JWS by hand so the attack cases can say exactly what is inside. */
function forge(header: unknown, payload: unknown, secret: Uint8Array | string): string {
  const signingInput = `${b64(header)}.${b64(payload)}`;
  return `${API_KEY_PREFIX}${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}

function goodClaims(clock: ManualClock) {
  const iat = Math.floor(clock.now() / 1000);
  return { v: 1, jti: INPUT.keyId, sub: INPUT.userId, org: INPUT.orgId, scp: INPUT.scopes, iat, exp: iat + 3600, pep: INPUT.pepper };
}
const HEADER = { alg: 'HS256', typ: 'pc-key+jwt', kid: 'k2' };

describe('API key signing', () => {
  it('mints a prefixed key with exactly the documented claims and a 30-day default lifetime', async () => {
    const { clock, signer, verifier } = setup();
    const { token, expiresAt } = await signer.sign(INPUT);
    expect(token.startsWith('pck_')).toBe(true);
    expect(expiresAt.getTime()).toBe(clock.now() + 30 * DAY);
    const [header, payload] = token.slice(4).split('.');
    expect(JSON.parse(Buffer.from(header ?? '', 'base64url').toString())).toEqual(HEADER);
    expect(Object.keys(JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as object).sort()).toEqual(['exp', 'iat', 'jti', 'org', 'pep', 'scp', 'sub', 'v']);
    const result = await verifier.verify(token);
    expect(result).toEqual({ ok: true, claims: { ...goodClaims(clock), exp: Math.floor(clock.now() / 1000) + 30 * 86400 } });
  });

  it('refuses unknown fields, over-long lifetimes and malformed values at signing', async () => {
    const { signer } = setup();
    await expect(signer.sign({ ...INPUT, admin: true } as typeof INPUT)).rejects.toBeInstanceOf(AppError);
    await expect(signer.sign({ ...INPUT, ttlMs: 91 * DAY })).rejects.toMatchObject({ code: 'validation_failed' });
    await expect(signer.sign({ ...INPUT, scopes: ['bad scope'] })).rejects.toMatchObject({ code: 'validation_failed' });
    await expect(signer.sign({ ...INPUT, pepper: '' })).rejects.toMatchObject({ code: 'validation_failed' });
  });

  it('fails at construction on missing or weak secrets, naming the key and never the bytes', () => {
    const clock = new ManualClock();
    const base = { clock, defaultTtlMs: DAY, maxTtlMs: 2 * DAY };
    expect(() => new ApiKeySigner({ ...base, secrets: new Map(), signingKid: 'k' })).toThrow(ConfigError);
    expect(() => new ApiKeySigner({ ...base, secrets: new Map([['k', new Uint8Array(8)]]), signingKid: 'k' })).toThrow(/32 bytes/);
    expect(() => new ApiKeySigner({ ...base, secrets: new Map([['k', SECRET]]), signingKid: 'other' })).toThrow(/keys.signingKid/);
    expect(() => new ApiKeySigner({ ...base, secrets: new Map([['k', SECRET]]), signingKid: 'k', defaultTtlMs: 3 * DAY })).toThrow(ConfigError);
  });

  it('verifies keys signed with a retired secret still in the set (rotation)', async () => {
    const clock = new ManualClock();
    const oldSigner = new ApiKeySigner({ secrets: new Map([['k1', OLD_SECRET]]), signingKid: 'k1', clock, defaultTtlMs: DAY, maxTtlMs: DAY });
    const { verifier } = setup(clock);
    const { token } = await oldSigner.sign(INPUT);
    expect((await verifier.verify(token)).ok).toBe(true);
    const onlyNew = new ApiKeyVerifier({ secrets: new Map([['k2', SECRET]]), clock });
    expect(await onlyNew.verify(token)).toEqual({ ok: false, code: 'invalid_token' });
  });
});

describe('API key attack cases: refused with a stable code, never a throw', () => {
  const { clock, verifier } = setup();
  const rsaPublicPem = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

  const cases: Array<[string, () => Promise<string> | string, string]> = [
    ['alg none, empty signature', () => `${API_KEY_PREFIX}${b64({ ...HEADER, alg: 'none' })}.${b64(goodClaims(clock))}.`, 'invalid_token'],
    ['alg none, any signature', () => forge({ ...HEADER, alg: 'none' }, goodClaims(clock), SECRET), 'invalid_token'],
    ['HS256 signed with an RSA public key PEM', () => forge(HEADER, goodClaims(clock), rsaPublicPem), 'invalid_token'],
    ['RS256 header', () => forge({ ...HEADER, alg: 'RS256' }, goodClaims(clock), SECRET), 'invalid_token'],
    ['wrong secret', () => forge(HEADER, goodClaims(clock), new Uint8Array(randomBytes(32))), 'invalid_token'],
    ['exp equal to now', () => forge(HEADER, { ...goodClaims(clock), exp: Math.floor(clock.now() / 1000) }, SECRET), 'token_expired'],
    ['exp in the past', () => forge(HEADER, { ...goodClaims(clock), iat: 1, exp: 2 }, SECRET), 'token_expired'],
    ['nbf beyond tolerance', () => forge(HEADER, { ...goodClaims(clock), nbf: Math.floor(clock.now() / 1000) + 60 }, SECRET), 'invalid_token'],
    ['iat beyond tolerance', () => forge(HEADER, { ...goodClaims(clock), iat: Math.floor(clock.now() / 1000) + 60, exp: Math.floor(clock.now() / 1000) + 3600 }, SECRET), 'invalid_token'],
    ['wrong typ', () => forge({ ...HEADER, typ: 'JWT' }, goodClaims(clock), SECRET), 'invalid_token'],
    ['missing typ', () => forge({ alg: 'HS256', kid: 'k2' }, goodClaims(clock), SECRET), 'invalid_token'],
    ['extra header member (jku)', () => forge({ ...HEADER, jku: 'https://attacker.example/jwks' }, goodClaims(clock), SECRET), 'invalid_token'],
    ['crit header', () => forge({ ...HEADER, crit: ['x'], x: 1 }, goodClaims(clock), SECRET), 'invalid_token'],
    ['an aud claim (unknown)', () => forge(HEADER, { ...goodClaims(clock), aud: 'portcullis' }, SECRET), 'invalid_token'],
    ['an iss claim (unknown)', () => forge(HEADER, { ...goodClaims(clock), iss: 'someone' }, SECRET), 'invalid_token'],
    ['unknown claim', () => forge(HEADER, { ...goodClaims(clock), role: 'owner' }, SECRET), 'invalid_token'],
    ['wrong version', () => forge(HEADER, { ...goodClaims(clock), v: 2 }, SECRET), 'invalid_token'],
    ['missing pepper', () => forge(HEADER, { ...goodClaims(clock), pep: undefined }, SECRET), 'invalid_token'],
    ['scopes not an array', () => forge(HEADER, { ...goodClaims(clock), scp: 'admin' }, SECRET), 'invalid_token'],
    ['non-object payload (array)', () => forge(HEADER, [1, 2, 3], SECRET), 'invalid_token'],
    ['non-object payload (number)', () => forge(HEADER, '42', SECRET), 'invalid_token'],
    ['non-JSON payload', () => forge(HEADER, 'not json', SECRET), 'invalid_token'],
    ['non-JSON header', () => `${API_KEY_PREFIX}${b64('{oops')}.${b64(goodClaims(clock))}.${b64('sig')}`, 'invalid_token'],
    ['unknown kid', () => forge({ ...HEADER, kid: 'k9' }, goodClaims(clock), SECRET), 'invalid_token'],
    ['kid of the wrong secret', () => forge({ ...HEADER, kid: 'k1' }, goodClaims(clock), SECRET), 'invalid_token'],
    ['exp not after iat', () => forge(HEADER, { ...goodClaims(clock), iat: goodClaims(clock).iat + 3, exp: goodClaims(clock).iat + 3 }, SECRET), 'invalid_token'],
    ['missing prefix', () => forge(HEADER, goodClaims(clock), SECRET).slice(4), 'invalid_token'],
    ['over the size limit', () => forge(HEADER, { ...goodClaims(clock), pep: 'p'.repeat(5000) }, SECRET), 'invalid_token'],
    ['four segments', () => `${forge(HEADER, goodClaims(clock), SECRET)}.x`, 'invalid_token'],
    ['empty', () => '', 'invalid_token'],
  ];

  for (const [name, make, code] of cases) {
    it(`refuses: ${name}`, async () => {
      expect(await verifier.verify(await make())).toEqual({ ok: false, code });
    });
  }

  it('refuses a flipped payload byte and a truncated signature of a genuine key', async () => {
    const { signer } = setup(clock);
    const { token } = await signer.sign(INPUT);
    const [h, p, s] = token.slice(4).split('.') as [string, string, string];
    const payload = Buffer.from(p, 'base64url');
    payload[10] = (payload[10] ?? 0) ^ 0x01;
    expect(await verifier.verify(`${API_KEY_PREFIX}${h}.${payload.toString('base64url')}.${s}`)).toEqual({ ok: false, code: 'invalid_token' });
    expect(await verifier.verify(`${API_KEY_PREFIX}${h}.${p}.${s.slice(0, -4)}`)).toEqual({ ok: false, code: 'invalid_token' });
    expect(await verifier.verify(`${API_KEY_PREFIX}${h}.${p}.`)).toEqual({ ok: false, code: 'invalid_token' });
    expect((await verifier.verify(token)).ok).toBe(true);
  });

  it('expires at exactly exp, and not a second before', async () => {
    const local = setup();
    const { token } = await local.signer.sign({ ...INPUT, ttlMs: 10_000 });
    local.clock.advance(9_999);
    expect((await local.verifier.verify(token)).ok).toBe(true);
    local.clock.advance(1);
    expect(await local.verifier.verify(token)).toEqual({ ok: false, code: 'token_expired' });
  });

  it('refuses a key claiming a longer lifetime than the verifier allows', async () => {
    const bounded = new ApiKeyVerifier({ secrets: new Map([['k2', SECRET]]), clock, maxTtlMs: 60_000 });
    expect(await bounded.verify(forge(HEADER, goodClaims(clock), SECRET))).toEqual({ ok: false, code: 'invalid_token' });
  });

  it('reports a deny-listed key id as revoked', async () => {
    const denied = new ApiKeyVerifier({ secrets: new Map([['k2', SECRET]]), clock, isRevoked: (id) => id === INPUT.keyId });
    expect(await denied.verify(forge(HEADER, goodClaims(clock), SECRET))).toEqual({ ok: false, code: 'token_revoked' });
  });

  it('never throws and never accepts arbitrary input (property)', async () => {
    const anyInput = fc.oneof(
      fc.string(),
      fc.string().map((s) => `pck_${s}`),
      fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map(([a, b, c]) => `pck_${a}.${b}.${c}`.replace(/[+/=]/g, '')),
      fc.anything(),
    );
    await fc.assert(
      fc.asyncProperty(anyInput, async (input) => {
        const result = await verifier.verify(input);
        expect(result.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('offers a standalone bench pair that verifies its own key', async () => {
    const bench = await createKeyVerifierBench();
    expect((await bench.verify(bench.token)).ok).toBe(true);
  });
});

describe('verified-key memo', () => {
  const { clock, verifier } = setup();

  it('a remembered key is still refused once it expires, and stays refused', async () => {
    const local = setup();
    const { token } = await local.signer.sign({ ...INPUT, ttlMs: 5_000 });
    expect((await local.verifier.verify(token)).ok).toBe(true);
    expect((await local.verifier.verify(token)).ok).toBe(true);
    local.clock.advance(5_000);
    expect(await local.verifier.verify(token)).toEqual({ ok: false, code: 'token_expired' });
    expect(await local.verifier.verify(token)).toEqual({ ok: false, code: 'token_expired' });
  });

  it('a remembered key put on the deny-list afterwards is refused at once', async () => {
    const revoked = new Set<string>();
    const memoised = new ApiKeyVerifier({ secrets: new Map([['k2', SECRET]]), clock, isRevoked: (id) => revoked.has(id) });
    const token = forge(HEADER, goodClaims(clock), SECRET);
    expect((await memoised.verify(token)).ok).toBe(true);
    revoked.add(INPUT.keyId);
    expect(await memoised.verify(token)).toEqual({ ok: false, code: 'token_revoked' });
    revoked.delete(INPUT.keyId);
    expect((await memoised.verify(token)).ok).toBe(true);
  });

  it('remembering a key never lets a look-alike through: one changed character is checked in full', async () => {
    const token = forge(HEADER, goodClaims(clock), SECRET);
    expect((await verifier.verify(token)).ok).toBe(true);
    for (let i = API_KEY_PREFIX.length; i < token.length; i += 7) {
      const flipped = `${token.slice(0, i)}${token[i] === 'A' ? 'B' : 'A'}${token.slice(i + 1)}`;
      const result = await verifier.verify(flipped);
      expect(result.ok, `position ${i}`).toBe(false);
    }
    // The same payload under a secret the verifier does not know is refused although its claims are remembered.
    expect(await verifier.verify(forge(HEADER, goodClaims(clock), new Uint8Array(randomBytes(32))))).toEqual({ ok: false, code: 'invalid_token' });
  });

  it('holds at most its bound, dropping the oldest first, and never remembers a failure', () => {
    const memo = new VerifiedKeyMemo(2);
    const claims = { ...goodClaims(clock), v: 1 as const };
    memo.remember('a', claims);
    memo.remember('b', claims);
    memo.remember('c', claims);
    expect(memo.size).toBe(2);
    expect(memo.get('a')).toBeUndefined();
    expect(memo.get('c')).toBe(claims);
    expect(VerifiedKeyMemo.digest('pck_x')).not.toContain('pck_x');
  });

  it('with the memo off, every use is verified in full and gives the same answers', async () => {
    const local = setup();
    const plain = new ApiKeyVerifier({ secrets: new Map([['k2', SECRET]]), clock: local.clock, memoEntries: 0 });
    const { token } = await local.signer.sign({ ...INPUT, ttlMs: 5_000 });
    expect(await plain.verify(token)).toEqual(await local.verifier.verify(token));
    local.clock.advance(5_000);
    expect(await plain.verify(token)).toEqual({ ok: false, code: 'token_expired' });
  });
});
