// Seams for the organization key (wraps the data key of a sealed config
// bundle), the bundle signing key, and the node's other secrets (TLS key,
// Graph credential).

/** Wraps and unwraps a bundle's data key with the organization key, which never leaves its store. */
export interface OrgKeyProvider {
  /** The reference the provider was made from (e.g. `file:org.key`, a Key Vault key URL, maybe without version). */
  readonly keyRef: string;
  /** Wrap under the current key version; `keyRef` in the result names that exact version. */
  wrap(dataKey: Buffer): Promise<{ wrapped: Buffer; keyRef: string; alg: string }>;
  /** Unwrap a data key wrapped under `keyRef` (a versioned reference recorded at wrap time). */
  unwrap(wrapped: Buffer, keyRef: string, alg: string): Promise<Buffer>;
  /**
   * Present when `wrap` is a public-key operation (RSA-OAEP with a Key Vault
   * key): anyone holding the public half can wrap a data key of their own
   * choosing, so the wrapping proves nothing about who sealed the bundle.
   * Such bundles are signed by `signer` when sealed, and `verifier` checks the
   * signature before anything is unwrapped.
   */
  readonly signer?: BundleSigner;
  readonly verifier?: BundleVerifier;
  /** Throws `wrong-key` when a data key wrapped under `keyRef` with `alg` is not this key's to unwrap (no I/O: a check of the names). */
  checkKeyRef?(keyRef: string, alg: string): void;
}

/** Signs a bundle's digest with a key that never leaves its store (Key Vault `sign`). */
export interface BundleSigner {
  /** The signing key as configured (versionless Key Vault key URL). */
  readonly keyRef: string;
  /** Sign a SHA-256 digest; `kid` names the exact key version that signed. */
  sign(digest: Buffer): Promise<{ kid: string; alg: string; signature: Buffer }>;
}

/** Checks a bundle signature against the one signing key this verifier trusts (any of its versions). */
export interface BundleVerifier {
  /** The trusted signing key (versionless Key Vault key URL). */
  readonly keyRef: string;
  /**
   * Resolves when `signature` is a valid signature of the concatenation of
   * `message` by a version of the trusted key; otherwise throws a
   * KeyProviderError: `bad-signature` (another key, another algorithm, a
   * disabled or unknown version, or a signature that does not verify),
   * `denied` or `unavailable` (the public key could not be read).
   */
  verify(message: readonly Buffer[], signature: { kid: string; alg: string; value: Buffer }): Promise<void>;
}

/** Named secrets (PEM files, client secrets). `version` pins a version where the store has versions. */
export interface SecretProvider {
  get(name: string, version?: string): Promise<string>;
}

/**
 * Why a key operation failed, so callers can say it plainly:
 * - `wrong-key`: the data key was wrapped under another key than the one given;
 * - `tampered`: same key, but the wrapped data key fails its integrity check;
 * - `denied`: the identity may not use the key (or the key version is disabled);
 * - `unavailable`: the key store could not be reached or answered an error;
 * - `bad-signature`: a bundle signature is not a valid one by the trusted signing key.
 */
export type KeyErrorCode = 'wrong-key' | 'tampered' | 'denied' | 'unavailable' | 'invalid' | 'bad-signature';

export class KeyProviderError extends Error {
  constructor(
    readonly code: KeyErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KeyProviderError';
  }
}
