/** What other folders may use from the capability core. Issuing and HTTP routes live elsewhere. */
export {
  CAPABILITY_PURPOSE,
  MAX_CAPABILITY_LIFETIME_MS,
  ROUTE_CLASSES,
  GRANT_METHODS,
  capabilityClaimsSchema,
  grantSchema,
  bindingSchema,
  isCanonicalOrigin,
  isAllowedTargetOrigin,
  isPlainPathPrefix,
  type CapabilityClaims,
  type CapabilityGrant,
  type CapabilityBinding,
  type RouteClass,
  type GrantMethod,
} from './claims.js';
export { CAPABILITY_PREFIX, MAX_TOKEN_CHARS, sealCapability, openCapability, type OpenContext, type OpenRefusal, type OpenResult } from './codec.js';
export { CapabilityKeyring, CapabilityKeyringError, type CapabilityKeyInput, type KeyringOptions } from './keyring.js';
export { classifyRoute, type ClassifyOptions, type RouteDecision, type RouteRefusal } from './route-policy.js';
export { checkRequestPath, type PathRefusal } from './path.js';
export { verifyProof, proofThumbprint, PROOF_ALGORITHMS, type ProofInput, type ProofCheck, type ProofRefusal, type ReplayStore } from './pop.js';
export { redeemCapability, refusalCode, type RedeemRequest, type RedeemDeps, type RedeemResult, type RedeemRefusal } from './redeem.js';
