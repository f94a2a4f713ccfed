/**
 * Decides whether a capability allows one request, and which grant serves it. The URL is split
 * by hand rather than handed to a URL parser, because parsers normalise (dot segments,
 * backslashes, trailing dots) and we must classify the exact string we will forward.
 *
 * Order matters: authority first (so no grant is considered for a foreign host), then the path
 * safety checks, then session-scoped routes before any catch-all, so a broad backend grant on a
 * shared origin can never reach another session's routes.
 */
import { GRANT_METHODS, type CapabilityClaims, type CapabilityGrant, type GrantMethod, type RouteClass } from './claims.js';
import { checkAuthority, parseTargetOrigin, type AuthorityRefusal } from './host.js';
import { checkRequestPath, fullyDecodedPath, type PathRefusal } from './path.js';

export const MAX_URL_CHARS = 16_384;

export type RouteRefusal =
  | 'malformed_url'
  | 'url_too_long'
  | 'fragment'
  | 'bad_query'
  | 'unknown_grant'
  | 'method_not_allowed'
  | 'route_not_granted'
  | 'other_session'
  /** Only if the classifier itself failed; property tests assert it never happens. */
  | 'unclassifiable'
  | AuthorityRefusal
  | PathRefusal;

export type RouteDecision =
  | {
      ok: true;
      grant: CapabilityGrant;
      routeClass: RouteClass;
      /** The request path exactly as received and checked; forward it unchanged. */
      forwardPath: string;
      /** The raw query including its leading '?', or '' when there is none. */
      forwardQuery: string;
    }
  | { ok: false; reason: RouteRefusal };

export interface ClassifyOptions {
  /** Restrict to one named grant (the egress proxy's `/egress/{grant}/...`). */
  grantName?: string;
}

const URL_SHAPE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/s;
const RAW_QUERY = /^\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*$/;

export function classifyRoute(claims: CapabilityClaims, method: string, url: string, options: ClassifyOptions = {}): RouteDecision {
  try {
    return classify(claims, method, url, options);
  } catch {
    // The classifier is total by construction (property-tested); this is the last fail-closed net.
    return { ok: false, reason: 'unclassifiable' };
  }
}

function classify(claims: CapabilityClaims, method: string, url: string, options: ClassifyOptions): RouteDecision {
  if (typeof url !== 'string') return { ok: false, reason: 'malformed_url' };
  if (url.length > MAX_URL_CHARS) return { ok: false, reason: 'url_too_long' };
  if (!isGrantMethod(method)) return { ok: false, reason: 'method_not_allowed' };
  const match = URL_SHAPE.exec(url);
  if (match === null) return { ok: false, reason: 'malformed_url' };
  const [, scheme = '', authority = '', path = '', query = '', fragment] = match;
  if (fragment !== undefined) return { ok: false, reason: 'fragment' };
  if (query !== '' && !RAW_QUERY.test(query)) return { ok: false, reason: 'bad_query' };

  let grants = claims.grants;
  if (options.grantName !== undefined) {
    grants = grants.filter((grant) => grant.name === options.grantName);
    if (grants.length === 0) return { ok: false, reason: 'unknown_grant' };
  }

  // Grants whose target is the request's authority; the most telling refusal wins otherwise.
  const onOrigin: CapabilityGrant[] = [];
  let authorityRefusal: AuthorityRefusal = 'host_mismatch';
  for (const grant of grants) {
    const target = parseTargetOrigin(grant.origin);
    if (target === null) continue;
    const check = checkAuthority(scheme, authority, target);
    if (check.ok) onOrigin.push(grant);
    else if (authorityRank(check.reason) > authorityRank(authorityRefusal)) authorityRefusal = check.reason;
  }
  if (onOrigin.length === 0) return { ok: false, reason: authorityRefusal };

  const pathCheck = checkRequestPath(path);
  if (!pathCheck.ok) return { ok: false, reason: pathCheck.reason };

  // Session routes are recognised from the shape of every session-ingest grant on this origin,
  // including ones excluded by `grantName`, so naming the catch-all grant cannot dodge the check.
  const sessionGrantsHere = claims.grants.filter(
    (grant) => grant.routeClass === 'session_ingest' && onOrigin.some((other) => other.origin === grant.origin),
  );
  if (namesAnotherSession(fullyDecodedPath(path), sessionGrantsHere, claims.sessionId)) {
    return { ok: false, reason: 'other_session' };
  }

  const matching = onOrigin
    .map((grant) => ({ grant, length: longestMatchingPrefix(grant, path) }))
    .filter((candidate) => candidate.length >= 0)
    .sort((a, b) => sessionFirst(a.grant, b.grant) || b.length - a.length);
  if (matching.length === 0) return { ok: false, reason: 'route_not_granted' };
  const chosen = matching.find((candidate) => candidate.grant.methods.includes(method));
  if (chosen === undefined) return { ok: false, reason: 'method_not_allowed' };
  return { ok: true, grant: chosen.grant, routeClass: chosen.grant.routeClass, forwardPath: path, forwardQuery: query };
}

function isGrantMethod(method: unknown): method is GrantMethod {
  return typeof method === 'string' && (GRANT_METHODS as readonly string[]).includes(method);
}

function authorityRank(reason: AuthorityRefusal): number {
  // Target-independent problems first: they are true whatever grant is asked.
  const order: AuthorityRefusal[] = ['host_mismatch', 'scheme_mismatch', 'port_mismatch', 'bad_host', 'userinfo'];
  return order.indexOf(reason);
}

function sessionFirst(a: CapabilityGrant, b: CapabilityGrant): number {
  return Number(b.routeClass === 'session_ingest') - Number(a.routeClass === 'session_ingest');
}

/** Length of the longest prefix of `grant` that `path` falls under, or -1. Matches whole segments. */
function longestMatchingPrefix(grant: CapabilityGrant, path: string): number {
  let best = -1;
  for (const prefix of grant.pathPrefixes) {
    const under = prefix.endsWith('/') ? path.startsWith(prefix) : path === prefix || path.startsWith(`${prefix}/`);
    if (under && prefix.length > best) best = prefix.length;
  }
  return best;
}

/**
 * A session-ingest prefix such as `/api/sessions/<bound>/events` defines a session route shape
 * `/api/sessions/*`. A request whose decoded path has that shape with any session other than the
 * bound one is refused outright. Literal segments compare case-insensitively on the decoded path,
 * so encoding or case tricks that an upstream would undo only widen what is refused.
 */
function namesAnotherSession(decodedPath: string, sessionGrants: CapabilityGrant[], sessionId: string): boolean {
  const requestSegments = decodedPath.split('/').slice(1);
  for (const grant of sessionGrants) {
    for (const prefix of grant.pathPrefixes) {
      const prefixSegments = prefix.split('/').slice(1);
      const at = prefixSegments.indexOf(sessionId);
      if (at < 0 || requestSegments.length <= at) continue;
      const sameShape = prefixSegments
        .slice(0, at)
        .every((segment, index) => segment.toLowerCase() === (requestSegments[index] ?? '').toLowerCase());
      if (sameShape && requestSegments[at] !== sessionId) return true;
    }
  }
  return false;
}
