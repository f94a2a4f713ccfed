import { describe, it, expect } from 'vitest';
import type { Resolver } from '../egress/index.js';
import { checkCustomEndpoint } from './custom-endpoints.js';

// Names map to fixed answers so no test touches real DNS.
const resolver: Resolver = (hostname) => {
  const answers: Record<string, string> = { 'api.example.com': '93.184.216.34', 'sneaky.example.com': '127.0.0.1', 'intranet.example.com': '10.1.2.3' };
  const address = answers[hostname];
  return address === undefined ? Promise.reject(new Error('no such host')) : Promise.resolve([{ address, family: 4 }]);
};

const strict = { allowLoopback: false, allowPrivate: false, resolver };

describe('checkCustomEndpoint', () => {
  it('accepts a public https base URL and drops trailing slashes', async () => {
    expect(await checkCustomEndpoint('https://api.example.com/v1/', strict)).toEqual({ ok: true, url: 'https://api.example.com/v1' });
  });

  it.each([
    ['https://169.254.169.254/v1', 'metadata'],
    ['https://[::ffff:a9fe:a9fe]/v1', 'mapped metadata'],
    ['https://0x7f.1/v1', 'hex loopback'],
    ['https://127.0.0.1/v1', 'loopback'],
    ['https://sneaky.example.com/v1', 'name resolving to loopback'],
    ['https://intranet.example.com/v1', 'name resolving to private'],
  ])('refuses %s (%s)', async (url) => {
    expect(await checkCustomEndpoint(url, strict)).toEqual({ ok: false, reason: 'address_refused' });
  });

  it('lets the operator allow loopback, but never metadata', async () => {
    const open = { ...strict, allowLoopback: true, allowPrivate: true };
    expect((await checkCustomEndpoint('https://0x7f.1/v1', open)).ok).toBe(true);
    expect(await checkCustomEndpoint('https://169.254.169.254/v1', open)).toEqual({ ok: false, reason: 'address_refused' });
    expect(await checkCustomEndpoint('https://[::ffff:a9fe:a9fe]/v1', open)).toEqual({ ok: false, reason: 'address_refused' });
  });

  it('requires https unless plain http is allowed for that very host', async () => {
    expect(await checkCustomEndpoint('http://api.example.com/v1', strict)).toEqual({ ok: false, reason: 'scheme' });
    expect((await checkCustomEndpoint('http://api.example.com/v1', { ...strict, allowHttpHosts: ['API.example.com'] })).ok).toBe(true);
    expect((await checkCustomEndpoint('http://api.example.com:8080/v1', { ...strict, allowHttpHosts: ['api.example.com'] })).ok).toBe(true);
    expect(await checkCustomEndpoint('http://api.example.com/v1', { ...strict, allowHttpHosts: ['other.example.com', 'example.com'] })).toEqual({ ok: false, reason: 'scheme' });
    // A listed host only lifts the scheme rule, never the address rule.
    expect(await checkCustomEndpoint('http://sneaky.example.com/v1', { ...strict, allowHttpHosts: ['sneaky.example.com'] })).toEqual({ ok: false, reason: 'address_refused' });
    expect(await checkCustomEndpoint('ftp://api.example.com/', strict)).toEqual({ ok: false, reason: 'scheme' });
  });

  it('refuses userinfo, query and fragment', async () => {
    expect(await checkCustomEndpoint('https://user:pw@api.example.com/v1', strict)).toEqual({ ok: false, reason: 'credentials_in_url' });
    expect(await checkCustomEndpoint('https://api.example.com/v1?x=1', strict)).toEqual({ ok: false, reason: 'query_or_fragment' });
    expect(await checkCustomEndpoint('https://api.example.com/v1#frag', strict)).toEqual({ ok: false, reason: 'query_or_fragment' });
    expect(await checkCustomEndpoint('https://api.example.com/v1?', strict)).toEqual({ ok: false, reason: 'query_or_fragment' });
  });

  it('reports unresolvable names and unparsable or oversized input', async () => {
    expect(await checkCustomEndpoint('https://missing.example.com/', strict)).toEqual({ ok: false, reason: 'resolution_failed' });
    expect(await checkCustomEndpoint('not a url', strict)).toEqual({ ok: false, reason: 'invalid_url' });
    expect(await checkCustomEndpoint(`https://api.example.com/${'a'.repeat(3000)}`, strict)).toEqual({ ok: false, reason: 'invalid_url' });
  });
});
