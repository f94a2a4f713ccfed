/** API keys: format, minting and hot-path verification. What other folders may use. */
export {
  API_KEY_PREFIX,
  API_KEY_TYP,
  MAX_API_KEY_LENGTH,
  apiKeyClaimsSchema,
  looksLikeApiKey,
  type ApiKeyClaims,
  type ApiKeyFailureCode,
  type ApiKeyVerifyResult,
} from './format.js';
export { ApiKeySigner, DEFAULT_KEY_TTL_MS, type ApiKeySignerOptions, type SignKeyInput } from './signer.js';
export { ApiKeyVerifier, type ApiKeyVerifierOptions } from './verifier.js';
export { createKeyVerifierBench, type KeyVerifierBench } from './bench.js';
