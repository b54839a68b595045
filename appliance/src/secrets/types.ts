// Seams for the organization key (wraps the data key of a sealed config
// bundle) and for the node's other secrets (TLS key, Graph credential).

/** Wraps and unwraps a bundle's data key with the organization key, which never leaves its store. */
export interface OrgKeyProvider {
  /** The reference the provider was made from (e.g. `file:org.key`, a Key Vault key URL, maybe without version). */
  readonly keyRef: string;
  /** Wrap under the current key version; `keyRef` in the result names that exact version. */
  wrap(dataKey: Buffer): Promise<{ wrapped: Buffer; keyRef: string; alg: string }>;
  /** Unwrap a data key wrapped under `keyRef` (a versioned reference recorded at wrap time). */
  unwrap(wrapped: Buffer, keyRef: string, alg: string): Promise<Buffer>;
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
 * - `unavailable`: the key store could not be reached or answered an error.
 */
export type KeyErrorCode = 'wrong-key' | 'tampered' | 'denied' | 'unavailable' | 'invalid';

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
