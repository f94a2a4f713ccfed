/**
 * The redemption decision: may this token, presented with this binding evidence, make this
 * request? Pure apart from the two injected stores (revocation, proof replay), shared by the
 * egress proxy, the model gateway and the redeem service route so all three decide identically.
 *
 * Order: open (binding is part of the associated data, so a token from another container or key
 * fails here), classify the route (pure), check revocation (fail closed), and only then verify
 * the proof, so a refused request never burns a proof id.
 */
import type { ErrorCode } from '../core/errors.js';
import { statusOf } from '../core/errors.js';
import type { CapabilityBinding, CapabilityClaims, CapabilityGrant, RouteClass } from './claims.js';
import { openCapability, type OpenRefusal } from './codec.js';
import type { CapabilityKeyring } from './keyring.js';
import { proofThumbprint, verifyProof, type ProofRefusal, type ReplayStore } from './pop.js';
import { classifyRoute, type RouteRefusal } from './route-policy.js';

export interface RedeemRequest {
  method: string;
  /** The upstream URL the request is for; classified by the route policy. */
  url: string;
  /** Container identity from the trusted hop, when the caller came through one. */
  containerId?: string;
  /** Proof-of-possession JWS, when presented. */
  proof?: string;
  /** The URL the proof must name when it differs from `url` (e.g. the gateway's own egress URL). */
  proofUrl?: string;
  /** Restrict to one named grant (the egress proxy's path names it). */
  grantName?: string;
  now: number;
}

export interface RedeemDeps {
  keyring: CapabilityKeyring;
  /** true when revoked by capability, session or container; 'unavailable' when the list cannot be read. */
  isRevoked(claims: CapabilityClaims): Promise<boolean | 'unavailable'>;
  replay: ReplayStore;
}

export type RedeemRefusal = OpenRefusal | RouteRefusal | ProofRefusal | 'binding_missing' | 'revoked' | 'revocation_unavailable';

export type RedeemResult =
  | { ok: true; claims: CapabilityClaims; grant: CapabilityGrant; routeClass: RouteClass; forwardPath: string; forwardQuery: string }
  | { ok: false; reason: RedeemRefusal; code: ErrorCode; status: number };

export function refusalCode(reason: RedeemRefusal): ErrorCode {
  switch (reason) {
    case 'expired':
      return 'capability_expired';
    case 'revoked':
      return 'capability_revoked';
    case 'revocation_unavailable':
    case 'replay_unavailable':
      return 'dependency_unavailable';
    case 'malformed':
    case 'too_large':
    case 'unknown_key':
    case 'retired_key':
    case 'invalid':
    case 'not_yet_valid':
    case 'wrong_purpose':
    case 'lifetime_exceeded':
      return 'capability_invalid';
    case 'binding_missing':
    case 'proof_missing':
    case 'proof_malformed':
    case 'proof_invalid':
    case 'proof_key_mismatch':
    case 'proof_method_mismatch':
    case 'proof_url_mismatch':
    case 'proof_token_mismatch':
    case 'proof_stale':
    case 'proof_replayed':
      return 'capability_binding_failed';
    default:
      return 'route_refused';
  }
}

function refuse(reason: RedeemRefusal): RedeemResult {
  const code = refusalCode(reason);
  return { ok: false, reason, code, status: statusOf(code) };
}

export async function redeemCapability(token: string, request: RedeemRequest, deps: RedeemDeps): Promise<RedeemResult> {
  // The bindings the presenter can evidence. A proof's key is read unverified here: it only
  // selects the associated data, and the signature is verified before the request is admitted.
  const candidates: CapabilityBinding[] = [];
  if (request.proof !== undefined && request.proof !== '') {
    const jkt = await proofThumbprint(request.proof);
    if (jkt === null) return refuse('proof_malformed');
    candidates.push({ type: 'pop', jkt });
  }
  if (request.containerId !== undefined && request.containerId !== '') {
    // The schema bounds container ids; anything longer cannot match and is not worth hashing.
    if (request.containerId.length > 128) return refuse('invalid');
    candidates.push({ type: 'container', containerId: request.containerId });
  }
  if (candidates.length === 0) return refuse('binding_missing');

  let claims: CapabilityClaims | undefined;
  let lastRefusal: OpenRefusal = 'invalid';
  for (const binding of candidates) {
    const opened = openCapability(token, { keyring: deps.keyring, binding, now: request.now });
    if (opened.ok) {
      claims = opened.claims;
      break;
    }
    lastRefusal = opened.reason;
    // Only an authentication failure can depend on the binding; anything else is final.
    if (opened.reason !== 'invalid') break;
  }
  if (claims === undefined) return refuse(lastRefusal);

  const route = classifyRoute(claims, request.method, request.url, request.grantName === undefined ? {} : { grantName: request.grantName });
  if (!route.ok) return refuse(route.reason);

  let revoked: boolean | 'unavailable';
  try {
    revoked = await deps.isRevoked(claims);
  } catch {
    revoked = 'unavailable';
  }
  if (revoked === 'unavailable') return refuse('revocation_unavailable');
  if (revoked) return refuse('revoked');

  if (claims.binding.type === 'pop') {
    const proof = await verifyProof(
      { proof: request.proof, method: request.method, url: request.proofUrl ?? request.url, jkt: claims.binding.jkt, now: request.now, accessToken: token },
      deps.replay,
    );
    if (!proof.ok) return refuse(proof.reason);
  }

  return { ok: true, claims, grant: route.grant, routeClass: route.routeClass, forwardPath: route.forwardPath, forwardQuery: route.forwardQuery };
}
