/**
 * IP address parsing and classification for outbound connections. Every spelling a URL parser or
 * `inet_aton` would accept is understood here (`2130706433`, `0x7f.1`, `0177.0.0.1`,
 * `[::ffff:a9fe:a9fe]`), so a host that looks like a name to one layer cannot be a loopback or
 * metadata address to another. Unknown or unusual ranges are `reserved` and refused: anything not
 * positively known to be public is treated as not public.
 */

export type AddressClass = 'public' | 'loopback' | 'private' | 'link_local' | 'metadata' | 'unspecified' | 'reserved';

export interface IpAddress {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
  /** Canonical text: dotted quad, or compressed lower-case IPv6 without brackets. */
  text: string;
}

/** Does the host "end in a number", so that a WHATWG URL parser would read it as IPv4? */
export function looksNumeric(host: string): boolean {
  const labels = host.split('.');
  if (labels.length > 1 && labels.at(-1) === '') labels.pop();
  const last = labels.at(-1) ?? '';
  return /^[0-9]+$/.test(last) || /^0[xX][0-9A-Fa-f]*$/.test(last);
}

/** IPv4 as the WHATWG URL standard (and inet_aton) reads it: 1-4 parts, hex/octal/decimal. */
export function parseIPv4(host: string): Uint8Array | null {
  if (host.length > 64) return null;
  const parts = host.split('.');
  if (parts.length > 1 && parts.at(-1) === '') parts.pop();
  if (parts.length === 0 || parts.length > 4) return null;
  const numbers: number[] = [];
  for (const part of parts) {
    const value = parseIPv4Part(part);
    if (value === null) return null;
    numbers.push(value);
  }
  const last = numbers.pop() ?? 0;
  if (numbers.some((n) => n > 255)) return null;
  if (last >= 256 ** (4 - numbers.length)) return null;
  let value = last;
  numbers.forEach((n, index) => {
    value += n * 256 ** (3 - index);
  });
  return new Uint8Array([(value >>> 24) & 255, (value >>> 16) & 255, (value >>> 8) & 255, value & 255]);
}

function parseIPv4Part(part: string): number | null {
  if (part === '' || part.length > 34) return null;
  if (/^0[xX][0-9A-Fa-f]*$/.test(part)) return part.length === 2 ? 0 : Number.parseInt(part.slice(2), 16);
  if (/^0[0-7]+$/.test(part)) return Number.parseInt(part.slice(1), 8);
  if (/^(0|[1-9][0-9]*)$/.test(part)) return Number.parseInt(part, 10);
  return null;
}

/** Strict dotted-decimal IPv4, as allowed inside an IPv6 literal. */
function parseDottedQuad(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

/** IPv6 text without brackets and without a zone id. */
export function parseIPv6(text: string): Uint8Array | null {
  if (text.length === 0 || text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const toGroups = (half: string): number[] | null => {
    if (half === '') return [];
    const pieces = half.split(':');
    const groups: number[] = [];
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i] ?? '';
      if (piece.includes('.')) {
        // Only the very last piece of the address may be a dotted quad.
        if (i !== pieces.length - 1) return null;
        const quad = parseDottedQuad(piece);
        if (quad === null) return null;
        groups.push(((quad[0] ?? 0) << 8) | (quad[1] ?? 0), ((quad[2] ?? 0) << 8) | (quad[3] ?? 0));
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(piece)) return null;
        groups.push(Number.parseInt(piece, 16));
      }
    }
    return groups;
  };
  const head = toGroups(halves[0] ?? '');
  const tail = halves.length === 2 ? toGroups(halves[1] ?? '') : [];
  if (head === null || tail === null) return null;
  if (halves.length === 2 && (halves[0] ?? '').includes('.')) return null;
  const present = head.length + tail.length;
  if (halves.length === 1 ? present !== 8 : present > 7) return null;
  const groups = [...head, ...new Array<number>(8 - present).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  groups.forEach((group, index) => {
    bytes[index * 2] = group >> 8;
    bytes[index * 2 + 1] = group & 255;
  });
  return bytes;
}

/**
 * Parses a host that is an IP literal in any accepted spelling: `[v6]`, bare v6, or IPv4 in any
 * numeric form. Returns null for names, and also for numeric-looking hosts that are invalid
 * (callers must refuse those rather than resolve them).
 */
export function parseIpLiteral(host: string): IpAddress | null {
  const inner = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (inner.includes(':')) {
    const bytes = parseIPv6(inner);
    return bytes === null ? null : { family: 6, bytes, text: formatIPv6(bytes) };
  }
  if (inner !== host) return null;
  if (!looksNumeric(inner)) return null;
  const bytes = parseIPv4(inner);
  return bytes === null ? null : { family: 4, bytes, text: Array.from(bytes).join('.') };
}

function formatIPv6(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  // The URL parser applies the RFC 5952 compression rules for us.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

type Range = readonly [prefix: readonly number[], bits: number, cls: AddressClass];

// Most specific first; the first match decides.
const IPV4_RANGES: readonly Range[] = [
  [[169, 254, 169, 254], 32, 'metadata'], // AWS, GCP, Azure, OCI instance metadata
  [[100, 100, 100, 200], 32, 'metadata'], // Alibaba Cloud metadata
  [[168, 63, 129, 16], 32, 'metadata'], // Azure wire server
  [[0, 0, 0, 0], 32, 'unspecified'],
  [[0, 0, 0, 0], 8, 'reserved'],
  [[127, 0, 0, 0], 8, 'loopback'],
  [[10, 0, 0, 0], 8, 'private'],
  [[172, 16, 0, 0], 12, 'private'],
  [[192, 168, 0, 0], 16, 'private'],
  [[100, 64, 0, 0], 10, 'private'], // carrier-grade NAT
  [[169, 254, 0, 0], 16, 'link_local'],
  [[192, 0, 0, 0], 24, 'reserved'],
  [[192, 0, 2, 0], 24, 'reserved'],
  [[192, 88, 99, 0], 24, 'reserved'],
  [[198, 18, 0, 0], 15, 'reserved'],
  [[198, 51, 100, 0], 24, 'reserved'],
  [[203, 0, 113, 0], 24, 'reserved'],
  [[224, 0, 0, 0], 4, 'reserved'], // multicast
  [[240, 0, 0, 0], 4, 'reserved'], // future use and broadcast
];

const IPV6_RANGES: readonly Range[] = [
  [[0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54], 128, 'metadata'], // AWS IMDS over IPv6
  [[], 128, 'unspecified'],
  [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 128, 'loopback'],
  [[0xfe, 0x80], 10, 'link_local'],
  [[0xfc], 7, 'private'], // unique local
  [[0xfe, 0xc0], 10, 'private'], // deprecated site-local
  [[0xff], 8, 'reserved'], // multicast
  [[0x20, 0x01, 0x0d, 0xb8], 32, 'reserved'], // documentation
  [[0x20, 0x01, 0x00, 0x00], 23, 'reserved'], // IETF protocol assignments, Teredo
  [[0x20, 0x02], 16, 'reserved'], // 6to4 can wrap any IPv4 address
  [[0x3f, 0xff], 20, 'reserved'], // documentation
  [[0x20], 3, 'public'], // global unicast; everything else falls through to reserved
];

function inRange(bytes: Uint8Array, prefix: readonly number[], bits: number): boolean {
  for (let bit = 0; bit < bits; bit++) {
    const index = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if (((bytes[index] ?? 0) & mask) !== ((prefix[index] ?? 0) & mask)) return false;
  }
  return true;
}

function classifyIPv4(bytes: Uint8Array): AddressClass {
  for (const [prefix, bits, cls] of IPV4_RANGES) if (inRange(bytes, prefix, bits)) return cls;
  return 'public';
}

/** IPv6 ranges that carry an IPv4 address in their last 32 bits and are routed as that address. */
const EMBEDDED_IPV4: readonly (readonly [readonly number[], number])[] = [
  [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff], 96], // IPv4-mapped ::ffff:a.b.c.d
  [[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0], 96], // IPv4-translated ::ffff:0:a.b.c.d
  [[0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0], 96], // NAT64 64:ff9b::/96
];

export function classifyAddress(address: IpAddress): AddressClass {
  const { bytes } = address;
  if (address.family === 4) return classifyIPv4(bytes);
  for (const [prefix, bits] of EMBEDDED_IPV4) if (inRange(bytes, prefix, bits)) return classifyIPv4(bytes.subarray(12));
  for (const [prefix, bits, cls] of IPV6_RANGES) if (inRange(bytes, prefix, bits)) return cls;
  return 'reserved';
}

/** Classifies an IP literal in any spelling; null when `host` is not an IP literal. */
export function classifyIp(host: string): AddressClass | null {
  const parsed = parseIpLiteral(host);
  return parsed === null ? null : classifyAddress(parsed);
}
