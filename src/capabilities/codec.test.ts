import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { associatedData, decodeCanonicalBase64Url, openCapability, sealCapability, MAX_TOKEN_CHARS } from './codec.js';
import type { CapabilityBinding } from './claims.js';
import { CapabilityKeyring, CapabilityKeyringError } from './keyring.js';
import { OpenedCapabilityMemo } from './opened-memo.js';
import { CONTAINER, HOUR, T0, claims, keyring, modelGrant, secret } from './testing/fixtures.js';

const containerBinding: CapabilityBinding = { type: 'container', containerId: CONTAINER };
const ring = keyring();
const open = (token: unknown, now = T0 + 1000, binding: CapabilityBinding = containerBinding, k = ring) => openCapability(token, { keyring: k, binding, now });

/** Seals any payload with a shared key the way another token type in the system might. */
function sealForeign(payload: unknown, prefix: string, kid = 'k1', key = secret(1), binding: CapabilityBinding = containerBinding): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(key), nonce);
  cipher.setAAD(associatedData(prefix, kid, binding));
  const body = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
  return `${prefix}.${kid}.${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url')}`;
}

describe('capability codec', () => {
  it('round-trips valid claims', () => {
    const token = sealCapability(claims(), ring);
    expect(token).toMatch(/^pcap1\.k1\.[A-Za-z0-9_-]+$/);
    expect(open(token)).toEqual({ ok: true, claims: claims() });
  });

  it('refuses one flipped bit anywhere in the token', () => {
    const token = sealCapability(claims(), ring);
    for (let i = 0; i < token.length; i++) {
      for (const bit of [1, 2, 4, 8, 16, 32, 64]) {
        const mutated = token.slice(0, i) + String.fromCharCode(token.charCodeAt(i) ^ bit) + token.slice(i + 1);
        const result = open(mutated);
        expect(result.ok, `char ${i} bit ${bit}`).toBe(false);
      }
    }
  });

  it('refuses a token presented by another container', () => {
    const token = sealCapability(claims(), ring);
    expect(open(token, T0, { type: 'container', containerId: 'ctr-2' })).toEqual({ ok: false, reason: 'invalid' });
    expect(open(token, T0, { type: 'pop', jkt: 'A'.repeat(43) })).toEqual({ ok: false, reason: 'invalid' });
  });

  it('treats expiry at exactly now as expired', () => {
    const token = sealCapability(claims(), ring);
    expect(open(token, T0 + HOUR - 1).ok).toBe(true);
    expect(open(token, T0 + HOUR)).toEqual({ ok: false, reason: 'expired' });
  });

  it('accepts issuedAt 59 s ahead and refuses 61 s ahead', () => {
    const ahead59 = sealCapability(claims({ issuedAt: T0 + 59_000, expiresAt: T0 + HOUR }), ring);
    const ahead61 = sealCapability(claims({ issuedAt: T0 + 61_000, expiresAt: T0 + HOUR }), ring);
    expect(open(ahead59, T0).ok).toBe(true);
    expect(open(ahead61, T0)).toEqual({ ok: false, reason: 'not_yet_valid' });
  });

  it('refuses a lifetime of 4 h + 1 ms and honours a lower configured maximum', () => {
    const ringA = keyring();
    const exact = sealCapability(claims({ expiresAt: T0 + 4 * HOUR }), ringA);
    expect(open(exact, T0, containerBinding, ringA).ok).toBe(true);
    expect(() => sealCapability(claims({ expiresAt: T0 + 4 * HOUR + 1 }), ringA)).toThrow();
    // A forged over-long token sealed with the key itself is still refused at open.
    const forged = sealForeign(claims({ expiresAt: T0 + 4 * HOUR + 1 }), 'pcap1');
    expect(open(forged, T0)).toEqual({ ok: false, reason: 'lifetime_exceeded' });
    const short = keyring(undefined, HOUR / 2);
    expect(open(exact, T0, containerBinding, short)).toEqual({ ok: false, reason: 'lifetime_exceeded' });
  });

  it('never opens another token type sealed under the same key', () => {
    const ticket = { ...claims(), purpose: 'ticket' };
    expect(open(sealForeign(ticket, 'pcap1'))).toEqual({ ok: false, reason: 'wrong_purpose' });
    const { purpose: _purpose, ...noPurpose } = claims();
    expect(open(sealForeign(noPurpose, 'pcap1'))).toEqual({ ok: false, reason: 'wrong_purpose' });
    // Different prefix: not even parsed as a capability.
    const otherPrefix = sealForeign(claims(), 'ptkt1');
    expect(open(otherPrefix)).toEqual({ ok: false, reason: 'malformed' });
    // The same bytes relabelled with our prefix fail authentication: the prefix is associated data.
    expect(open(otherPrefix.replace(/^ptkt1\./, 'pcap1.'))).toEqual({ ok: false, reason: 'invalid' });
    expect(open(sealForeign([1, 2, 3], 'pcap1'))).toEqual({ ok: false, reason: 'invalid' });
  });

  it('refuses claims with unknown fields even when correctly sealed', () => {
    expect(open(sealForeign({ ...claims(), admin: true }, 'pcap1'))).toEqual({ ok: false, reason: 'invalid' });
    const grants = [{ ...claims().grants[0], extra: 1 }];
    expect(open(sealForeign({ ...claims(), grants }, 'pcap1'))).toEqual({ ok: false, reason: 'invalid' });
  });

  it('refuses a session_ingest grant that does not name the bound session', () => {
    const bad = claims();
    bad.grants = [{ ...bad.grants[1]!, pathPrefixes: ['/api/sessions/ses_BBBBBBBBBBBBBBBB/events'] }];
    expect(open(sealForeign(bad, 'pcap1'))).toEqual({ ok: false, reason: 'invalid' });
  });

  it('refuses a token over 64 KiB before decoding', () => {
    expect(open('x'.repeat(70_000))).toEqual({ ok: false, reason: 'too_large' });
    expect(open(`pcap1.k1.${'A'.repeat(MAX_TOKEN_CHARS)}`)).toEqual({ ok: false, reason: 'too_large' });
  });

  it('refuses non-canonical base64url', () => {
    const token = sealCapability(claims(), ring);
    const body = token.slice('pcap1.k1.'.length);
    const std = Buffer.from(body, 'base64url').toString('base64');
    expect(open(`pcap1.k1.${std}`).ok).toBe(false); // '+', '/', '=' spellings
    expect(open(`${token}=`)).toEqual({ ok: false, reason: 'malformed' });
    expect(open(`${token}A`)).toEqual({ ok: false, reason: 'malformed' });
    expect(open(`${token} `)).toEqual({ ok: false, reason: 'malformed' });
    // Trailing bits: 'AB' and 'AA' would decode to the same byte; only 'AA' is canonical.
    expect(decodeCanonicalBase64Url('AA')).toEqual(Buffer.from([0]));
    expect(decodeCanonicalBase64Url('AB')).toBeNull();
    expect(decodeCanonicalBase64Url('AA==')).toBeNull();
    expect(decodeCanonicalBase64Url('A')).toBeNull();
    // Flip the trailing bits of the real token's last character when it has any.
    const lastChar = body.at(-1) ?? 'A';
    if (body.length % 4 !== 0) {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const index = alphabet.indexOf(lastChar);
      const sibling = alphabet[index ^ 1] ?? 'A';
      expect(open(`${token.slice(0, -1)}${sibling}`).ok).toBe(false);
    }
  });

  it('refuses anything that is not a token without throwing', () => {
    for (const input of [undefined, null, 42, {}, '', 'pcap1', 'pcap1..', 'pcap1.k1.', 'pcap2.k1.AAAA', 'pcap1.k1.AAAA', 'Bearer pcap1.k1.AAAA']) {
      const result = open(input);
      expect(result.ok).toBe(false);
    }
  });

  it('refuses an unknown key id without trying other keys', () => {
    const other = new CapabilityKeyring([{ id: 'k9', secret: secret(1), createdAt: T0 }]);
    // Same secret under another id: an opener that tried every key would accept this.
    const token = sealCapability(claims(), other);
    expect(open(token)).toEqual({ ok: false, reason: 'unknown_key' });
  });

  it('seals with the newest key and opens retired keys only within their grace', () => {
    const retiredAt = T0 + 1000;
    const oldRing = new CapabilityKeyring([{ id: 'old', secret: secret(2), createdAt: T0 - HOUR }]);
    const token = sealCapability(claims(), oldRing);
    const rotated = new CapabilityKeyring(
      [
        { id: 'old', secret: secret(2), createdAt: T0 - HOUR, retiredAt },
        { id: 'new', secret: secret(3), createdAt: T0 },
      ],
      { maxLifetimeMs: 4 * HOUR, skewMs: 60_000 },
    );
    expect(rotated.sealingKey().id).toBe('new');
    expect(sealCapability(claims(), rotated).startsWith('pcap1.new.')).toBe(true);
    expect(open(token, T0 + 2000, containerBinding, rotated).ok).toBe(true);
    const graceEnd = retiredAt + 4 * HOUR + 60_000;
    expect(rotated.lookup('old', graceEnd - 1).ok).toBe(true);
    expect(open(token, graceEnd, containerBinding, rotated)).toEqual({ ok: false, reason: 'retired_key' });
    // A token the retired key "sealed" after retirement is refused even within the grace.
    const late = sealForeign(claims({ issuedAt: retiredAt + 61_000, expiresAt: retiredAt + HOUR }), 'pcap1', 'old', secret(2));
    expect(open(late, retiredAt + 62_000, containerBinding, rotated)).toEqual({ ok: false, reason: 'retired_key' });
  });

  it('refuses bad keyring configuration without echoing secrets', () => {
    expect(() => new CapabilityKeyring([{ id: 'k', secret: new Uint8Array(16), createdAt: 0 }])).toThrow(CapabilityKeyringError);
    expect(() => new CapabilityKeyring([{ id: 'bad id', secret: secret(1), createdAt: 0 }])).toThrow(CapabilityKeyringError);
    expect(() => new CapabilityKeyring([{ id: 'k', secret: secret(1), createdAt: 0, retiredAt: 1 }])).toThrow(CapabilityKeyringError);
    expect(() => new CapabilityKeyring([{ id: 'k', secret: secret(1), createdAt: 0 }], { maxLifetimeMs: 4 * HOUR + 1 })).toThrow(CapabilityKeyringError);
  });

  it('property: random mutations of a valid token never open', () => {
    const token = sealCapability(claims(), ring);
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('replace' as const), at: fc.nat(token.length - 1), char: fc.string({ minLength: 1, maxLength: 1 }) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(token.length), text: fc.string({ minLength: 1, maxLength: 4 }) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat(token.length - 1), count: fc.integer({ min: 1, max: 8 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(token.length - 1) }),
    );
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        let mutated = token;
        for (const m of mutations) {
          if (m.kind === 'replace') mutated = mutated.slice(0, m.at) + m.char + mutated.slice(m.at + 1);
          else if (m.kind === 'insert') mutated = mutated.slice(0, m.at) + m.text + mutated.slice(m.at);
          else if (m.kind === 'delete') mutated = mutated.slice(0, m.at) + mutated.slice(m.at + m.count);
          else mutated = mutated.slice(0, m.at);
        }
        fc.pre(mutated !== token);
        const result = open(mutated);
        expect(result.ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  describe('opening a token again (the keyring memo)', () => {
    it('hands out the same frozen claims without opening the token again, and memoises only successes', () => {
      const fresh = keyring();
      const token = sealCapability(claims(), fresh);
      const first = open(token, T0 + 1000, containerBinding, fresh);
      const second = open(token, T0 + 2000, containerBinding, fresh);
      if (!first.ok || !second.ok) throw new Error('the token should open');
      expect(second.claims).toBe(first.claims);
      expect(Object.isFrozen(first.claims.grants[0]?.pathPrefixes)).toBe(true);
      expect(() => {
        first.claims.grants.push(modelGrant);
      }).toThrow(TypeError);
      expect(fresh.opened.size).toBe(1);
      // Forgeries, other bindings and broken tokens are refused and leave nothing behind.
      open(`${token.slice(0, -2)}AA`, T0, containerBinding, fresh);
      open(token, T0, { type: 'container', containerId: 'ctr-2' }, fresh);
      open(sealForeign({ purpose: 'other' }, 'pcap1', 'k1', secret(1)), T0, containerBinding, fresh);
      // Authentic but refused by its own claims: not kept either.
      expect(open(sealForeign(claims({ expiresAt: T0 + 5 * HOUR }), 'pcap1', 'k1', secret(1)), T0, containerBinding, fresh)).toEqual({ ok: false, reason: 'lifetime_exceeded' });
      expect(fresh.opened.size).toBe(1);
    });

    it('still refuses a memoised token for another binding, once expired, and before its issue time', () => {
      const fresh = keyring();
      const token = sealCapability(claims(), fresh);
      expect(open(token, T0 + 1000, containerBinding, fresh).ok).toBe(true);
      expect(open(token, T0 + 1000, { type: 'container', containerId: 'ctr-2' }, fresh)).toEqual({ ok: false, reason: 'invalid' });
      expect(open(token, T0 + 1000, { type: 'pop', jkt: 'A'.repeat(43) }, fresh)).toEqual({ ok: false, reason: 'invalid' });
      expect(open(token, T0 - 61_000, containerBinding, fresh)).toEqual({ ok: false, reason: 'not_yet_valid' });
      expect(open(token, T0 + HOUR, containerBinding, fresh)).toEqual({ ok: false, reason: 'expired' });
      // An expired token can never open again, so it is not kept.
      expect(fresh.opened.size).toBe(0);
      expect(open(token, T0 + HOUR + 1, containerBinding, fresh)).toEqual({ ok: false, reason: 'expired' });
    });

    it('refuses a memoised token once its key is past the retirement grace', () => {
      const retiredAt = T0 + 1000;
      const rotated = new CapabilityKeyring(
        [
          { id: 'old', secret: secret(2), createdAt: T0 - HOUR, retiredAt },
          { id: 'new', secret: secret(3), createdAt: T0 },
        ],
        { maxLifetimeMs: 4 * HOUR, skewMs: 60_000 },
      );
      const token = sealCapability(claims(), new CapabilityKeyring([{ id: 'old', secret: secret(2), createdAt: T0 - HOUR }]));
      expect(open(token, T0 + 2000, containerBinding, rotated).ok).toBe(true);
      expect(rotated.opened.size).toBe(1);
      expect(open(token, retiredAt + 4 * HOUR + 60_000, containerBinding, rotated)).toEqual({ ok: false, reason: 'retired_key' });
    });
  });
});

describe('OpenedCapabilityMemo', () => {
  it('is bounded, dropping the oldest entry first', () => {
    const memo = new OpenedCapabilityMemo(2);
    const opened = (id: string) => claims({ capabilityId: `cap_${id.repeat(16)}` });
    memo.remember('a', opened('A'));
    memo.remember('b', opened('B'));
    memo.remember('c', opened('C'));
    expect(memo.size).toBe(2);
    expect(memo.get('a', containerBinding)).toBeUndefined();
    expect(memo.get('c', containerBinding)?.capabilityId).toBe(`cap_${'C'.repeat(16)}`);
    expect(memo.get('c', { type: 'container', containerId: 'ctr-2' })).toBeUndefined();
  });
});

