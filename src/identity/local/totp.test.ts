import { describe, it, expect } from 'vitest';
import { Secret, TOTP } from 'otpauth';
import { generateTotpSecret, matchTotpStep, totpCodeForStep, totpStepAt, totpUri } from './totp.js';
import { consumeRecoveryCode, generateRecoveryCodes, normalizeRecoveryCode } from './recovery-codes.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 10);

describe('totp', () => {
  const secret = generateTotpSecret();

  it('matches RFC 6238 test vector (SHA-1, 59 s → step 1)', () => {
    const rfcSecret = Buffer.from('12345678901234567890', 'ascii');
    expect(totpCodeForStep(rfcSecret, totpStepAt(59_000))).toBe('287082');
  });

  it('accepts the previous, current and next step and reports which', () => {
    const step = totpStepAt(NOW);
    for (const delta of [-1, 0, 1]) {
      expect(matchTotpStep(secret, totpCodeForStep(secret, step + delta), NOW, null)).toBe(step + delta);
    }
    expect(matchTotpStep(secret, totpCodeForStep(secret, step + 2), NOW, null)).toBeNull();
    expect(matchTotpStep(secret, totpCodeForStep(secret, step - 2), NOW, null)).toBeNull();
  });

  it('refuses steps at or before the last accepted one', () => {
    const step = totpStepAt(NOW);
    const code = totpCodeForStep(secret, step);
    expect(matchTotpStep(secret, code, NOW, step)).toBeNull();
    expect(matchTotpStep(secret, code, NOW, step - 1)).toBe(step);
  });

  it('tolerates spaces and refuses non-digit input', () => {
    const code = totpCodeForStep(secret, totpStepAt(NOW));
    expect(matchTotpStep(secret, `${code.slice(0, 3)} ${code.slice(3)}`, NOW, null)).not.toBeNull();
    for (const bad of ['', 'abcdef', '1234567', '12345', `${code}0`]) expect(matchTotpStep(secret, bad, NOW, null)).toBeNull();
  });

  it('builds a URI authenticator apps understand and that yields the same codes', () => {
    const uri = totpUri(secret, 'ann@example.com', 'Portcullis');
    expect(uri.startsWith('otpauth://totp/Portcullis:ann%40example.com?')).toBe(true);
    const base32 = new URL(uri).searchParams.get('secret') ?? '';
    const app = new TOTP({ secret: Secret.fromBase32(base32) });
    expect(app.generate({ timestamp: NOW })).toBe(totpCodeForStep(secret, totpStepAt(NOW)));
  });
});

describe('recovery codes', () => {
  it('generates ten distinct well-formed codes and their hashes', () => {
    const { codes, hashes } = generateRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
    expect(hashes.every((hash) => /^[0-9a-f]{64}$/.test(hash))).toBe(true);
    expect(hashes.join()).not.toContain(codes[0]!);
  });

  it('each code is consumed once and survives formatting differences', () => {
    const { codes, hashes } = generateRecoveryCodes();
    const first = codes[3]!;
    const remaining = consumeRecoveryCode(hashes, first.toLowerCase().replace(/-/g, ' '));
    expect(remaining).toHaveLength(9);
    expect(consumeRecoveryCode(remaining ?? [], first)).toBeNull();
    expect(consumeRecoveryCode(hashes, 'not-a-code')).toBeNull();
    expect(normalizeRecoveryCode('x'.repeat(100))).toBeNull();
  });
});
