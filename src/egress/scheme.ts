/**
 * Which URL schemes an untrusted destination may use: https always, plain http only for hosts the
 * operator listed (a local OpenAI-compatible server has no certificate, but a credential sent in
 * clear anywhere else could be read on the way). Checked when a destination is stored and again on
 * every call, so a host removed from the list stops being reachable at once.
 */
import { hostInList } from './resolve.js';

export function schemeAllowed(url: URL, plainHttpHosts: readonly string[]): boolean {
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && hostInList(url.hostname, plainHttpHosts);
}
