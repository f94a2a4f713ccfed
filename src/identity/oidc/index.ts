/** OIDC bearer tokens: issuer configuration and verification. What other folders may use. */
export { ASYMMETRIC_ALGORITHMS, oidcIssuerSchema, parseOidcIssuers, type AsymmetricAlgorithm, type OidcIssuerConfig, type OidcIssuerInput } from './config.js';
export { MAX_OIDC_TOKEN_LENGTH, OidcVerifier, looksLikeJwt, mapClaims, type OidcFailureCode, type OidcIdentity, type OidcVerifierOptions, type OidcVerifyResult } from './verifier.js';
