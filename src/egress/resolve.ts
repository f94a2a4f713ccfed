/**
 * Resolve once, check every answer, connect to exactly what was checked. Resolving again at
 * connect time would let a DNS answer change in between (rebinding), so the caller gets one
 * address and must connect to it, never to the name. `guardedLookup` plugs the same decision into
 * `net.connect`/`tls.connect` (and so into undici) for code that cannot pass an address.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress } from 'node:dns';
import { domainToASCII } from 'node:url';
import { withTimeout } from '../core/timeout.js';
import { classifyAddress, looksNumeric, parseIpLiteral, type AddressClass } from './address.js';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Injectable so tests (and a future DNS cache) control the answers. */
export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) => {
  const answers = await dnsLookup(hostname, { all: true, verbatim: true });
  return answers.map((answer) => ({ address: answer.address, family: answer.family === 6 ? 6 : 4 }));
};

export interface EgressAllow {
  /** Permit loopback addresses for every host (local development only). */
  loopback?: boolean;
  /** Permit private (RFC 1918, CGNAT, ULA) addresses for every host. */
  private?: boolean;
  /** Hosts that may resolve to loopback or private addresses. Never widens to metadata or link-local. */
  hosts?: readonly string[];
}

export interface ResolveOptions {
  resolver: Resolver;
  allow?: EgressAllow;
  /** Upper bound on the resolver's wait. */
  timeoutMs?: number;
}

export type ResolveRefusal = 'invalid_host' | 'resolution_failed' | 'no_addresses' | 'address_refused';

export type ConnectTarget =
  | { ok: true; address: string; family: 4 | 6; addressClass: AddressClass }
  | { ok: false; reason: ResolveRefusal; addressClass?: AddressClass };

const MAX_ANSWERS = 64;

/** Lower-case ASCII form of a host name for comparison; one trailing dot is the same DNS name. */
function canonicalName(host: string): string | null {
  const stripped = host.endsWith('.') ? host.slice(0, -1) : host;
  if (stripped === '' || stripped.length > 253 || /[\s/\\@%?#]/.test(stripped)) return null;
  const ascii = domainToASCII(stripped);
  return ascii === '' ? null : ascii.toLowerCase();
}

function isPermitted(cls: AddressClass, listed: boolean, allow: EgressAllow): boolean {
  switch (cls) {
    case 'public':
      return true;
    case 'loopback':
      return allow.loopback === true || listed;
    case 'private':
      return allow.private === true || listed;
    default:
      // link-local, metadata, unspecified and reserved are never reachable, whatever the config.
      return false;
  }
}

/** Is `host` one of `hosts`? Names compare case-insensitively as DNS names, IPv6 literals with or without brackets. */
export function hostInList(host: string, hosts: readonly string[] | undefined): boolean {
  const name = host.startsWith('[') ? host.slice(1, -1).toLowerCase() : canonicalName(host);
  if (name === null || hosts === undefined) return false;
  return hosts.some((entry) => (entry.startsWith('[') ? entry.slice(1, -1).toLowerCase() : canonicalName(entry)) === name);
}

export async function resolveForConnect(host: string, options: ResolveOptions): Promise<ConnectTarget> {
  const allow = options.allow ?? {};
  if (typeof host !== 'string' || host.length === 0 || host.length > 255) return { ok: false, reason: 'invalid_host' };
  const listed = hostInList(host, allow.hosts);

  const literal = parseIpLiteral(host);
  if (literal !== null) {
    const addressClass = classifyAddress(literal);
    if (!isPermitted(addressClass, listed, allow)) return { ok: false, reason: 'address_refused', addressClass };
    return { ok: true, address: literal.text, family: literal.family, addressClass };
  }
  // Numeric-looking but invalid (`1.2.3.256`, `08.1.1.1`) or bracketed non-IPv6: never a name.
  if (host.startsWith('[') || host.includes(':') || looksNumeric(host)) return { ok: false, reason: 'invalid_host' };
  const name = canonicalName(host);
  if (name === null) return { ok: false, reason: 'invalid_host' };

  let answers: readonly ResolvedAddress[];
  try {
    answers = await withTimeout(options.resolver(name), options.timeoutMs ?? 5000, () => new Error('resolver timed out'));
  } catch {
    return { ok: false, reason: 'resolution_failed' };
  }
  if (answers.length === 0) return { ok: false, reason: 'no_addresses' };
  if (answers.length > MAX_ANSWERS) return { ok: false, reason: 'resolution_failed' };

  // Every answer must pass: a name that is partly internal is refused as a whole.
  let chosen: ConnectTarget | undefined;
  for (const answer of answers) {
    const parsed = typeof answer.address === 'string' ? parseIpLiteral(answer.address) : null;
    if (parsed === null || parsed.family !== answer.family) return { ok: false, reason: 'address_refused', addressClass: 'reserved' };
    const addressClass = classifyAddress(parsed);
    if (!isPermitted(addressClass, listed, allow)) return { ok: false, reason: 'address_refused', addressClass };
    chosen ??= { ok: true, address: parsed.text, family: parsed.family, addressClass };
  }
  return chosen ?? { ok: false, reason: 'no_addresses' };
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A refusal surfaced through the socket's `lookup` hook; carries no host secrets, only the reason. */
export class EgressRefusedError extends Error {
  override readonly name = 'EgressRefusedError';
  readonly code = 'EGRESS_REFUSED';
  constructor(readonly reason: ResolveRefusal, readonly addressClass?: AddressClass) {
    super(`egress refused: ${reason}${addressClass === undefined ? '' : ` (${addressClass})`}`);
  }
}

/**
 * A `lookup` for `net.connect`/`tls.connect` (e.g. undici `connect: { lookup }`) that applies
 * `resolveForConnect` and hands the socket the one checked address. Node may ask for all
 * addresses (happy eyeballs); it then gets a list of exactly that one.
 */
export function guardedLookup(options: ResolveOptions) {
  return (hostname: string, lookupOptions: { all?: boolean } | number | undefined, callback: LookupCallback): void => {
    const wantsAll = typeof lookupOptions === 'object' && lookupOptions.all === true;
    resolveForConnect(hostname, options).then(
      (target) => {
        if (!target.ok) {
          callback(new EgressRefusedError(target.reason, target.addressClass), wantsAll ? [] : '');
          return;
        }
        if (wantsAll) callback(null, [{ address: target.address, family: target.family }]);
        else callback(null, target.address, target.family);
      },
      () => callback(new EgressRefusedError('resolution_failed'), wantsAll ? [] : ''),
    );
  };
}
