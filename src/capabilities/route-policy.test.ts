import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { classifyRoute } from './route-policy.js';
import { checkRequestPath } from './path.js';
import { normaliseHost } from './host.js';
import { OTHER_SESSION, SESSION, claims } from './testing/fixtures.js';

const c = claims();
const T = 'https://target.example.com';

function reasonOf(method: string, url: string, grantName?: string): string {
  const decision = classifyRoute(c, method, url, grantName === undefined ? {} : { grantName });
  return decision.ok ? `ok:${decision.grant.name}` : decision.reason;
}

describe('route policy: paths', () => {
  it('accepts plain granted paths and forwards them byte for byte', () => {
    const decision = classifyRoute(c, 'POST', 'https://api.openai.com/v1/chat/completions?stream=true');
    expect(decision).toMatchObject({ ok: true, routeClass: 'provider_model', forwardPath: '/v1/chat/completions', forwardQuery: '?stream=true' });
    const encoded = classifyRoute(c, 'GET', `${T}/files/a%20b.txt`);
    expect(encoded).toMatchObject({ ok: true, forwardPath: '/files/a%20b.txt' });
  });

  it.each([
    ['/%2e%2e/etc/passwd', 'path_dot_segment'],
    ['/v1/..%2fadmin', 'path_encoded_slash'],
    ['/..%2f', 'path_encoded_slash'],
    ['/%252e%252e/admin', 'path_dot_segment'],
    ['/a/%25252525252f/b', 'path_encoded_slash'],
    ['/a%25252525252fb', 'path_encoded_slash'],
    ['/a/%5c/b', 'path_encoded_slash'],
    ['/\\..\\admin', 'path_backslash'],
    ['/a/%00/b', 'path_control_character'],
    ['/a/%2500', 'path_control_character'],
    ['/a/%0d%0aHost:%20evil', 'path_control_character'],
    ['/a/%7f', 'path_control_character'],
    ['/../admin', 'path_dot_segment'],
    ['/./admin', 'path_dot_segment'],
    ['/a/..;/admin', 'path_dot_segment'],
    ['/a/.%2e/admin', 'path_dot_segment'],
    ['//evil.test/x', 'path_empty_segment'],
    ['/a b', 'path_bad_character'],
    ['/é', 'path_bad_character'],
    ['relative', 'path_not_absolute'],
    ['', 'path_not_absolute'],
  ])('refuses %s', (path, reason) => {
    expect(checkRequestPath(path)).toEqual({ ok: false, reason });
  });

  it('refuses a path encoded at any depth, not just a fixed number of rounds', () => {
    let slash = '%2f';
    for (let depth = 0; depth < 40; depth++) slash = slash.replace('%', '%25');
    expect(checkRequestPath(`/a${slash}b`)).toEqual({ ok: false, reason: 'path_encoded_slash' });
    let dots = '%2e%2e';
    for (let depth = 0; depth < 40; depth++) dots = dots.replaceAll('%', '%25');
    expect(checkRequestPath(`/${dots}/x`)).toEqual({ ok: false, reason: 'path_dot_segment' });
  });

  it('classifies the listed attack paths as refusals', () => {
    for (const path of ['/%2e%2e/', '/..%2f', '/%252e%252e/', '/%25252525252f', '/\\..\\', '/%00']) {
      const decision = classifyRoute(c, 'GET', `${T}${path}`);
      expect(decision.ok, path).toBe(false);
    }
  });
});

describe('route policy: hosts', () => {
  it.each([
    ['https://target.example.com.evil.test/x', 'host_mismatch'],
    ['https://target.example.com@evil.test/x', 'userinfo'],
    ['https://evil.test\\@target.example.com/x', 'userinfo'],
    ['https://user:pw@target.example.com/x', 'userinfo'],
    ['https://tаrget.example.com/x', 'host_mismatch'], // Cyrillic 'а'
    ['https://targеt.example.com/x', 'host_mismatch'], // Cyrillic 'е'
    ['https://target.example.com./x', 'bad_host'],
    ['https://target.example.com:8443/x', 'port_mismatch'],
    ['https://target.example.com:0443/x', 'bad_host'],
    ['https://target.example.com:/x', 'bad_host'],
    ['http://target.example.com/x', 'scheme_mismatch'],
    ['https://target%2eexample.com/x', 'bad_host'],
    ['https://2130706433/x', 'host_mismatch'],
    ['https://[::1]/x', 'host_mismatch'],
  ])('refuses %s', (url, reason) => {
    expect(reasonOf('GET', url)).toBe(reason);
  });

  it('compares hosts case-insensitively and after IDNA normalisation', () => {
    expect(reasonOf('GET', 'https://TARGET.Example.COM/x')).toBe('ok:backend');
    expect(reasonOf('GET', 'https://target.example.com:443/x')).toBe('ok:backend');
    expect(reasonOf('GET', 'HTTPS://target.example.com/x')).toBe('ok:backend');
    expect(normaliseHost('bücher.example')).toBe('xn--bcher-kva.example');
    expect(normaliseHost('BÜCHER.example')).toBe('xn--bcher-kva.example');
  });

  it('refuses fragments, bad queries and malformed URLs', () => {
    expect(reasonOf('GET', `${T}/x#frag`)).toBe('fragment');
    expect(reasonOf('GET', `${T}/x?a=b c`)).toBe('bad_query');
    expect(reasonOf('GET', `${T}/x?a=%0a`)).toBe('ok:backend'); // query bytes are data, not routing
    expect(reasonOf('GET', 'target.example.com/x')).toBe('malformed_url');
    expect(reasonOf('GET', `${T}/${'a'.repeat(20_000)}`)).toBe('url_too_long');
  });
});

describe('route policy: grants and sessions', () => {
  it('checks methods and prefixes by whole segments', () => {
    expect(reasonOf('GET', 'https://api.openai.com/v1/chat/completions')).toBe('method_not_allowed');
    expect(reasonOf('POST', 'https://api.openai.com/v1/chat/completionsX')).toBe('route_not_granted');
    expect(reasonOf('POST', 'https://api.openai.com/v1/models')).toBe('route_not_granted');
    expect(reasonOf('TRACE', `${T}/x`)).toBe('method_not_allowed');
    expect(reasonOf('get', `${T}/x`)).toBe('method_not_allowed');
  });

  it('serves the bound session through the session grant, before the catch-all', () => {
    const decision = classifyRoute(c, 'POST', `${T}/api/sessions/${SESSION}/events`);
    expect(decision).toMatchObject({ ok: true, routeClass: 'session_ingest' });
    if (decision.ok) expect(decision.grant.name).toBe('ingest');
  });

  it("refuses another session's routes on a shared origin even though a catch-all covers the path", () => {
    expect(reasonOf('POST', `${T}/api/sessions/${OTHER_SESSION}/events`)).toBe('other_session');
    expect(reasonOf('GET', `${T}/api/sessions/${OTHER_SESSION}`)).toBe('other_session');
    expect(reasonOf('GET', `${T}/api/sessions/${OTHER_SESSION}/anything/else`)).toBe('other_session');
    expect(reasonOf('GET', `${T}/api/sessions/${OTHER_SESSION}`, 'backend')).toBe('other_session');
    // Encoding or case games an upstream would undo are seen through.
    expect(reasonOf('GET', `${T}/api/%73essions/${OTHER_SESSION}/events`)).toBe('other_session');
    expect(reasonOf('GET', `${T}/API/Sessions/${OTHER_SESSION}/events`)).toBe('other_session');
    expect(reasonOf('GET', `${T}/api/sessions/${OTHER_SESSION.replace('B', '%42')}/events`)).toBe('other_session');
    expect(reasonOf('GET', `${T}/api/sessions/${SESSION}x/events`)).toBe('other_session');
    // Unrelated backend routes still go through the catch-all.
    expect(reasonOf('GET', `${T}/api/users/me`)).toBe('ok:backend');
  });

  it('refuses a grant name the capability does not hold', () => {
    expect(reasonOf('GET', `${T}/x`, 'nope')).toBe('unknown_grant');
    expect(reasonOf('GET', `${T}/x`, 'openai')).toBe('host_mismatch');
  });

  it('property: never throws and never accepts an unsafe path, whatever the input', () => {
    const pathChars = fc.constantFrom('/', '.', '%', '2', 'e', 'f', '5', 'c', '\\', 'a', '0', ';', '@', ':', '?', '#', ' ', '\u0000');
    const unsafe = fc.string({ unit: pathChars, maxLength: 40 });
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom('GET', 'POST', 'DELETE'), fc.string({ maxLength: 16 })),
        fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 }), fc.webUrl({ withQueryParameters: true, withFragments: true }), unsafe.map((p) => `${T}${p}`)),
        fc.option(fc.oneof(fc.constantFrom('openai', 'ingest', 'backend'), fc.string({ maxLength: 8 })), { nil: undefined }),
        (method, url, grantName) => {
          const decision = classifyRoute(c, method, url, grantName === undefined ? {} : { grantName });
          if (!decision.ok) expect(decision.reason).not.toBe('unclassifiable');
          if (decision.ok) {
            expect(decision.forwardPath.startsWith('/')).toBe(true);
            expect(checkRequestPath(decision.forwardPath).ok).toBe(true);
            const lower = url.toLowerCase();
            expect(lower.startsWith(T) || lower.startsWith('https://api.openai.com')).toBe(true);
          }
        },
      ),
      { numRuns: 5000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (path) => {
        const result = checkRequestPath(path);
        if (result.ok) expect(result.path).toBe(path);
      }),
      { numRuns: 5000 },
    );
  });
});
