import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { classifyIp, parseIpLiteral } from './address.js';

/** What the WHATWG URL parser makes of a host, for the "parsed form" half of each case. */
function parsedHost(host: string): string {
  return new URL(`http://${host}/`).hostname;
}

describe('address classification', () => {
  it.each([
    ['2130706433', 'loopback'],
    ['0x7f.1', 'loopback'],
    ['0177.0.0.1', 'loopback'],
    ['0x7f000001', 'loopback'],
    ['127.1', 'loopback'],
    ['127.0.0.1.', 'loopback'],
    ['[::ffff:a9fe:a9fe]', 'metadata'],
    ['[::ffff:169.254.169.254]', 'metadata'],
    ['[::]', 'unspecified'],
    ['0.0.0.0', 'unspecified'],
    ['0', 'unspecified'],
    ['169.254.169.254', 'metadata'],
    ['0xa9fea9fe', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['[fd00:ec2::254]', 'metadata'],
    ['169.254.1.1', 'link_local'],
    ['[fe80::1]', 'link_local'],
    ['10.1.2.3', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.0.1', 'private'],
    ['100.64.0.1', 'private'],
    ['[fd12:3456::1]', 'private'],
    ['[::1]', 'loopback'],
    ['[::ffff:7f00:1]', 'loopback'],
    ['[64:ff9b::7f00:1]', 'loopback'],
    ['[::ffff:0:7f00:1]', 'loopback'],
    ['[2002:7f00:1::]', 'reserved'],
    ['[2001:db8::1]', 'reserved'],
    ['[::127.0.0.1]', 'reserved'],
    ['[ff02::1]', 'reserved'],
    ['224.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.10', 'reserved'],
    ['8.8.8.8', 'public'],
    ['172.32.0.1', 'public'],
    ['[2606:4700:4700::1111]', 'public'],
    ['[::ffff:8.8.8.8]', 'public'],
  ])('%s is %s in raw and URL-parsed form', (host, cls) => {
    expect(classifyIp(host)).toBe(cls);
    expect(classifyIp(parsedHost(host))).toBe(cls);
  });

  it('canonicalises numeric spellings the way the URL parser does', () => {
    for (const host of ['2130706433', '0x7f.1', '0177.0.0.1', '1.2.3', '0x1.0x2.3.4', '[::ffff:a9fe:a9fe]', '[0:0::1]']) {
      const literal = parseIpLiteral(host);
      const parsed = parsedHost(host);
      expect(literal?.text).toBe(parsed.startsWith('[') ? parsed.slice(1, -1) : parsed);
    }
  });

  it('returns null for names and invalid literals', () => {
    for (const host of ['example.com', 'localhost', '1.2.3.256', '08.1.1.1', '4294967296', '1.2.3.4.5', '[1::2::3]', '[::1%eth0]', '[1:2:3:4:5:6:7:8:9]', '']) {
      expect(classifyIp(host)).toBeNull();
    }
  });

  it('property: agrees with the URL parser on every IPv4 number spelling', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(10, 16, 8), (value, radix) => {
        const spelled = radix === 16 ? `0x${value.toString(16)}` : radix === 8 ? `0${value.toString(8)}` : String(value);
        expect(parseIpLiteral(spelled)?.text).toBe(parsedHost(spelled));
      }),
    );
  });
});
