import { describe, it, expect } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { parseExpiry, RuntimeCredentialProvider, type RuntimeCredentialMinter } from './provider.js';

const NOW = Date.UTC(2026, 0, 1);
const failing: RuntimeCredentialMinter = async () => {
  throw new Error('gateway down');
};
const hanging: RuntimeCredentialMinter = (_id, signal) =>
  new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
const ignoringAbort: RuntimeCredentialMinter = () => new Promise(() => undefined);

function provider(mint: RuntimeCredentialMinter, timeoutMs = 50) {
  return new RuntimeCredentialProvider({ mint, clock: new ManualClock(NOW), timeoutMs });
}

async function failure(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('RuntimeCredentialProvider', () => {
  it('returns a freshly minted key when minting works', async () => {
    const expiresAt = new Date(NOW + 3600_000);
    const p = provider(async (instanceId) => ({ token: `t-${instanceId}`, keyId: 'key_1', expiresAt }));
    const got = await p.obtain('inst-1', { token: 'old', expiresAt: new Date(NOW + 10) });
    expect(got).toEqual({ source: 'minted', token: 't-inst-1', keyId: 'key_1', expiresAt });
  });

  it('falls back to the stored key when minting fails and the expiry is known and ahead', async () => {
    const got = await provider(failing).obtain('i', { token: 'stored', expiresAt: new Date(NOW + 60_000) });
    expect(got).toMatchObject({ source: 'stored', token: 'stored', mintFailure: 'error' });
  });

  it('accepts a stored expiry given as an ISO string or epoch ms', async () => {
    const iso = new Date(NOW + 60_000).toISOString();
    await expect(provider(failing).obtain('i', { token: 's', expiresAt: iso })).resolves.toMatchObject({ source: 'stored' });
    await expect(provider(failing).obtain('i', { token: 's', expiresAt: NOW + 60_000 })).resolves.toMatchObject({ source: 'stored' });
  });

  it('falls back after a timeout, aborting the minter', async () => {
    const got = await provider(hanging).obtain('i', { token: 'stored', expiresAt: new Date(NOW + 60_000) });
    expect(got).toMatchObject({ source: 'stored', mintFailure: 'timeout' });
  });

  it('does not wait on a minter that ignores the abort signal', async () => {
    const started = Date.now();
    const err = await failure(provider(ignoringAbort, 30).obtain('i', null));
    expect(err.code).toBe('credential_unavailable');
    expect(err.message).toContain('30 ms');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('fails closed with no stored key', async () => {
    const err = await failure(provider(failing).obtain('i', null));
    expect(err.code).toBe('credential_unavailable');
    expect(err.status).toBe(503);
  });

  it.each([
    ['missing', undefined],
    ['null', null],
    ['unparseable', 'next tuesday'],
    ['date without zone', '2026-02-01T00:00:00'],
    ['invalid date', new Date(Number.NaN)],
    ['NaN number', Number.NaN],
  ])('fails closed when the stored expiry is %s', async (_label, expiresAt) => {
    const err = await failure(provider(failing).obtain('i', { token: 'pck_stored_tok', expiresAt }));
    expect(err.code).toBe('credential_unavailable');
    expect(err.message).toMatch(/missing or unreadable/);
    expect(err.message).not.toContain('pck_stored_tok');
  });

  it('fails closed when the stored key has expired, judged by the injected clock', async () => {
    const clock = new ManualClock(NOW);
    const p = new RuntimeCredentialProvider({ mint: failing, clock, timeoutMs: 50 });
    const stored = { token: 'stored', expiresAt: new Date(NOW + 1000) };
    await expect(p.obtain('i', stored)).resolves.toMatchObject({ source: 'stored' });
    clock.advance(1000); // expiry equal to now is already expired
    const err = await failure(p.obtain('i', stored));
    expect(err.code).toBe('credential_unavailable');
    expect(err.message).toMatch(/expired/);
  });

  it('never puts the stored token into the error', async () => {
    const err = await failure(provider(failing).obtain('i', { token: 'pck_secret_value', expiresAt: 'bogus' }));
    expect(JSON.stringify({ m: err.message, c: String(err.cause) })).not.toContain('pck_secret_value');
  });

  it('rejects a non-positive timeout at construction', () => {
    expect(() => new RuntimeCredentialProvider({ mint: failing, clock: new ManualClock(), timeoutMs: 0 })).toThrow(RangeError);
  });
});

describe('parseExpiry', () => {
  it('keeps valid instants and refuses loose strings', () => {
    expect(parseExpiry('2026-01-01T00:00:00Z')?.getTime()).toBe(NOW);
    expect(parseExpiry('2026-01-01T01:00:00+01:00')?.getTime()).toBe(NOW);
    expect(parseExpiry('Jan 1 2026')).toBeNull();
    expect(parseExpiry('')).toBeNull();
    expect(parseExpiry(-5)).toBeNull();
  });
});
