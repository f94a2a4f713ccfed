import { createServer, connect, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { EgressRefusedError, guardedLookup, resolveForConnect, type ResolvedAddress, type Resolver } from './resolve.js';

function fixed(...answers: ResolvedAddress[]): Resolver {
  return async () => answers;
}

describe('resolveForConnect', () => {
  it('resolves once and hands back the checked address, so a rebinding name cannot switch to loopback', async () => {
    let calls = 0;
    // First answer public, every later answer loopback: the classic rebinding resolver.
    const rebinding: Resolver = async () => {
      calls += 1;
      return calls === 1 ? [{ address: '93.184.215.14', family: 4 }] : [{ address: '127.0.0.1', family: 4 }];
    };
    const target = await resolveForConnect('rebind.example', { resolver: rebinding });
    expect(target).toEqual({ ok: true, address: '93.184.215.14', family: 4, addressClass: 'public' });
    expect(calls).toBe(1);
    // Asking again (as a connect-by-name would) now sees loopback, and is refused.
    expect(await resolveForConnect('rebind.example', { resolver: rebinding })).toEqual({ ok: false, reason: 'address_refused', addressClass: 'loopback' });
  });

  it('refuses a name when any one of its addresses is internal', async () => {
    const mixed = fixed({ address: '93.184.215.14', family: 4 }, { address: '169.254.169.254', family: 4 });
    expect(await resolveForConnect('mixed.example', { resolver: mixed })).toEqual({ ok: false, reason: 'address_refused', addressClass: 'metadata' });
    const mapped = fixed({ address: '::ffff:127.0.0.1', family: 6 });
    expect(await resolveForConnect('mapped.example', { resolver: mapped })).toMatchObject({ ok: false, addressClass: 'loopback' });
  });

  it.each([
    ['2130706433', 'loopback'],
    ['0x7f.1', 'loopback'],
    ['0177.0.0.1', 'loopback'],
    ['[::ffff:a9fe:a9fe]', 'metadata'],
    ['[::]', 'unspecified'],
    ['0.0.0.0', 'unspecified'],
  ])('refuses the literal %s (%s) without resolving', async (host, addressClass) => {
    const never: Resolver = async () => {
      throw new Error('must not resolve a literal');
    };
    expect(await resolveForConnect(host, { resolver: never })).toEqual({ ok: false, reason: 'address_refused', addressClass });
  });

  it('allows loopback and private only when configured, and never metadata', async () => {
    const loop = fixed({ address: '127.0.0.1', family: 4 });
    expect((await resolveForConnect('dev.local', { resolver: loop, allow: { loopback: true } })).ok).toBe(true);
    expect((await resolveForConnect('dev.local', { resolver: loop, allow: { hosts: ['DEV.local'] } })).ok).toBe(true);
    expect((await resolveForConnect('other.local', { resolver: loop, allow: { hosts: ['dev.local'] } })).ok).toBe(false);
    const priv = fixed({ address: '10.0.0.5', family: 4 });
    expect((await resolveForConnect('svc.internal', { resolver: priv, allow: { private: true } })).ok).toBe(true);
    expect((await resolveForConnect('svc.internal', { resolver: priv, allow: { loopback: true } })).ok).toBe(false);
    const meta = fixed({ address: '169.254.169.254', family: 4 });
    const everything = { loopback: true, private: true, hosts: ['meta.example'] };
    expect(await resolveForConnect('meta.example', { resolver: meta, allow: everything })).toMatchObject({ ok: false, addressClass: 'metadata' });
    expect(await resolveForConnect('[fe80::1]', { resolver: meta, allow: everything })).toMatchObject({ ok: false, addressClass: 'link_local' });
  });

  it('refuses invalid hosts, failed and empty resolutions with typed reasons', async () => {
    const ok = fixed({ address: '93.184.215.14', family: 4 });
    for (const host of ['1.2.3.256', '08.1.1.1', '[not-ip]', 'a b', 'evil.test\\@x', 'user@host', '']) {
      expect(await resolveForConnect(host, { resolver: ok }), host).toEqual({ ok: false, reason: 'invalid_host' });
    }
    const failing: Resolver = async () => {
      throw new Error('ENOTFOUND');
    };
    expect(await resolveForConnect('nx.example', { resolver: failing })).toEqual({ ok: false, reason: 'resolution_failed' });
    expect(await resolveForConnect('empty.example', { resolver: fixed() })).toEqual({ ok: false, reason: 'no_addresses' });
    const hanging: Resolver = () => new Promise(() => undefined);
    expect(await resolveForConnect('slow.example', { resolver: hanging, timeoutMs: 20 })).toEqual({ ok: false, reason: 'resolution_failed' });
    const lying = fixed({ address: 'not-an-ip', family: 4 });
    expect(await resolveForConnect('lying.example', { resolver: lying })).toMatchObject({ ok: false, reason: 'address_refused' });
  });
});

describe('guardedLookup on a real socket', () => {
  async function withServer(run: (port: number) => Promise<void>): Promise<void> {
    const server = createServer((socket) => socket.end('hello'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await run((server.address() as AddressInfo).port);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  function attempt(port: number, lookup: ReturnType<typeof guardedLookup>): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: 'app.test', port, lookup });
      let data = '';
      socket.on('data', (chunk) => (data += chunk.toString()));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
  }

  it('connects to the checked address when allowed and refuses otherwise', async () => {
    await withServer(async (port) => {
      const resolver = fixed({ address: '127.0.0.1', family: 4 });
      expect(await attempt(port, guardedLookup({ resolver, allow: { hosts: ['app.test'] } }))).toBe('hello');
      await expect(attempt(port, guardedLookup({ resolver }))).rejects.toBeInstanceOf(EgressRefusedError);
    });
  });
});
