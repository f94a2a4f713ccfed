import { describe, it, expect } from 'vitest';
import { AppError } from '../../core/errors.js';
import { httpRuntimeMinter } from './http-minter.js';

type Call = { url: string; init: RequestInit | undefined };

function fakeFetch(status: number, body: unknown, calls: Call[]): typeof fetch {
  return async (input, init) => {
    calls.push({ url: input instanceof URL ? input.href : typeof input === 'string' ? input : input.url, init });
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  };
}

describe('httpRuntimeMinter', () => {
  it('posts to the runtime credential endpoint with the deployer key and parses the answer', async () => {
    const calls: Call[] = [];
    const mint = httpRuntimeMinter({
      baseUrl: 'http://127.0.0.1:7070',
      orgId: 'org_AAAAAAAAAAAAAAAA',
      token: 'pck_deployer',
      scopes: ['models'],
      fetch: fakeFetch(201, { token: 'pck_new', key: { id: 'key_1', expiresAt: '2026-01-02T00:00:00.000Z' }, instanceId: 'a b' }, calls),
    });
    const got = await mint('a b', new AbortController().signal);
    expect(got).toEqual({ token: 'pck_new', keyId: 'key_1', expiresAt: new Date('2026-01-02T00:00:00.000Z') });
    expect(calls[0]?.url).toBe('http://127.0.0.1:7070/api/orgs/org_AAAAAAAAAAAAAAAA/runtimes/a%20b/credential');
    expect(calls[0]?.init?.redirect).toBe('error');
    expect((calls[0]?.init?.headers as Record<string, string> | undefined)?.authorization).toBe('Bearer pck_deployer');
    expect(JSON.parse(calls[0]?.init?.body as string)).toEqual({ scopes: ['models'] });
  });

  it('turns a refusal or an odd body into an error that carries no response content', async () => {
    for (const [status, body] of [
      [503, { error: { code: 'overloaded', message: 'pck_leaky' } }],
      [201, { token: 'pck_leaky', key: { id: 'key_1', expiresAt: 'soon' } }],
    ] as const) {
      const mint = httpRuntimeMinter({ baseUrl: 'http://127.0.0.1:7070/', orgId: 'org_AAAAAAAAAAAAAAAA', token: 't', fetch: fakeFetch(status, body, []) });
      const err = await mint('i', new AbortController().signal).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).message).not.toContain('pck_leaky');
    }
  });
});
