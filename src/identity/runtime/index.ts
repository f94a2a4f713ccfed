export {
  RuntimeCredentialProvider,
  DEFAULT_MINT_TIMEOUT_MS,
  parseExpiry,
  type RuntimeCredentialMinter,
  type MintedCredential,
  type StoredCredential,
  type ObtainedCredential,
  type RuntimeCredentialProviderOptions,
} from './provider.js';
export { httpRuntimeMinter, type HttpMinterOptions } from './http-minter.js';
