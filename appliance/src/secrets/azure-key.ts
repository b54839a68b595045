// The organization key in Azure Key Vault. The key is an RSA key that never
// leaves the vault: the data key is wrapped and unwrapped by the vault itself
// (RSA-OAEP-256 `wrapkey` / `unwrapkey`), the node's identity needs only
// "Key Vault Crypto User" on that key. The wrapped data key records the full
// versioned key id, so bundles sealed before a rotation still open while the
// old version stays enabled.
//
// Wrapping with RSA-OAEP is a public-key operation: whoever can read the key's
// public half can wrap a data key of their own and seal a bundle that unwraps
// fine. So a bundle sealed under a Key Vault key is also signed, with a second
// key of the same vault used for nothing else: `<org key name>-signing`
// (signingKeyRefFor), RSA, PS256 through the vault's `sign` (operators: "Key
// Vault Crypto User" on it). Nodes read only its public half ("Key Vault
// Reader" on it: keys/read, no sign) and verify locally before unwrapping.
import { constants, createPublicKey, createVerify, type KeyObject } from 'node:crypto';
import type { TokenCredential } from '@azure/identity';
import type { CryptographyClient, CryptographyClientOptions, KeyClient, KeyVaultKey } from '@azure/keyvault-keys';
import { asRestError } from './rest-error';
import { KeyProviderError, type BundleSigner, type BundleVerifier, type OrgKeyProvider } from './types';

// Loaded on first use: a node whose config comes from files never pays for the Azure SDKs' memory.
const keyvaultKeys = () => require('@azure/keyvault-keys') as typeof import('@azure/keyvault-keys');

export const AZURE_WRAP_ALG = 'RSA-OAEP-256';
/** RSASSA-PSS with SHA-256 and MGF1-SHA-256, salt as long as the hash (JWA, RFC 7518 §3.5): what Key Vault's `sign` does for PS256. */
export const BUNDLE_SIGNATURE_ALG = 'PS256';
/** The signing key of an organization key is the key of the same name with this suffix, in the same vault. */
export const SIGNING_KEY_SUFFIX = '-signing';
const PS256_SALT_BYTES = 32;
const MIN_SIGNING_KEY_BITS = 2048;

export interface AzureKeyProviderOptions {
  credential: TokenCredential;
  /** Passed to the SDK clients (retry, TLS, challenge verification). */
  clientOptions?: CryptographyClientOptions;
  /**
   * The key that signs bundles (operators) and the only one whose signatures
   * are accepted (nodes). Default: signingKeyRefFor(keyRef). Nodes always use
   * the default; an operator may name another key to seal with, but nodes will
   * refuse its bundles.
   */
  signingKeyRef?: string;
}

interface KeyId { vaultUrl: string; name: string; version?: string }

function parseKeyId(ref: string): KeyId {
  let parsed;
  try {
    parsed = keyvaultKeys().parseKeyVaultKeyIdentifier(ref);
  } catch (error) {
    throw new KeyProviderError('invalid', `not a Key Vault key URL: ${ref} (expected https://<vault>.vault.azure.net/keys/<name>[/<version>])`, { cause: error });
  }
  return { vaultUrl: parsed.vaultUrl.replace(/\/+$/, '').toLowerCase(), name: parsed.name.toLowerCase(), version: parsed.version || undefined };
}

export function isAzureKeyRef(ref: string): boolean {
  return /^https:\/\/[^/]+\/keys\/[^/]+(\/[^/]*)?\/?$/i.test(ref);
}

/**
 * The signing key that goes with an organization key: same vault, the key's
 * name + `-signing`, versionless (every version of it is accepted).
 * `https://<vault>/keys/org-config-key[/<version>]` → `https://<vault>/keys/org-config-key-signing`.
 */
export function signingKeyRefFor(orgKeyRef: string): string {
  if (!isAzureKeyRef(orgKeyRef)) throw new KeyProviderError('invalid', `not a Key Vault key URL: ${orgKeyRef}`);
  let parsed;
  try {
    parsed = keyvaultKeys().parseKeyVaultKeyIdentifier(orgKeyRef);
  } catch (error) {
    throw new KeyProviderError('invalid', `not a Key Vault key URL: ${orgKeyRef}`, { cause: error });
  }
  return `${parsed.vaultUrl.replace(/\/+$/, '')}/keys/${parsed.name}${SIGNING_KEY_SUFFIX}`;
}

function describe(error: unknown, keyRef: string, operation: string, role = 'Key Vault Crypto User'): KeyProviderError {
  if (error instanceof KeyProviderError) return error;
  const rest = asRestError(error);
  if (rest) {
    const status = rest.statusCode;
    if (status === 401 || status === 403) {
      return new KeyProviderError('denied', `Key Vault refused ${operation} with ${keyRef} (${status}): the identity needs "${role}" on the key, and the key version must be enabled — ${rest.message}`, { cause: error });
    }
    if (status === 404) return new KeyProviderError('wrong-key', `key ${keyRef} does not exist in its vault (deleted, or another vault) — ${rest.message}`, { cause: error });
    if (status === 400 && operation === 'unwrap') {
      return new KeyProviderError('tampered', `Key Vault could not unwrap the data key with ${keyRef}: the wrapped data key was altered — ${rest.message}`, { cause: error });
    }
    return new KeyProviderError('unavailable', `Key Vault ${operation} with ${keyRef} failed (${status ?? rest.code ?? 'network'}): ${rest.message}`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new KeyProviderError('unavailable', `Key Vault ${operation} with ${keyRef} failed: ${message}`, { cause: error });
}

/** Signs bundle digests with the vault's `sign` (PS256); the key never leaves the vault. */
export function createAzureBundleSigner(signingKeyRef: string, options: Omit<AzureKeyProviderOptions, 'signingKeyRef'>): BundleSigner {
  parseKeyId(signingKeyRef); // refuse a malformed reference up front
  return {
    keyRef: signingKeyRef,
    async sign(digest) {
      try {
        // A fresh client each time, as for wrap: a versionless ref signs with the current version.
        const client = new (keyvaultKeys().CryptographyClient)(signingKeyRef, options.credential, options.clientOptions);
        const result = await client.sign(BUNDLE_SIGNATURE_ALG, digest);
        if (!result.keyID || !parseKeyId(result.keyID).version) throw new Error('the vault did not name the key version that signed');
        return { kid: result.keyID, alg: BUNDLE_SIGNATURE_ALG, signature: Buffer.from(result.result) };
      } catch (error) {
        const described = describe(error, signingKeyRef, 'sign');
        if (described.code === 'wrong-key') {
          throw new KeyProviderError('wrong-key', `${described.message} (the tenant stack creates the signing key beside the organization key, output configSigningKeyId)`, { cause: error });
        }
        throw described;
      }
    },
  };
}

/**
 * Verifies bundle signatures locally (node:crypto) with the public half of the
 * trusted signing key, read with KeyClient.getKey at each verification (the
 * node needs keys/read on that key, nothing more). The signature's kid must
 * name that key (same vault, same name; any version); the public key is always
 * fetched from the trusted vault, never from a URL the bundle names. Not
 * cached: a node verifies once per new bundle (and unwraps through the vault
 * then anyway), and a version disabled to revoke it must be refused by nodes
 * already running, not only by those that never read it.
 */
export function createAzureBundleVerifier(signingKeyRef: string, options: Omit<AzureKeyProviderOptions, 'signingKeyRef'>): BundleVerifier {
  const want = parseKeyId(signingKeyRef);
  const bad = (message: string, cause?: unknown) => new KeyProviderError('bad-signature', message, cause === undefined ? undefined : { cause });
  let client: KeyClient | undefined;

  async function fetchPublicKey(version: string, kid: string): Promise<KeyObject> {
    const sdk = keyvaultKeys();
    const name = sdk.parseKeyVaultKeyIdentifier(signingKeyRef).name;
    client ??= new sdk.KeyClient(sdk.parseKeyVaultKeyIdentifier(signingKeyRef).vaultUrl, options.credential, options.clientOptions);
    let key: KeyVaultKey;
    try {
      key = await client.getKey(name, { version });
    } catch (error) {
      const rest = asRestError(error);
      if (rest?.statusCode === 404) throw bad(`bundle signed by ${kid}, which does not exist in ${want.vaultUrl}`, error);
      // Only the key's own state: other 403s (a role still propagating, "Public network access is disabled") are retried.
      if (rest?.statusCode === 403 && /\bon a disabled key\b/i.test(rest.message)) throw bad(`bundle signed by ${kid}, a disabled version of the signing key`, error);
      throw describe(error, kid, 'read', 'Key Vault Reader');
    }
    if (!key.id || parseKeyId(key.id).name !== want.name || parseKeyId(key.id).version !== version) throw bad(`the vault answered for ${key.id ?? 'no key'} when asked for ${kid}`);
    if (key.properties.enabled === false) throw bad(`bundle signed by ${kid}, a disabled version of the signing key`);
    const jwk = key.key;
    if (!jwk?.n || !jwk.e || (jwk.kty !== 'RSA' && jwk.kty !== 'RSA-HSM')) throw bad(`signing key ${kid} is not an RSA key (${jwk?.kty ?? 'no key material'})`);
    const publicKey = createPublicKey({ key: { kty: 'RSA', n: Buffer.from(jwk.n).toString('base64url'), e: Buffer.from(jwk.e).toString('base64url') }, format: 'jwk' });
    if ((publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_SIGNING_KEY_BITS) throw bad(`signing key ${kid} is shorter than ${MIN_SIGNING_KEY_BITS} bits`);
    return publicKey;
  }

  return {
    keyRef: signingKeyRef,
    async verify(message, signature) {
      if (signature.alg !== BUNDLE_SIGNATURE_ALG) throw bad(`bundle signed with ${JSON.stringify(signature.alg)}; only ${BUNDLE_SIGNATURE_ALG} is accepted`);
      if (!isAzureKeyRef(signature.kid)) throw bad(`bundle signed by ${JSON.stringify(signature.kid)}, not a Key Vault key; only ${signingKeyRef} is accepted`);
      let theirs: KeyId;
      try {
        theirs = parseKeyId(signature.kid);
      } catch (error) {
        throw bad(`bundle signed by ${JSON.stringify(signature.kid)}, not a Key Vault key id`, error);
      }
      if (theirs.vaultUrl !== want.vaultUrl || theirs.name !== want.name) {
        throw bad(`bundle signed by ${signature.kid}; only signatures by ${signingKeyRef} (any version) are accepted`);
      }
      if (!theirs.version || !/^[0-9A-Za-z]{1,64}$/.test(theirs.version)) throw bad(`bundle signature names no usable key version (${signature.kid})`);
      if (want.version && theirs.version !== want.version) throw bad(`bundle signed by ${signature.kid}; only version ${want.version} of ${want.name} is accepted`);
      const publicKey = await fetchPublicKey(theirs.version, signature.kid);
      const verifier = createVerify('sha256');
      for (const part of message) verifier.update(part);
      let valid: boolean;
      try {
        valid = verifier.verify({ key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: PS256_SALT_BYTES }, signature.value);
      } catch (error) {
        throw bad(`the signature by ${signature.kid} is malformed`, error);
      }
      if (!valid) throw bad(`the signature by ${signature.kid} does not match the bundle: it was altered after signing, or signed for other content`);
    },
  };
}

export function createAzureKeyProvider(keyRef: string, options: AzureKeyProviderOptions): OrgKeyProvider {
  const own = parseKeyId(keyRef);
  const signingKeyRef = options.signingKeyRef ?? signingKeyRefFor(keyRef);
  const signer = createAzureBundleSigner(signingKeyRef, options);
  const verifier = createAzureBundleVerifier(signingKeyRef, options);
  const clients = new Map<string, CryptographyClient>();
  const client = (id: string) => {
    let c = clients.get(id);
    if (!c) clients.set(id, (c = new (keyvaultKeys().CryptographyClient)(id, options.credential, options.clientOptions)));
    return c;
  };
  function checkKeyRef(wrappedRef: string, alg: string): void {
    if (alg !== AZURE_WRAP_ALG) throw new KeyProviderError('wrong-key', `the data key is wrapped with ${alg} (key ${wrappedRef}); a Key Vault key unwraps ${AZURE_WRAP_ALG}`);
    if (!isAzureKeyRef(wrappedRef)) throw new KeyProviderError('wrong-key', `wrong key: the bundle was sealed under ${wrappedRef}, not a Key Vault key (given ${keyRef})`);
    const theirs = parseKeyId(wrappedRef);
    if (theirs.vaultUrl !== own.vaultUrl || theirs.name !== own.name || (own.version && theirs.version && own.version !== theirs.version)) {
      throw new KeyProviderError('wrong-key', `wrong key: the bundle was sealed under ${wrappedRef}, the key given is ${keyRef}`);
    }
  }
  return {
    keyRef,
    signer,
    verifier,
    async wrap(dataKey) {
      try {
        // A versionless ref wraps under the key's current version; the vault answers with the versioned kid.
        // A fresh client each time: a CryptographyClient pins the version it first fetched, and wrap
        // must follow rotations (it is rare: seal and reseal only).
        const wrapper = own.version ? client(keyRef) : new (keyvaultKeys().CryptographyClient)(keyRef, options.credential, options.clientOptions);
        const result = await wrapper.wrapKey(AZURE_WRAP_ALG, dataKey);
        if (!result.keyID || !parseKeyId(result.keyID).version) throw new Error('the vault did not name the key version it used');
        return { wrapped: Buffer.from(result.result), keyRef: result.keyID, alg: AZURE_WRAP_ALG };
      } catch (error) {
        throw describe(error, keyRef, 'wrap');
      }
    },
    checkKeyRef,
    async unwrap(wrapped, wrappedRef, alg) {
      checkKeyRef(wrappedRef, alg);
      try {
        // Unwrap with the exact version that wrapped it, not the current one: rotation keeps old bundles readable.
        const result = await client(wrappedRef).unwrapKey(AZURE_WRAP_ALG, wrapped);
        return Buffer.from(result.result);
      } catch (error) {
        throw describe(error, wrappedRef, 'unwrap');
      }
    },
  };
}
