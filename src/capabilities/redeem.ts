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

/** The binding evidence a presenter brings: a container id from a trusted hop, a proof, or both. */
export interface PresentedEvidence {
  /** Container identity from the trusted hop, when the caller came through one. */
  containerId?: string | undefined;
  /** Proof-of-possession JWS, when presented. */
  proof?: string | undefined;
}

export interface RedeemRequest extends PresentedEvidence {
  method: string;
  /**
   * The upstream URL the request is for; classified by the route policy. The egress proxy only
   * knows it once the token is open (the origin of the grant its path names), so it may be given
   * as a function of the opened claims.
   */
  url: string | ((claims: CapabilityClaims) => string);
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

/** A refused redemption, with the error code and status it is answered with. */
export interface RedemptionRefused {
  ok: false;
  reason: RedeemRefusal;
  code: ErrorCode;
  status: number;
}

export type RedeemResult = { ok: true; claims: CapabilityClaims; grant: CapabilityGrant; routeClass: RouteClass; forwardPath: string; forwardQuery: string } | RedemptionRefused;

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

export function refuseRedemption(reason: RedeemRefusal): RedemptionRefused {
  const code = refusalCode(reason);
  return { ok: false, reason, code, status: statusOf(code) };
}

export type OpenedOrRefused = { ok: true; claims: CapabilityClaims } | { ok: false; reason: RedeemRefusal };

/**
 * Opens the token with each binding the presenter can evidence: a proof's key (read unverified
 * here: it only selects the associated data, and the signature is verified before anything is
 * admitted), then the container. Only an authentication failure tries the next binding.
 */
export async function openPresented(token: string, evidence: PresentedEvidence, keyring: CapabilityKeyring, now: number): Promise<OpenedOrRefused> {
  const candidates: CapabilityBinding[] = [];
  if (evidence.proof !== undefined && evidence.proof !== '') {
    const jkt = await proofThumbprint(evidence.proof);
    if (jkt === null) return { ok: false, reason: 'proof_malformed' };
    candidates.push({ type: 'pop', jkt });
  }
  if (evidence.containerId !== undefined && evidence.containerId !== '') {
    // The schema bounds container ids; anything longer cannot match and is not worth hashing.
    if (evidence.containerId.length > 128) return { ok: false, reason: 'invalid' };
    candidates.push({ type: 'container', containerId: evidence.containerId });
  }
  if (candidates.length === 0) return { ok: false, reason: 'binding_missing' };

  let lastRefusal: OpenRefusal = 'invalid';
  for (const binding of candidates) {
    const opened = openCapability(token, { keyring, binding, now });
    if (opened.ok) return opened;
    lastRefusal = opened.reason;
    // Only an authentication failure can depend on the binding; anything else is final.
    if (opened.reason !== 'invalid') break;
  }
  return { ok: false, reason: lastRefusal };
}

/**
 * What an opened token still has to pass before it is used: not revoked (failing closed when the
 * list cannot be read), and, when key-bound, a fresh proof over this request naming `proofUrl`.
 * Null when it passes.
 */
export async function holderRefusal(token: string, claims: CapabilityClaims, proof: { method: string; url: string | undefined; proof?: string | undefined; now: number }, deps: RedeemDeps): Promise<RedeemRefusal | null> {
  let revoked: boolean | 'unavailable';
  try {
    revoked = await deps.isRevoked(claims);
  } catch {
    revoked = 'unavailable';
  }
  if (revoked === 'unavailable') return 'revocation_unavailable';
  if (revoked) return 'revoked';

  if (claims.binding.type === 'pop') {
    if (proof.url === undefined) return 'proof_url_mismatch';
    const checked = await verifyProof({ proof: proof.proof, method: proof.method, url: proof.url, jkt: claims.binding.jkt, now: proof.now, accessToken: token }, deps.replay);
    if (!checked.ok) return checked.reason;
  }
  return null;
}

export async function redeemCapability(token: string, request: RedeemRequest, deps: RedeemDeps): Promise<RedeemResult> {
  const opened = await openPresented(token, request, deps.keyring, request.now);
  if (!opened.ok) return refuseRedemption(opened.reason);
  const { claims } = opened;

  const url = typeof request.url === 'string' ? request.url : request.url(claims);
  const route = classifyRoute(claims, request.method, url, request.grantName === undefined ? {} : { grantName: request.grantName });
  if (!route.ok) return refuseRedemption(route.reason);

  const refusal = await holderRefusal(token, claims, { method: request.method, url: request.proofUrl ?? url, proof: request.proof, now: request.now }, deps);
  if (refusal !== null) return refuseRedemption(refusal);

  return { ok: true, claims, grant: route.grant, routeClass: route.routeClass, forwardPath: route.forwardPath, forwardQuery: route.forwardQuery };
}
