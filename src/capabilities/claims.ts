/**
 * The claims a capability carries, and the one strict schema that decides whether decrypted bytes
 * are a capability at all. Unknown fields are refused at every level (`.strict()`), so a token
 * minted by a newer or foreign issuer can never be half-understood.
 */
import { z } from 'zod';

export const CAPABILITY_PURPOSE = 'capability';

/** Hard ceiling on a capability's lifetime; deployments may configure a lower one. */
export const MAX_CAPABILITY_LIFETIME_MS = 4 * 60 * 60 * 1000;

export const ROUTE_CLASSES = ['provider_model', 'org_models', 'backend_api', 'session_ingest'] as const;
export type RouteClass = (typeof ROUTE_CLASSES)[number];

export const GRANT_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type GrantMethod = (typeof GRANT_METHODS)[number];

const boundedId = z.string().min(1).max(128).regex(/^[A-Za-z0-9._:@-]+$/);

/**
 * An origin in its one canonical spelling: scheme, ASCII (punycode) lower-case host, explicit port
 * only when it is not the default. Comparing such strings is then enough to compare origins.
 * `http:` is representable because operators may list local development hosts; issuance decides
 * who may get one, the schema only insists on canonical form.
 */
export function isCanonicalOrigin(value: string): boolean {
  if (value.length > 300) return false;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return false;
  if (parsed.hostname.endsWith('.')) return false;
  return parsed.origin === value;
}

/**
 * Issuance rule for a grant target: a canonical origin, https only, except hosts the operator
 * lists for local development, which may also use http.
 */
export function isAllowedTargetOrigin(origin: string, options: { httpHosts?: readonly string[] } = {}): boolean {
  if (!isCanonicalOrigin(origin)) return false;
  const url = new URL(origin);
  if (url.protocol === 'https:') return true;
  return (options.httpHosts ?? []).some((host) => host.toLowerCase() === url.hostname);
}

/**
 * A path prefix is plain: no percent-encoding, no backslash, no dot or empty segments. Requests are
 * matched against it byte for byte, so a prefix must have exactly one spelling.
 */
export function isPlainPathPrefix(value: string): boolean {
  if (!/^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/.test(value)) return false;
  const segments = value.split('/').slice(1);
  // A trailing '/' leaves one empty last segment, which is fine; any other empty segment is not.
  return segments.every((segment, index) => {
    if (segment === '') return index === segments.length - 1;
    return segment !== '.' && segment !== '..';
  });
}

const credentialSchema = z
  .object({
    /** Reference to the secret in the credential store; never the secret itself. */
    ref: z.string().min(1).max(256),
    /** Header the credential is injected into, e.g. `authorization` or `x-api-key`. */
    header: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/),
    /** Optional scheme put before the value, e.g. `Bearer`. */
    scheme: z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,32}$/).optional(),
  })
  .strict();

export const grantSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/),
    origin: z.string().refine(isCanonicalOrigin, 'origin must be a canonical http(s) origin'),
    methods: z.array(z.enum(GRANT_METHODS)).min(1).max(GRANT_METHODS.length),
    pathPrefixes: z.array(z.string().max(1024).refine(isPlainPathPrefix, 'path prefix must be plain')).min(1).max(32),
    credential: credentialSchema,
    routeClass: z.enum(ROUTE_CLASSES),
  })
  .strict();

export type CapabilityGrant = z.infer<typeof grantSchema>;

export const bindingSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('container'), containerId: boundedId }).strict(),
  // RFC 7638 SHA-256 thumbprint, base64url without padding: exactly 43 characters.
  z.object({ type: z.literal('pop'), jkt: z.string().regex(/^[A-Za-z0-9_-]{43}$/) }).strict(),
]);

export type CapabilityBinding = z.infer<typeof bindingSchema>;

const epochMs = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const capabilityClaimsSchema = z
  .object({
    purpose: z.literal(CAPABILITY_PURPOSE),
    capabilityId: boundedId,
    userId: boundedId,
    orgId: boundedId,
    sessionId: boundedId,
    agentId: boundedId.optional(),
    binding: bindingSchema,
    grants: z.array(grantSchema).min(1).max(32),
    issuedAt: epochMs,
    expiresAt: epochMs,
  })
  .strict()
  .superRefine((claims, ctx) => {
    const names = new Set<string>();
    for (const grant of claims.grants) {
      if (names.has(grant.name)) ctx.addIssue({ code: 'custom', message: 'grant names must be unique' });
      names.add(grant.name);
      // A session-ingest grant is only meaningful for the bound session: each of its prefixes must
      // name that session as a whole segment, which is also how the route policy finds its shape.
      if (grant.routeClass === 'session_ingest') {
        for (const prefix of grant.pathPrefixes) {
          if (!prefix.split('/').includes(claims.sessionId)) {
            ctx.addIssue({ code: 'custom', message: 'session_ingest prefixes must contain the session id as a segment' });
          }
        }
      }
    }
  });

export type CapabilityClaims = z.infer<typeof capabilityClaimsSchema>;

export function sameBinding(a: CapabilityBinding, b: CapabilityBinding): boolean {
  if (a.type === 'container' && b.type === 'container') return a.containerId === b.containerId;
  if (a.type === 'pop' && b.type === 'pop') return a.jkt === b.jkt;
  return false;
}
