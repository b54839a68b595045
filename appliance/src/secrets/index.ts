export { KeyProviderError, type BundleSigner, type BundleVerifier, type KeyErrorCode, type OrgKeyProvider, type SecretProvider } from './types';
export { createLocalKeyProvider, createLocalKeyFile, localKeyVersion, parseLocalKey, LOCAL_WRAP_ALG } from './local-key';
export {
  createAzureKeyProvider,
  createAzureBundleSigner,
  createAzureBundleVerifier,
  isAzureKeyRef,
  signingKeyRefFor,
  AZURE_WRAP_ALG,
  BUNDLE_SIGNATURE_ALG,
  SIGNING_KEY_SUFFIX,
  type AzureKeyProviderOptions,
} from './azure-key';
export { createKeyVaultSecretProvider, createFileSecretProvider, SecretError } from './secret-provider';
export { createAzureCredential, createAppCredential, type AppCredentialOptions, type CredentialOptions, type TokenCredential } from './credential';
export { keyProviderFromRef, type KeyRefOptions } from './key-ref';
