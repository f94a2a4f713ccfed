/**
 * Authority (host and port) checks for egress requests. The raw authority is inspected before
 * any URL parser can reinterpret it: a WHATWG parser reads `evil.test\@target` as host
 * `evil.test`, and turns `target.` into a different string from `target`. We refuse those
 * spellings instead of normalising them.
 */
import { domainToASCII } from 'node:url';

export type AuthorityRefusal = 'userinfo' | 'bad_host' | 'host_mismatch' | 'port_mismatch' | 'scheme_mismatch';

export interface TargetOrigin {
  protocol: 'https:' | 'http:';
  /** ASCII, lower-case host as in the canonical origin (IPv6 in brackets). */
  host: string;
  port: number;
}

export function parseTargetOrigin(origin: string): TargetOrigin | null {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  const port = url.port === '' ? defaultPort(url.protocol) : Number(url.port);
  return { protocol: url.protocol, host: url.hostname, port };
}

function defaultPort(protocol: 'https:' | 'http:'): number {
  return protocol === 'https:' ? 443 : 80;
}

/** Normalises a raw host for comparison, or null when it is not an acceptable spelling. */
export function normaliseHost(raw: string): string | null {
  if (raw.length === 0 || raw.length > 253) return null;
  if (raw.startsWith('[')) {
    // IPv6 literals: hex, ':' and '.' only (no zone ids); the URL parser canonicalises them.
    if (!/^\[[0-9A-Fa-f:.]+\]$/.test(raw)) return null;
    try {
      return new URL(`https://${raw}/`).hostname;
    } catch {
      return null;
    }
  }
  // Anything that could change the meaning of an authority, and percent-escapes, are refused.
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (/[\u0000-\u0020\u007f@\\/%?#[\]:]/.test(raw)) return null;
  // A trailing dot names the same host on the wire but another string here: refuse, do not strip.
  if (raw.endsWith('.') || raw.includes('..')) return null;
  const ascii = domainToASCII(raw.normalize('NFC'));
  if (ascii === '') return null;
  return ascii.toLowerCase();
}

export type AuthorityCheck = { ok: true } | { ok: false; reason: AuthorityRefusal };

/** Compares a raw request authority (`host[:port]`) and scheme with the grant's target. */
export function checkAuthority(scheme: string, authority: string, target: TargetOrigin): AuthorityCheck {
  if (`${scheme.toLowerCase()}:` !== target.protocol) return { ok: false, reason: 'scheme_mismatch' };
  if (authority.includes('@')) return { ok: false, reason: 'userinfo' };
  const split = splitHostPort(authority);
  if (split === null) return { ok: false, reason: 'bad_host' };
  const host = normaliseHost(split.host);
  if (host === null) return { ok: false, reason: 'bad_host' };
  if (host !== target.host) return { ok: false, reason: 'host_mismatch' };
  const port = split.port ?? target.port;
  if (split.port === undefined && target.port !== defaultPort(target.protocol)) return { ok: false, reason: 'port_mismatch' };
  if (port !== target.port) return { ok: false, reason: 'port_mismatch' };
  return { ok: true };
}

function splitHostPort(authority: string): { host: string; port?: number } | null {
  const match = /^(\[[^\]]*\]|[^:]*)(?::([0-9]*))?$/.exec(authority);
  if (match === null) return null;
  const host = match[1] ?? '';
  const portText = match[2];
  if (portText === undefined) return { host };
  // One spelling per port: no empty port, no leading zeros, in range.
  if (!/^[1-9][0-9]{0,4}$/.test(portText)) return null;
  const port = Number(portText);
  if (port > 65535) return null;
  return { host, port };
}
