import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Resolver } from '../egress/index.js';
import { Upstream, UpstreamError, type UpstreamCall } from './upstream.js';

let server: Server;
let port: number;
let hits = 0;

beforeAll(async () => {
  server = createServer((_request, response) => {
    hits += 1;
    response.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Names resolve from a table the test changes, as DNS can change after an endpoint is stored. */
const answers = new Map<string, string>();
const dns: Resolver = async (host) => {
  const address = answers.get(host);
  if (address === undefined) throw new Error('no such host');
  return [{ address, family: address.includes(':') ? 6 : 4 }];
};

function call(url: string, egress: UpstreamCall['egress']): UpstreamCall {
  return { url, method: 'GET', headers: {}, timeoutMs: 2000, egress };
}

async function outcome(upstream: Upstream, request: UpstreamCall): Promise<string> {
  try {
    const response = await upstream.send(request);
    await response.read(1024);
    return String(response.status);
  } catch (error) {
    return error instanceof UpstreamError ? error.kind : 'other';
  }
}

describe('Upstream: org custom endpoints are checked on the address actually connected to', () => {
  it("a configured provider's loopback host is trusted for the provider, never for an org endpoint on the same origin", async () => {
    const upstream = new Upstream({ allow: { hosts: ['127.0.0.1'] }, org: { allow: {}, plainHttpHosts: ['127.0.0.1'] }, resolver: dns });
    try {
      const url = `http://127.0.0.1:${port}/v1/models`;
      hits = 0;
      expect(await outcome(upstream, call(url, 'provider'))).toBe('200');
      // The provider's connection is pooled now; the org call must neither reuse it nor connect.
      expect(await outcome(upstream, call(url, 'org'))).toBe('egress_refused');
      expect(hits).toBe(1);
    } finally {
      await upstream.close();
    }
  });

  it('a name that resolved publicly when stored and resolves to loopback or metadata at call time is refused before connecting', async () => {
    const upstream = new Upstream({ allow: {}, org: { allow: {}, plainHttpHosts: ['rebind.test'] }, resolver: dns });
    try {
      hits = 0;
      for (const address of ['127.0.0.1', '169.254.169.254', '::ffff:169.254.169.254', '::1']) {
        answers.set('rebind.test', address);
        expect(await outcome(upstream, call(`http://rebind.test:${port}/v1/models`, 'org')), address).toBe('egress_refused');
      }
      expect(hits).toBe(0);
    } finally {
      await upstream.close();
    }
  });

  it.each(['169.254.169.254', '[::ffff:a9fe:a9fe]', '0x7f.1', '127.1', '[::1]', '[::ffff:7f00:1]'])('the literal %s is refused at call time', async (host) => {
    const upstream = new Upstream({ allow: {}, org: { allow: {}, plainHttpHosts: [new URL(`http://${host}/`).hostname] }, resolver: dns });
    try {
      hits = 0;
      expect(await outcome(upstream, call(`http://${host}:${port}/v1/models`, 'org'))).toBe('egress_refused');
      expect(hits).toBe(0);
    } finally {
      await upstream.close();
    }
  });

  it('loopback only when allowed, metadata never, plain http only to listed hosts', async () => {
    answers.set('local.test', '127.0.0.1');
    answers.set('meta.test', '169.254.169.254');
    const open = new Upstream({ allow: {}, org: { allow: { loopback: true, private: true }, plainHttpHosts: ['local.test', 'meta.test'] }, resolver: dns });
    const httpsOnly = new Upstream({ allow: {}, org: { allow: { loopback: true }, plainHttpHosts: [] }, resolver: dns });
    try {
      hits = 0;
      expect(await outcome(open, call(`http://local.test:${port}/v1/models`, 'org'))).toBe('200');
      expect(await outcome(open, call(`http://meta.test:${port}/v1/models`, 'org'))).toBe('egress_refused');
      expect(await outcome(httpsOnly, call(`http://local.test:${port}/v1/models`, 'org'))).toBe('egress_refused');
      expect(hits).toBe(1);
    } finally {
      await open.close();
      await httpsOnly.close();
    }
  });
});
