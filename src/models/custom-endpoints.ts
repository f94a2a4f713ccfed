/**
 * Org-supplied OpenAI-compatible endpoints are untrusted URLs: before one is stored (and again on
 * every connection, by the egress agent) its host is resolved and every answer checked. Loopback
 * and private answers are refused unless the operator allowed them; link-local and cloud metadata
 * never pass. Numeric host spellings (`0x7f.1`, `[::ffff:a9fe:a9fe]`) are normalised by the URL
 * parser first, so they are judged as the address they really are.
 */
import { resolveForConnect, schemeAllowed, systemResolver, type Resolver } from '../egress/index.js';

export type EndpointCheck =
  | { ok: true; url: string }
  | { ok: false; reason: 'invalid_url' | 'scheme' | 'credentials_in_url' | 'query_or_fragment' | 'address_refused' | 'resolution_failed' };

/** Long enough for any real base URL; bounds what an org can make us parse and store. */
const MAX_URL_LENGTH = 2048;

export async function checkCustomEndpoint(
  raw: string,
  options: { allowLoopback: boolean; allowPrivate: boolean; allowHttpHosts?: readonly string[]; resolver?: Resolver },
): Promise<EndpointCheck> {
  if (raw.length > MAX_URL_LENGTH) return { ok: false, reason: 'invalid_url' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'invalid_url' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { ok: false, reason: 'scheme' };
  if (url.username !== '' || url.password !== '') return { ok: false, reason: 'credentials_in_url' };
  // A base URL has paths appended to it; a query or fragment would end up in the wrong place.
  if (url.search !== '' || url.hash !== '' || raw.includes('?') || raw.includes('#')) return { ok: false, reason: 'query_or_fragment' };
  const target = await resolveForConnect(url.hostname, {
    resolver: options.resolver ?? systemResolver,
    allow: { loopback: options.allowLoopback, private: options.allowPrivate },
    timeoutMs: 5000,
  });
  if (!target.ok) return { ok: false, reason: target.reason === 'address_refused' ? 'address_refused' : 'resolution_failed' };
  // Plain http only to hosts the operator listed (local servers); the org's key travels in it.
  // Judged after the address so a refused target is reported as such whatever its scheme.
  if (!schemeAllowed(url, options.allowHttpHosts ?? [])) return { ok: false, reason: 'scheme' };
  return { ok: true, url: url.toString().replace(/\/+$/, '') };
}
