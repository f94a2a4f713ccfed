import { describe, expect, it } from 'vitest';
import { extractCredential, MAX_CREDENTIAL_LENGTH, SESSION_COOKIE } from './credentials.js';

describe('extractCredential', () => {
  const cookie = `${SESSION_COOKIE}=cookie-token; other=1`;

  it('takes the bearer header first, over the query and the cookie', () => {
    expect(extractCredential({ authorization: 'Bearer abc', cookie }, { access_token: 'q' }, true)).toEqual({ ok: true, credential: { source: 'bearer', token: 'abc' } });
  });

  it('accepts ?access_token= only on streaming routes', () => {
    expect(extractCredential({}, { access_token: 'q' }, true)).toEqual({ ok: true, credential: { source: 'query', token: 'q' } });
    expect(extractCredential({}, { access_token: 'q' }, false)).toEqual({ ok: true, credential: null });
    expect(extractCredential({ cookie }, { access_token: 'q' }, false)).toEqual({ ok: true, credential: { source: 'cookie', token: 'cookie-token' } });
  });

  it('falls back to the session cookie, and to nothing', () => {
    expect(extractCredential({ cookie }, {}, false)).toEqual({ ok: true, credential: { source: 'cookie', token: 'cookie-token' } });
    expect(extractCredential({ cookie: 'unrelated=1' }, {}, false)).toEqual({ ok: true, credential: null });
  });

  it('refuses malformed credentials instead of treating them as absent', () => {
    for (const authorization of ['Basic Zm9vOmJhcg==', 'Bearer', 'Bearer a b', 'bearer\ttoken', `Bearer ${'x'.repeat(MAX_CREDENTIAL_LENGTH + 8)}`]) {
      expect(extractCredential({ authorization }, {}, false).ok).toBe(false);
    }
    expect(extractCredential({}, { access_token: ['a', 'b'] }, true).ok).toBe(false);
    expect(extractCredential({}, { access_token: '' }, true).ok).toBe(false);
    expect(extractCredential({ cookie: `${SESSION_COOKIE}=${'x'.repeat(2000)}` }, {}, false).ok).toBe(false);
  });
});
