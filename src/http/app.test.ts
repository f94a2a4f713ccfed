import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createLogger } from '../core/logger.js';
import { anonymousPrincipal } from '../identity/principal.js';
import { createHttpApp, type Authenticate } from './app.js';
import { defineRoute } from './route.js';

function build(options: { trustedProxies?: string[]; behindTls?: boolean; authenticate?: Authenticate } = {}) {
  const authenticate: Authenticate =
    options.authenticate ?? (async (credential, context) => ({ ok: true, principal: credential === null && context.allowAnonymous ? anonymousPrincipal(context.ip) : null }));
  const http = createHttpApp({
    logger: createLogger({ level: 'silent' }),
    bodyLimitBytes: 1024,
    trustedProxies: options.trustedProxies ?? [],
    behindTls: options.behindTls ?? false,
    authenticate,
    readiness: async () => ({ ready: false, checks: { recordStore: 'failing' } }),
    metrics: new Registry(),
    version: 'test',
  });
  defineRoute(http.app, http.registry, {
    method: 'GET',
    url: '/whoami',
    summary: 'test',
    auth: 'optional',
    handler: async ({ principal }) => ({ id: principal?.id ?? null }),
  });
  defineRoute(http.app, http.registry, {
    method: 'POST',
    url: '/echo',
    summary: 'test',
    auth: 'optional',
    body: z.object({ n: z.number().int().max(10) }).strict(),
    handler: async ({ body }) => body,
  });
  return http;
}

describe('HTTP shell', () => {
  it('takes the client address from the socket unless the peer is a trusted proxy', async () => {
    const untrusted = build();
    const spoofed = await untrusted.app.inject({ url: '/whoami', remoteAddress: '203.0.113.9', headers: { 'x-forwarded-for': '198.51.100.7' } });
    expect(spoofed.json()).toEqual({ id: 'anon:203.0.113.9' });

    const trusted = build({ trustedProxies: ['10.0.0.0/8'] });
    const viaProxy = await trusted.app.inject({ url: '/whoami', remoteAddress: '10.1.2.3', headers: { 'x-forwarded-for': '198.51.100.7' } });
    expect(viaProxy.json()).toEqual({ id: 'anon:198.51.100.7' });
    const notProxy = await trusted.app.inject({ url: '/whoami', remoteAddress: '203.0.113.9', headers: { 'x-forwarded-for': '198.51.100.7' } });
    expect(notProxy.json()).toEqual({ id: 'anon:203.0.113.9' });
  });

  it('refuses an invalid credential with 401 instead of downgrading to anonymous', async () => {
    const http = build({ authenticate: async () => ({ ok: false, code: 'invalid_token' }) });
    const response = await http.app.inject({ url: '/whoami', headers: { authorization: 'Bearer forged' } });
    expect(response.statusCode).toBe(401);
    expect(response.json()).toEqual({ error: { code: 'invalid_token', message: 'The token is invalid.' } });
  });

  it('validates bodies into the one error shape and never answers 500 for bad input', async () => {
    const http = build();
    const invalid = await http.app.inject({ method: 'POST', url: '/echo', payload: { n: 11 } });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json().error.code).toBe('validation_failed');
    expect(invalid.json().error.field).toBe('body.n');
    // A key the route does not know is named escaped and cut short, never echoed whole or raw.
    const oddKey = await http.app.inject({ method: 'POST', url: '/echo', payload: { n: 1, ['\u0000'.repeat(100)]: 1 } });
    expect(oddKey.statusCode).toBe(400);
    expect(oddKey.json().error.message).toBe(`Invalid body: Unrecognized key: "${'\\u0000'.repeat(64)}…"`);
    const tooBig = await http.app.inject({ method: 'POST', url: '/echo', payload: { n: 1, pad: 'x'.repeat(2048) } });
    expect(tooBig.statusCode).toBe(413);
    const wrongType = await http.app.inject({ method: 'POST', url: '/echo', payload: '<n>1</n>', headers: { 'content-type': 'application/xml' } });
    expect(wrongType.statusCode).toBe(415);
    const protoPoison = await http.app.inject({ method: 'POST', url: '/echo', payload: '{"__proto__":{"n":1}}', headers: { 'content-type': 'application/json' } });
    expect(protoPoison.statusCode).toBe(400);
  });

  it('adds HSTS only behind TLS and reports readiness honestly', async () => {
    expect((await build().app.inject({ url: '/healthz' })).headers['strict-transport-security']).toBeUndefined();
    const tls = await build({ behindTls: true }).app.inject({ url: '/healthz' });
    expect(tls.headers['strict-transport-security']).toContain('max-age=');
    const ready = await build().app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ status: 'not_ready', checks: { recordStore: 'failing' } });
  });

  it('drains a request in flight on close', async () => {
    const http = build();
    let release: () => void = () => undefined;
    let markStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    defineRoute(http.app, http.registry, {
      method: 'GET',
      url: '/slow',
      summary: 'test',
      auth: 'none',
      handler: async () => {
        await new Promise<void>((resolve) => {
          release = resolve;
          markStarted();
        });
        return { done: true };
      },
    });
    await http.app.listen({ host: '127.0.0.1', port: 0 });
    const address = http.app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const inFlight = fetch(`http://127.0.0.1:${port}/slow`);
    await started;
    const closing = http.app.close();
    setTimeout(() => release(), 100);
    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ done: true });
    await closing;
  });
});

describe('malformed URLs', () => {
  it('get our error shape and headers, and never the URL back (a query credential would travel with it)', async () => {
    const { app } = build();
    for (const url of ['/egress/x/%zz?access_token=pck_SECRET123', '/whoami%E0%A4%A?access_token=pck_SECRET123']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toEqual({ error: { code: 'bad_request', message: 'The request URL is malformed.' } });
      expect(response.body).not.toContain('SECRET123');
      expect(JSON.stringify(response.headers)).not.toContain('SECRET123');
      expect(response.headers['x-content-type-options']).toBe('nosniff');
      expect(response.headers['x-request-id']).toMatch(/^req_/);
    }
  });
});
